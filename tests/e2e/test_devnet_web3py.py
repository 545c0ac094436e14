"""web3.py against a real devnet process: accounts, transfers, contract deploy and calls."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts
from tests.utils.processes import NodeProcess
from tests.utils.solidity import compile_solidity

pytestmark = pytest.mark.e2e

COUNTER = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Counter {
    uint256 public value = 42;
    event Changed(address indexed by, uint256 value);
    function set(uint256 v) external {
        require(v != 13, "unlucky number");
        value = v;
        emit Changed(msg.sender, v);
    }
}
"""


def test_web3py_transfers_and_contracts(devnet: NodeProcess) -> None:
    w3 = Web3(Web3.HTTPProvider(devnet.url))
    assert w3.eth.chain_id == DEVNET_CHAIN_ID
    accounts = dev_accounts(2)
    assert w3.eth.accounts[0] == accounts[0].address
    assert w3.eth.get_balance(accounts[0].address) == 10_000 * 10**18

    # A signed EIP-1559 transfer.
    sender = Account.from_key(accounts[0].private_key)
    before = w3.eth.get_balance(accounts[1].address)
    tx = {
        "to": accounts[1].address, "value": 12345, "nonce": 0, "gas": 21000,
        "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": DEVNET_CHAIN_ID,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt.status == 1 and receipt.gasUsed == 21000
    assert w3.eth.get_balance(accounts[1].address) == before + 12345
    assert w3.eth.get_transaction_count(accounts[0].address) == 1

    # Deploy through the unlocked dev account (eth_sendTransaction), then call.
    compiled = compile_solidity({"Counter.sol": COUNTER})["Counter"]
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    deploy_hash = factory.constructor().transact({"from": accounts[0].address})
    deployed = w3.eth.wait_for_transaction_receipt(deploy_hash, timeout=30)
    assert deployed.status == 1 and deployed.contractAddress
    assert w3.eth.get_code(deployed.contractAddress) == compiled.runtime
    counter = w3.eth.contract(address=deployed.contractAddress, abi=compiled.abi)
    assert counter.functions.value().call() == 42

    set_hash = counter.functions.set(7).transact({"from": accounts[1].address})
    set_receipt = w3.eth.wait_for_transaction_receipt(set_hash, timeout=30)
    assert set_receipt.status == 1
    assert counter.functions.value().call() == 7
    events = counter.events.Changed().process_receipt(set_receipt)
    assert events[0].args.by == accounts[1].address and events[0].args.value == 7
    logs = w3.eth.get_logs({"address": deployed.contractAddress, "fromBlock": 0})
    assert len(logs) == 1 and logs[0].transactionHash == set_hash

    # Reverts carry the reason (JSON-RPC code 3 with the revert data).
    from web3.exceptions import ContractLogicError

    with pytest.raises(ContractLogicError, match="unlucky number"):
        counter.functions.set(13).call({"from": accounts[0].address})
    with pytest.raises(ContractLogicError, match="unlucky number"):
        counter.functions.set(13).estimate_gas({"from": accounts[0].address})

    block = w3.eth.get_block("latest", full_transactions=True)
    assert block.number == w3.eth.block_number
    assert w3.eth.get_block("finalized").hash == block.hash
