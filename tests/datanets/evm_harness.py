"""A real OpenLedger chain in memory (the lead's Ledger on py-evm) for precompile tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from eth_account import Account

from evm_bridge.execution import CallRequest, CallResult
from evm_bridge.execution import call as evm_call
from evm_bridge.ledger import Ledger
from evm_bridge.precompiles.abi import Interface
from genesis.presets import dev_accounts, devnet_genesis

TREASURY = bytes.fromhex("00000000000000000000000000000000000007ee")
PARAMS = {"datanets.protocol_fee_bps": 1000, "datanets.protocol_treasury": "0x" + TREASURY.hex(),
          "datanets.challenge_period_blocks": 5}


class EvmChain:
    """Blocks of signed EIP-1559 transactions, built with the node's block builder."""

    def __init__(self, accounts: int = 10, params: dict[str, Any] | None = None) -> None:
        genesis = devnet_genesis(accounts=accounts)
        genesis = dataclasses.replace(genesis, params={**genesis.params, **PARAMS,
                                                       **(params or {})})
        self.ledger = Ledger.open(None, genesis)
        self.chain_id = genesis.chain_id
        self.keys = [a.private_key for a in dev_accounts(accounts)]
        self.addresses = [bytes.fromhex(a.address[2:]) for a in dev_accounts(accounts)]
        self.nonces = [0] * accounts
        self.time = genesis.timestamp

    def sign(self, who: int, to: bytes, data: bytes, value: int = 0,
             gas: int = 3_000_000) -> Any:
        tx = {
            "type": 2, "chainId": self.chain_id, "nonce": self.nonces[who], "to": to,
            "value": value, "data": data, "gas": gas,
            "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
        }
        self.nonces[who] += 1
        raw = Account.sign_transaction(tx, self.keys[who]).raw_transaction
        vm = self.ledger.chain.get_vm()
        return vm.get_transaction_builder().decode(bytes(raw))

    def mine(self, txs: list[Any]) -> list[Any]:
        """Build, commit and return (receipt, computation) of each transaction."""
        self.time += 1
        job = self.ledger.start_block(txs, timestamp=self.time)
        built = job.finish()
        assert not built.skipped, built.skipped
        self.ledger.commit(built)
        return list(zip(built.receipts, built.computations, strict=True))

    def transact(self, who: int, iface: Interface, to: bytes, fn: str, *args: Any,
                 value: int = 0, gas: int = 3_000_000) -> tuple[Any, Any]:
        data = iface.function(fn).encode_call(*args)
        [(receipt, computation)] = self.mine([self.sign(who, to, data, value, gas)])
        return receipt, computation

    def call(self, iface: Interface, to: bytes, fn: str, *args: Any,
             sender: bytes = b"\x00" * 20) -> tuple[Any, ...]:
        f = iface.function(fn)
        result = self.raw_call(to, f.encode_call(*args), sender)
        assert result.success, result.error
        return f.decode_output(result.output)

    def raw_call(self, to: bytes, data: bytes, sender: bytes = b"\x00" * 20,
                 value: int = 0) -> CallResult:
        return evm_call(self.ledger, CallRequest(sender=sender, to=to, data=data, value=value))

    def balance(self, address: bytes) -> int:
        return self.ledger.state_at().get_balance(address)
