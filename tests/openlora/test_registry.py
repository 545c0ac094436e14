"""The JSON-RPC registry client against a real HTTP JSON-RPC server on a free port."""

from __future__ import annotations

import shutil

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from openlora.peft_format import content_hash
from openlora.registry import GET_MODEL_METHOD, JsonRpcRegistryClient, RegistryError
from openlora.store import AdapterRejected, RegistryUnavailable
from tests.openlora.helpers import tiny_worker


async def _node(nursery, models: dict):
    seen = []

    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        if body["method"] != GET_MODEL_METHOD:
            return JSONResponse({"jsonrpc": "2.0", "id": body["id"],
                                 "error": {"code": -32601, "message": "method not found"}})
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"],
                             "result": models.get(body["params"][0])})

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    stop = trio.Event()
    app = Starlette(routes=[Route("/", rpc, methods=["POST"])])
    urls = await nursery.start(lambda task_status: serve(app, config, shutdown_trigger=stop.wait,
                                                         task_status=task_status))
    return urls[0], seen, stop


async def test_hash_check_over_json_rpc(nursery, tokenizer, adapters_dir, tmp_path):
    good = content_hash(adapters_dir / "qv-r4")
    url, seen, stop = await _node(nursery, {
        "qv-r4": {"adapterHash": good, "pricePer1kTokens": "0x3e8", "owner": "0x" + "11" * 20},
        "tampered": {"adapterHash": good},
    })
    client = JsonRpcRegistryClient(url)
    root = tmp_path / "adapters"
    shutil.copytree(adapters_dir / "qv-r4", root / "qv-r4")
    shutil.copytree(adapters_dir / "qv-r8", root / "tampered")  # other weights than registered
    worker = await trio.to_thread.run_sync(
        lambda: tiny_worker(tokenizer, root, registry=client))
    store = worker.engine.store
    assert [r.name for r in store.records()] == ["qv-r4"]  # the tampered one was refused
    assert store.get("qv-r4").price_per_1k_tokens == 1000
    assert {b["method"] for b in seen} == {GET_MODEL_METHOD}
    with pytest.raises(AdapterRejected, match="differs"):
        await trio.to_thread.run_sync(lambda: store.register("tampered", root / "tampered"))
    with pytest.raises(RegistryError, match="method not found"):
        await trio.to_thread.run_sync(lambda: client.call("eth_nothing", []))
    stop.set()
    await trio.sleep(0.2)
    dead = JsonRpcRegistryClient(url, timeout=2)
    store.registry = dead
    with pytest.raises(RegistryUnavailable):
        await trio.to_thread.run_sync(lambda: store.register("again", root / "qv-r4"))
