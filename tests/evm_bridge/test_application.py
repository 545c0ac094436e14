"""The EVM application under the real consensus driver: four validators agree on EVM blocks."""

from __future__ import annotations

import rlp
import trio
from eth_account import Account

from consensus.abc import PrepareProposalRequest, ProcessProposalRequest
from consensus.driver import ConsensusDriver, DriverConfig
from consensus.memory import MemoryNetwork
from consensus.signer import PrivValidator
from consensus.state_machine import TimeoutConfig
from consensus.store import ConsensusDB, MemoryStore
from consensus.types import address_from_private_key
from evm_bridge.application import EvmApplication, decode_block
from evm_bridge.ledger import Ledger
from genesis.presets import dev_accounts, devnet_genesis
from genesis.schema import Genesis, GenesisValidator
from openledger_node.node import HeadState
from openledger_node.txpool import TxPool

FAST = TimeoutConfig(propose=2.0, propose_delta=0.5, prevote=0.5, prevote_delta=0.25,
                     precommit=0.5, precommit_delta=0.25, commit=0.05)
KEYS = sorted((bytes([0] * 31 + [i + 1]) for i in range(4)), key=address_from_private_key)


def genesis_with_validators(n: int = 4) -> Genesis:
    validators = tuple(
        GenesisValidator(address=address_from_private_key(k), public_key=b"\x02" + b"\x00" * 32,
                         power=10)
        for k in KEYS[:n]
    )
    return devnet_genesis(accounts=3, timestamp=1_700_000_000, validators=validators)


def make_app(genesis: Genesis) -> tuple[EvmApplication, TxPool]:
    ledger = Ledger.open(None, genesis)
    head_state = HeadState(ledger)
    vm_class = ledger.chain.get_vm_class_for_block_number(0)
    pool = TxPool(genesis.chain_id, vm_class.get_transaction_builder(), head_state.account)

    def committed(built: object) -> None:
        head_state.invalidate()
        pool.remove_stale({bytes(tx.sender) for tx in built.block.transactions})  # type: ignore[attr-defined]

    return EvmApplication(ledger, pool, on_commit=committed), pool


def transfer(nonce: int, value: int, chain_id: int) -> bytes:
    sender, recipient = dev_accounts(2)
    tx = {"to": recipient.address, "value": value, "gas": 21000, "nonce": nonce,
          "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": chain_id}
    return bytes(Account.sign_transaction(tx, sender.private_key).raw_transaction)


async def test_four_validators_agree_on_evm_blocks() -> None:
    genesis = genesis_with_validators()
    network = MemoryNetwork(seed=3)
    config = DriverConfig(genesis.chain_id, timeouts=FAST, rebroadcast_interval=0.3)
    apps = []
    async with trio.open_nursery() as nursery:
        drivers = []
        for i, key in enumerate(KEYS):
            app, pool = make_app(genesis)
            for nonce in range(10):  # every pool holds the same transactions, as gossip would
                pool.add_raw(transfer(nonce, 1000 + nonce, genesis.chain_id))
            apps.append(app)
            network.set_online(f"v{i}", True)
            driver = ConsensusDriver(app, network.endpoint(f"v{i}"), ConsensusDB(MemoryStore()),
                                     PrivValidator(key, None), config)
            drivers.append(driver)
            await nursery.start(driver.run)
        with trio.fail_after(60):
            for driver in drivers:
                await driver.wait_for_height(3)
        nursery.cancel_scope.cancel()
    heads = [app.ledger.head for app in apps]
    common = min(h.block_number for h in heads)
    for number in range(1, common + 1):
        hashes = {app.ledger.header_by_number(number).hash for app in apps}  # type: ignore[union-attr]
        assert len(hashes) == 1, f"validators disagree at height {number}"
    recipient = bytes.fromhex(dev_accounts(2)[1].address[2:])
    balances = {app.ledger.state_at(app.ledger.header_by_number(common)).get_balance(recipient)
                for app in apps}
    assert len(balances) == 1
    assert balances.pop() == 10_000 * 10**18 + sum(1000 + n for n in range(10))
    proposers = {bytes(app.ledger.header_by_number(1).coinbase) for app in apps}  # type: ignore[union-attr]
    assert proposers <= {address_from_private_key(k) for k in KEYS}


async def test_process_proposal_rejects_tampered_blocks() -> None:
    genesis = genesis_with_validators()
    proposer_app, proposer_pool = make_app(genesis)
    checker_app, _ = make_app(genesis)
    proposer_pool.add_raw(transfer(0, 5, genesis.chain_id))
    proposer = address_from_private_key(KEYS[0])
    proposed = await proposer_app.prepare_proposal(
        PrepareProposalRequest(height=1, round=0, timestamp=1_700_000_100, proposer=proposer))

    def request(block: bytes, block_hash: bytes, who: bytes = proposer) -> ProcessProposalRequest:
        return ProcessProposalRequest(height=1, round=0, block=block, block_hash=block_hash,
                                      proposer=who)

    assert await checker_app.process_proposal(request(proposed.block, proposed.block_hash))
    checker_app._candidates.clear()
    # Re-proposed in a later round by another validator: the block (and its fee recipient,
    # the original builder) is unchanged, and must still be accepted.
    other = address_from_private_key(KEYS[1])
    assert await checker_app.process_proposal(request(proposed.block, proposed.block_hash, other))
    checker_app._candidates.clear()
    # Garbage bytes, or a hash that is not the block's.
    assert not await checker_app.process_proposal(request(b"\x01\x02", proposed.block_hash))
    assert not await checker_app.process_proposal(request(proposed.block, b"\x11" * 32))
    # A block whose state root lies: the header hash matches the header, re-execution does not.
    decoded = decode_block(proposed.block)
    forged = decoded.copy(header=decoded.header.copy(state_root=b"\x22" * 32))
    assert not await checker_app.process_proposal(
        request(rlp.encode(forged), bytes(forged.hash)))
