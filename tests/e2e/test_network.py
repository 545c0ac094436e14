"""Four validator processes on 127.0.0.1: finality, agreement, faults, restarts and sync.

The scenarios run in order on one network (module fixture) to keep the suite's time down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from genesis.presets import dev_accounts
from tests.utils.processes import NodeProcess, make_testnet, rpc, rpc_result

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CHAIN_ID = 3_301_731
FUNDED = dev_accounts(2)


def height(node: NodeProcess) -> int:
    return int(rpc_result(node.url, "eth_blockNumber"), 16)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def block_at(node: NodeProcess, number: int) -> dict[str, Any]:
    return rpc_result(node.url, "eth_getBlockByNumber", [hex(number), False])


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NodeProcess]]:
    out: Path = tmp_path_factory.mktemp("testnet")
    nodes = make_testnet(out, validators=4, full_nodes=1,
                              fund=(f"{FUNDED[0].address}=1000",))
    for node in nodes[:4]:
        node.start()
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_blocks_finalize_and_all_nodes_agree(network: list[NodeProcess]) -> None:
    validators = network[:4]
    wait_for(lambda: min(height(n) for n in validators) >= 3, 60, "height 3 on all validators")
    common = min(height(n) for n in validators)
    for number in range(1, common + 1):
        blocks = [block_at(n, number) for n in validators]
        assert len({b["hash"] for b in blocks}) == 1, f"hashes differ at {number}"
        assert len({b["stateRoot"] for b in blocks}) == 1
    info = rpc_result(validators[0].url, "openledger_nodeInfo")
    assert info["peers"] >= 3 and info["validator"] is True and info["mode"] == "network"
    finalized = rpc_result(validators[0].url, "eth_getBlockByNumber", ["finalized", False])
    assert int(finalized["number"], 16) >= common


def test_transaction_sent_to_one_node_runs_on_all(network: list[NodeProcess]) -> None:
    recipient = FUNDED[1].address
    tx = {"to": recipient, "value": 10**18, "gas": 21000, "nonce": 0,
          "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": CHAIN_ID}
    raw = Account.sign_transaction(tx, FUNDED[0].private_key).raw_transaction
    tx_hash = rpc_result(network[0].url, "eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
    for node in network[:4]:
        wait_for(lambda n=node: rpc_result(n.url, "eth_getTransactionReceipt", [tx_hash]),
                 60, f"receipt on {node.home.name}")
        assert rpc_result(node.url, "eth_getBalance", [recipient, "latest"]) == hex(10**18)


def test_one_validator_down_three_keep_finalizing_then_it_catches_up(
        network: list[NodeProcess]) -> None:
    down = network[3]
    down.stop()
    start = height(network[0])
    wait_for(lambda: height(network[0]) >= start + 3, 60, "3 more blocks with 3 of 4 up")
    down.start()
    target = height(network[0])
    wait_for(lambda: height(down) >= target, 180, "the restarted validator to catch up")
    assert block_at(down, target)["hash"] == block_at(network[0], target)["hash"]


def test_two_of_four_down_halts_then_resumes(network: list[NodeProcess]) -> None:
    network[2].stop()
    network[3].stop()
    time.sleep(3)  # let a block in flight land
    stalled = height(network[0])
    time.sleep(6)
    assert height(network[0]) <= stalled + 1, "finalized without a 2/3 quorum"
    assert height(network[1]) <= stalled + 1
    network[2].start()
    wait_for(lambda: height(network[0]) >= stalled + 3, 180, "the chain to resume")
    network[3].start()


def test_fresh_full_node_syncs_from_genesis(network: list[NodeProcess]) -> None:
    full = network[4]
    full.start()
    target = height(network[0])
    wait_for(lambda: height(full) >= target, 180, "the full node to sync")
    assert block_at(full, target)["hash"] == block_at(network[0], target)["hash"]
    info = rpc_result(full.url, "openledger_nodeInfo")
    assert info["validator"] is False
    # It keeps following after the initial sync.
    wait_for(lambda: height(full) >= target + 2, 60, "the full node to follow new blocks")
    assert rpc(full.url, "eth_chainId")["result"] == hex(CHAIN_ID)


def test_double_signer_produces_evidence_that_lands_in_a_block(
        network: list[NodeProcess]) -> None:
    byzantine = network[3]
    byzantine.stop()
    byzantine.args = [*byzantine.args, "--double-sign-for-tests"]
    byzantine.start()
    validator = rpc_result(byzantine.url, "openledger_nodeInfo")
    start = height(network[0])
    found: list[dict[str, Any]] = []

    def evidence_landed() -> bool:
        for number in range(start, height(network[0]) + 1):
            evidence = rpc_result(network[0].url, "openledger_getBlockEvidence", [hex(number)])
            if evidence:
                found.extend(evidence)
                found.append({"block": number})
                return True
        return False

    wait_for(evidence_landed, 120, "double-sign evidence in a block")
    number = found[-1]["block"]
    block = block_at(network[0], number)
    assert block["extraData"] != "0x"  # the header commits to the evidence it carries
    network_json = (byzantine.home.parent / "network.json").read_text()
    assert found[0]["validator"] in network_json
    assert validator["validator"] is True
