"""Bad input gets the right JSON-RPC error and the node keeps serving."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts
from tests.utils.processes import NodeProcess, devnet_process, rpc, rpc_result

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    home: Path = tmp_path_factory.mktemp("errors") / "devnet"
    process = devnet_process(home).start()
    try:
        yield process
    finally:
        process.stop()


def post(url: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def oversized_body_status(node: NodeProcess) -> int:
    """Announce a 12 MiB body: the server refuses it from the headers, before reading it."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(12 * 1024 * 1024))
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def signed(fields: dict[str, Any], index: int = 0) -> str:
    key = dev_accounts(index + 1)[index].private_key
    base = {"to": dev_accounts(2)[1].address, "value": 1, "gas": 21000, "nonce": 0,
            "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": DEVNET_CHAIN_ID}
    base.update(fields)
    return "0x" + bytes(Account.sign_transaction(base, key).raw_transaction).hex()


def error_of(node: NodeProcess, method: str, params: list[Any]) -> dict[str, Any]:
    response = rpc(node.url, method, params)
    assert "error" in response, response
    return response["error"]


def test_protocol_errors(node: NodeProcess) -> None:
    _, body = post(node.url, b'{"jsonrpc":"2.0","id":1,"method":')
    assert body["error"]["code"] == -32700
    _, body = post(node.url, b'"just a string"')
    assert body["error"]["code"] == -32600
    _, body = post(node.url, b"[]")
    assert body["error"]["code"] == -32600
    _, body = post(node.url, b'{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}')
    assert body["error"]["code"] == -32600
    assert error_of(node, "eth_noSuchMethod", [])["code"] == -32601
    assert oversized_body_status(node) == 413
    # A batch answers each item on its own.
    _, body = post(node.url, json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},  # a notification: no answer
        5,
    ]).encode())
    assert [item.get("id") for item in body] == [1, 2, None]
    assert body[0]["result"] == hex(DEVNET_CHAIN_ID)
    assert body[1]["error"]["code"] == -32601 and body[2]["error"]["code"] == -32600


def test_bad_params(node: NodeProcess) -> None:
    assert error_of(node, "eth_getBalance", [])["code"] == -32602
    assert error_of(node, "eth_getBalance", ["0x1234", "latest"])["code"] == -32602
    assert error_of(node, "eth_getBalance", ["nothex", "latest"])["code"] == -32602
    assert error_of(node, "eth_getBalance", [dev_accounts(1)[0].address, "newest"])["code"] == -32602
    assert error_of(node, "eth_getBlockByNumber", ["latest", "yes"])["code"] == -32602
    assert error_of(node, "eth_chainId", [1, 2, 3])["code"] == -32602
    assert error_of(node, "eth_getLogs", [{"topics": "x"}])["code"] == -32602
    assert rpc_result(node.url, "eth_getBlockByNumber", ["0x99999", False]) is None
    assert error_of(node, "eth_getBalance", [dev_accounts(1)[0].address, "0x99999"])["code"] == -32000


def test_bad_transactions(node: NodeProcess) -> None:
    for garbage in ("0x", "0x1234", "0xc0", "0x02c0", "0xf8" + "00" * 10):
        error = error_of(node, "eth_sendRawTransaction", [garbage])
        assert error["code"] == -32602, (garbage, error)
    assert error_of(node, "eth_sendRawTransaction", ["zz"])["code"] == -32602

    wrong_chain = error_of(node, "eth_sendRawTransaction", [signed({"chainId": 1})])
    assert wrong_chain["code"] == -32000 and "invalid chain id" in wrong_chain["message"]

    raw = bytearray(bytes.fromhex(signed({})[2:]))
    raw[-5] ^= 0xFF  # corrupt the signature's s value
    bad_signature = error_of(node, "eth_sendRawTransaction", ["0x" + raw.hex()])
    assert bad_signature["code"] in (-32000, -32602)

    too_little_gas = error_of(node, "eth_sendRawTransaction", [signed({"gas": 20000})])
    assert "intrinsic gas too low" in too_little_gas["message"]
    too_poor = error_of(node, "eth_sendRawTransaction", [signed({"value": 10**30})])
    assert "insufficient funds" in too_poor["message"]
    underpriced = error_of(node, "eth_sendRawTransaction", [signed({"maxFeePerGas": 1,
                                                                    "maxPriorityFeePerGas": 1})])
    assert "less than block base fee" in underpriced["message"]
    oversized = error_of(node, "eth_sendRawTransaction",
                         [signed({"data": b"\x01" * 1_100_000, "gas": 29_000_000})])
    assert "oversized" in oversized["message"]

    # A good one goes through; resubmitting it or its nonce is refused with geth's words.
    good = signed({"nonce": 0}, index=3)
    tx_hash = rpc_result(node.url, "eth_sendRawTransaction", [good])
    assert len(tx_hash) == 66
    again = error_of(node, "eth_sendRawTransaction", [good])
    assert again["message"] in ("already known",) or "nonce too low" in again["message"]

    # After all that the node still serves, and the good transaction lands in a block.
    assert rpc_result(node.url, "eth_chainId") == hex(DEVNET_CHAIN_ID)
    import time

    deadline = time.monotonic() + 30
    while (receipt := rpc_result(node.url, "eth_getTransactionReceipt", [tx_hash])) is None:
        assert time.monotonic() < deadline, "the good transaction was never included"
        time.sleep(0.05)
    assert int(receipt["blockNumber"], 16) >= 1


def test_replacement_needs_a_fee_bump(node: NodeProcess) -> None:
    # Queue a transaction behind a nonce gap so it stays in the pool, then try to replace it.
    account = 5
    first = signed({"nonce": 1, "maxPriorityFeePerGas": 10**9}, index=account)
    rpc_result(node.url, "eth_sendRawTransaction", [first])
    cheap = signed({"nonce": 1, "maxPriorityFeePerGas": 10**9 + 1, "value": 2}, index=account)
    assert "replacement transaction underpriced" in error_of(
        node, "eth_sendRawTransaction", [cheap])["message"]
    bumped = signed({"nonce": 1, "maxFeePerGas": 4 * 10**9, "maxPriorityFeePerGas": 2 * 10**9,
                     "value": 3}, index=account)
    replacement = rpc_result(node.url, "eth_sendRawTransaction", [bumped])
    pending_count = rpc_result(node.url, "eth_getTransactionCount",
                               [dev_accounts(account + 1)[account].address, "pending"])
    assert pending_count == "0x0"  # nonce 0 is missing: the replacement is queued, not pending
    # Filling the gap releases the queued replacement into a block.
    rpc_result(node.url, "eth_sendRawTransaction", [signed({"nonce": 0}, index=account)])
    import time

    deadline = time.monotonic() + 30
    while rpc_result(node.url, "eth_getTransactionReceipt", [replacement]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    tx = rpc_result(node.url, "eth_getTransactionByHash", [replacement])
    assert tx["value"] == "0x3"


def test_cors_for_browser_wallets(node: NodeProcess) -> None:
    """MetaMask calls from an extension origin: preflight and response carry CORS headers."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    connection.request("OPTIONS", "/", headers={
        "Origin": "chrome-extension://nkbihfbeogaeaoehlefnkodbefgpgknn",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    preflight = connection.getresponse()
    preflight.read()
    assert preflight.status == 200
    assert preflight.getheader("access-control-allow-origin") == "*"
    assert "POST" in (preflight.getheader("access-control-allow-methods") or "")
    connection.request("POST", "/", body=b'{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}',
                       headers={"Origin": "chrome-extension://x", "Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.getheader("access-control-allow-origin") == "*"
    assert json.loads(answer.read())["result"] == hex(DEVNET_CHAIN_ID)
    connection.request("PUT", "/", body=b"{}")
    refused = connection.getresponse()
    refused.read()
    assert refused.status == 405
    connection.close()
