"""`kill -9` in the middle of a stream of transactions loses nothing that was reported."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts
from tests.utils.processes import devnet_process, rpc, rpc_result

pytestmark = pytest.mark.e2e


def _stream(url: str, stop: threading.Event, receipts: dict[str, dict[str, Any]]) -> None:
    """Send signed transfers from four accounts and record every receipt the node returns."""
    accounts = dev_accounts(5)
    nonces = [0, 0, 0, 0]
    while not stop.is_set():
        sent = []
        try:
            for i in range(4):
                tx = {"to": accounts[4].address, "value": 1 + i, "gas": 21000,
                      "nonce": nonces[i], "maxFeePerGas": 5 * 10**9,
                      "maxPriorityFeePerGas": 10**9, "chainId": DEVNET_CHAIN_ID}
                raw = Account.sign_transaction(tx, accounts[i].private_key).raw_transaction
                response = rpc(url, "eth_sendRawTransaction", ["0x" + bytes(raw).hex()], timeout=5)
                if "result" in response:
                    sent.append(response["result"])
                    nonces[i] += 1
            for tx_hash in sent:
                for _ in range(200):
                    response = rpc(url, "eth_getTransactionReceipt", [tx_hash], timeout=5)
                    if response.get("result"):
                        receipts[tx_hash] = response["result"]
                        break
                    time.sleep(0.01)
        except OSError:
            return  # the node is gone


def test_kill_9_keeps_a_consistent_chain(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    node = devnet_process(home).start()
    receipts: dict[str, dict[str, Any]] = {}
    stop = threading.Event()
    sender = threading.Thread(target=_stream, args=(node.url, stop, receipts), daemon=True)
    sender.start()
    deadline = time.monotonic() + 60
    while len(receipts) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    node.kill()  # SIGKILL mid-stream
    stop.set()
    sender.join(10)
    reported = dict(receipts)
    assert len(reported) >= 40

    restarted = devnet_process(home, port=node.port, ws_port=node.ws_port).start()
    try:
        url = restarted.url
        head = int(rpc_result(url, "eth_blockNumber"), 16)
        assert head >= 1
        # Every receipt reported before the kill is still there, in the same block.
        for tx_hash, receipt in reported.items():
            again = rpc_result(url, "eth_getTransactionReceipt", [tx_hash])
            assert again is not None, f"lost receipt {tx_hash}"
            assert again["blockHash"] == receipt["blockHash"]
            assert again["status"] == "0x1"
        # Every block is complete: linked to its parent, all transactions and receipts present.
        parent_hash = rpc_result(url, "eth_getBlockByNumber", ["0x0", False])["hash"]
        for number in range(1, head + 1):
            block = rpc_result(url, "eth_getBlockByNumber", [hex(number), True])
            assert block["parentHash"] == parent_hash
            block_receipts = rpc_result(url, "eth_getBlockReceipts", [hex(number)])
            assert [r["transactionHash"] for r in block_receipts] == [
                tx["hash"] for tx in block["transactions"]]
            parent_hash = block["hash"]
        # And the chain goes on from there.
        account = dev_accounts(6)[5]
        tx = {"to": account.address, "value": 5, "gas": 21000, "nonce": 0,
              "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": DEVNET_CHAIN_ID}
        raw = Account.sign_transaction(tx, account.private_key).raw_transaction
        tx_hash = rpc_result(url, "eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        receipt = None
        for _ in range(300):
            receipt = rpc_result(url, "eth_getTransactionReceipt", [tx_hash])
            if receipt:
                break
            time.sleep(0.05)
        assert receipt is not None and receipt["status"] == "0x1"
        # A height in progress at the kill (its proposal in the consensus WAL) is finished from the
        # log after the restart, so the new transaction may land one block after head + 1.
        assert head + 1 <= int(receipt["blockNumber"], 16) <= head + 2
    finally:
        restarted.stop()
