"""WebSocket subscriptions and polling filters against a real devnet process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak
from websockets.asyncio.client import connect

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts
from tests.utils.processes import NodeProcess, rpc_result
from tests.utils.solidity import compile_solidity

pytestmark = pytest.mark.e2e

EMITTER = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Emitter {
    event Ping(address indexed from, uint256 indexed n, string note);
    function ping(uint256 n) external { emit Ping(msg.sender, n, "hello"); }
}
"""


def send(url: str, index: int, nonce: int, **fields: Any) -> str:
    account = dev_accounts(index + 1)[index]
    tx = {"to": dev_accounts(9)[8].address, "value": 1, "gas": 100_000, "nonce": nonce,
          "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9,
          "chainId": DEVNET_CHAIN_ID, **fields}
    raw = Account.sign_transaction(tx, account.private_key).raw_transaction
    return str(rpc_result(url, "eth_sendRawTransaction", ["0x" + bytes(raw).hex()]))


def wait_receipt(url: str, tx_hash: str) -> dict[str, Any]:
    import time

    for _ in range(600):
        receipt = rpc_result(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt:
            return dict(receipt)
        time.sleep(0.05)
    raise AssertionError("no receipt")


def test_websocket_subscriptions(devnet: NodeProcess) -> None:
    emitter = compile_solidity({"Emitter.sol": EMITTER})["Emitter"]
    deploy = send(devnet.url, 0, 0, to=None, data=emitter.bytecode, gas=500_000, value=0)
    address = wait_receipt(devnet.url, deploy)["contractAddress"]
    ping = function_signature_to_4byte_selector("ping(uint256)")
    topic = "0x" + keccak(text="Ping(address,uint256,string)").hex()

    async def scenario() -> dict[str, list[Any]]:
        seen: dict[str, list[Any]] = {"newHeads": [], "logs": [], "newPendingTransactions": []}
        async with connect(devnet.ws_url) as ws:
            ids = {}
            for request_id, params in enumerate(
                [["newHeads"], ["logs", {"address": address, "topics": [topic]}],
                 ["newPendingTransactions"]], start=1):
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id,
                                          "method": "eth_subscribe", "params": params}))
                answer = json.loads(await ws.recv())
                ids[answer["result"]] = params[0]
            # A plain call works on the same socket.
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "eth_chainId"}))
            sent = []
            for nonce in (2, 3):
                data = ping + nonce.to_bytes(32, "big")
                sent.append(send(devnet.url, 0, nonce - 1, to=address, data=data, value=0))
            deadline = asyncio.get_running_loop().time() + 30
            while (len(seen["logs"]) < 2 or not seen["newHeads"]
                   or len(seen["newPendingTransactions"]) < 2):
                timeout = deadline - asyncio.get_running_loop().time()
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if message.get("id") == 9:
                    assert message["result"] == hex(DEVNET_CHAIN_ID)
                    continue
                params = message["params"]
                seen[ids[params["subscription"]]].append(params["result"])
            seen["sent"] = sent
        return seen

    seen = asyncio.run(scenario())
    assert set(seen["sent"]) <= set(seen["newPendingTransactions"])
    assert all(log["address"].lower() == address.lower() for log in seen["logs"])
    assert [int(log["topics"][2], 16) for log in seen["logs"]] == [2, 3]
    head = seen["newHeads"][0]
    assert {"number", "hash", "parentHash", "stateRoot", "baseFeePerGas"} <= set(head)

    # A log filter installed now still finds the past logs through eth_getFilterLogs.
    log_filter = rpc_result(devnet.url, "eth_newFilter",
                            [{"fromBlock": "0x0", "address": address, "topics": [topic]}])
    past = rpc_result(devnet.url, "eth_getFilterLogs", [log_filter])
    assert [log["transactionHash"] for log in past] == seen["sent"]
    # A receipt read alone equals the same receipt in its block's list (log indices included).
    for tx_hash in seen["sent"]:
        receipt = rpc_result(devnet.url, "eth_getTransactionReceipt", [tx_hash])
        in_block = rpc_result(devnet.url, "eth_getBlockReceipts", [receipt["blockNumber"]])
        assert in_block[int(receipt["transactionIndex"], 16)] == receipt


def test_polling_filters(devnet: NodeProcess) -> None:
    url = devnet.url
    block_filter = rpc_result(url, "eth_newBlockFilter")
    pending_filter = rpc_result(url, "eth_newPendingTransactionFilter")
    recipient = dev_accounts(9)[8].address
    log_filter = rpc_result(url, "eth_newFilter", [{"fromBlock": "latest"}])
    tx_hash = send(url, 1, 0)
    receipt = wait_receipt(url, tx_hash)
    blocks = rpc_result(url, "eth_getFilterChanges", [block_filter])
    assert receipt["blockHash"] in blocks
    assert rpc_result(url, "eth_getFilterChanges", [block_filter]) == []  # drained
    assert tx_hash in rpc_result(url, "eth_getFilterChanges", [pending_filter])
    assert rpc_result(url, "eth_getFilterChanges", [log_filter]) == []  # a transfer logs nothing
    assert rpc_result(url, "eth_uninstallFilter", [block_filter]) is True
    assert rpc_result(url, "eth_uninstallFilter", [block_filter]) is False
    from tests.utils.processes import rpc

    assert rpc(url, "eth_getFilterChanges", [block_filter])["error"]["code"] == -32000
    assert rpc_result(url, "eth_getBalance", [recipient, "latest"]) == hex(10_000 * 10**18 + 1)
