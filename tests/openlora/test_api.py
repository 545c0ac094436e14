"""The HTTP API on a real port, used through the `openai` client and httpx."""

from __future__ import annotations

import shutil

import httpx
import openai
import pytest
import trio

from openlora.receipts import keccak_hex
from openlora.service import serve
from tests.openlora.helpers import tiny_worker

pytestmark = pytest.mark.slow


async def _start(nursery, tokenizer, adapters_dir, **config):
    options = {k: config.pop(k) for k in list(config) if k in ("allow_any_adapter_path",)}
    worker = tiny_worker(tokenizer, adapters_dir, **config)
    stop = trio.Event()
    urls = await nursery.start(lambda task_status: serve(
        worker, "127.0.0.1", 0, shutdown=stop, task_status=task_status,
        adapters_root=adapters_dir, **options))
    return worker, urls[0], stop


async def _in_thread(fn):
    return await trio.to_thread.run_sync(fn)


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)


async def test_models_completions_chat_and_streaming(nursery, tokenizer, adapters_dir):
    worker, url, stop = await _start(nursery, tokenizer, adapters_dir, price_per_1k_tokens=0)
    client = _client(url)
    models = await _in_thread(lambda: client.models.list())
    ids = [m.id for m in models.data]
    assert ids[0] == "tiny-llama" and {"qv-r4", "all-r16", "pattern"} <= set(ids)

    prompt = "hello world"
    done = await _in_thread(lambda: client.completions.create(
        model="all-r16", prompt=prompt, max_tokens=8, temperature=0,
        extra_body={"ignore_eos": True}))
    text = done.choices[0].text
    assert done.usage.completion_tokens == 8
    assert done.usage.prompt_tokens == len(tokenizer(prompt).input_ids)
    # the same request straight through the engine gives the same text
    from openlora.engine import Request
    from openlora.sampling import SamplingParams
    final = []
    worker.engine.submit(Request("all-r16", tokenizer(prompt).input_ids,
                                 SamplingParams(max_tokens=8, temperature=0, ignore_eos=True),
                                 lambda e: final.append(e) if e.finished else None))
    while not final:
        await trio.sleep(0.01)
    assert final[0].text == text
    base = await _in_thread(lambda: client.completions.create(
        model="tiny-llama", prompt=prompt, max_tokens=8, temperature=0,
        extra_body={"ignore_eos": True}))
    assert base.choices[0].text != text  # the adapter matters

    receipt = done.model_extra["openledger_receipt"]
    assert receipt["prompt_hash"] == keccak_hex(prompt)
    assert receipt["output_hash"] == keccak_hex(text)
    assert receipt["model"] == "all-r16" and receipt["adapter_hash"].startswith("0x")
    assert receipt["completion_tokens"] == 8

    stream = await _in_thread(lambda: list(client.completions.create(
        model="all-r16", prompt=prompt, max_tokens=8, temperature=0, stream=True,
        extra_body={"ignore_eos": True})))
    assert "".join(c.choices[0].text for c in stream) == text
    assert stream[-1].choices[0].finish_reason == "length"

    messages = [{"role": "user", "content": "hi there"}]
    chat = await _in_thread(lambda: client.chat.completions.create(
        model="qv-r8", messages=messages, max_tokens=6, temperature=0,
        extra_body={"ignore_eos": True}))
    chat_stream = await _in_thread(lambda: list(client.chat.completions.create(
        model="qv-r8", messages=messages, max_tokens=6, temperature=0, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True})))
    streamed = "".join((c.choices[0].delta.content or "") for c in chat_stream if c.choices)
    assert streamed == chat.choices[0].message.content
    assert chat_stream[-1].usage.completion_tokens == 6
    template = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert chat.usage.prompt_tokens == len(tokenizer(template, add_special_tokens=False).input_ids)

    seeded = [await _in_thread(lambda: client.completions.create(
        model="qv-r4", prompt="abc", max_tokens=12, temperature=1.0, top_p=0.9, seed=7,
        extra_body={"ignore_eos": True})) for _ in range(2)]
    assert seeded[0].choices[0].text == seeded[1].choices[0].text

    async with httpx.AsyncClient(base_url=url) as http:
        metrics = (await http.get("/metrics")).text
        assert "openlora_generated_tokens_total" in metrics
        generated = [line for line in metrics.splitlines()
                     if line.startswith("openlora_generated_tokens_total")]
        assert float(generated[0].split()[-1]) >= 8 * 5
        assert "openlora_resident_adapters" in metrics
        receipts = (await http.get("/v1/receipts", params={"limit": 3})).json()["data"]
        assert len(receipts) == 3
    stop.set()


async def test_errors_for_unknown_adapters_and_bad_parameters(nursery, tokenizer, adapters_dir):
    _, url, stop = await _start(nursery, tokenizer, adapters_dir)
    client = _client(url)
    with pytest.raises(openai.NotFoundError) as info:
        await _in_thread(lambda: client.completions.create(model="nope", prompt="x"))
    assert "nope" in str(info.value)
    for bad in ({"temperature": 5}, {"max_tokens": 0}, {"top_p": 0}, {"n": 2},
                {"max_tokens": 10_000}, {"stop": 5}):
        with pytest.raises(openai.BadRequestError):
            await _in_thread(lambda bad=bad: client.completions.create(
                model="qv-r4", prompt="x", **bad))
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/v1/completions", content=b"{not json")
        assert r.status_code == 400 and "invalid JSON" in r.json()["error"]["message"]
        r = await http.post("/v1/completions", json={"model": "qv-r4", "prompt": ""})
        assert r.status_code == 400
        r = await http.post("/v1/chat/completions", json={"model": "qv-r4", "messages": "hi"})
        assert r.status_code == 400
        r = await http.post("/v1/completions", content=b"x" * (5 << 20),
                            headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert (await http.get("/health")).json()["status"] == "ok"  # still serving
    stop.set()


async def test_adapter_load_and_unload_at_run_time(nursery, tokenizer, adapters_dir, tmp_path):
    root = tmp_path / "adapters"
    root.mkdir()
    shutil.copytree(adapters_dir / "qv-r4", root / "only")
    _, url, stop = await _start(nursery, tokenizer, root)
    shutil.copytree(adapters_dir / "all-r16", root / "fresh")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"model": "fresh", "prompt": "abc", "max_tokens": 4}
        assert (await http.post("/v1/completions", json=body)).status_code == 404
        r = await http.post("/v1/load_lora_adapter", json={"lora_name": "fresh"})
        assert r.status_code == 200, r.text
        assert (await http.post("/v1/completions", json=body)).status_code == 200
        r = await http.post("/v1/load_lora_adapter", json={"lora_name": "fresh"})
        assert r.status_code == 409
        outside = str(adapters_dir / "qv-r8")
        r = await http.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": outside})
        assert r.status_code == 403
        r = await http.post("/v1/load_lora_adapter", json={"lora_name": "y",
                                                           "lora_path": str(root / "missing")})
        assert r.status_code == 400
        listed = (await http.get("/v1/adapters")).json()["data"]
        assert {a["name"] for a in listed} == {"only", "fresh"}
        r = await http.post("/v1/unload_lora_adapter", json={"lora_name": "fresh"})
        assert r.status_code == 200
        assert (await http.post("/v1/completions", json=body)).status_code == 404
        r = await http.post("/v1/unload_lora_adapter", json={"lora_name": "fresh"})
        assert r.status_code == 404
    stop.set()


async def test_back_pressure_answers_429_and_503(nursery, tokenizer, adapters_dir):
    worker, url, stop = await _start(nursery, tokenizer, adapters_dir, max_waiting=0)
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/v1/completions", json={"model": "qv-r4", "prompt": "abc"})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "rate_limit_error"
        await trio.to_thread.run_sync(worker.engine.stop)
        worker.engine.max_waiting = 10
        r = await http.post("/v1/completions", json={"model": "qv-r4", "prompt": "abc"})
        assert r.status_code == 503
        metrics = (await http.get("/metrics")).text
        assert 'openlora_requests_rejected_total{reason="server_busy"} 1.0' in metrics
    stop.set()


async def test_concurrent_requests_share_batches(nursery, tokenizer, adapters_dir):
    worker, url, stop = await _start(nursery, tokenizer, adapters_dir, max_batch=16)
    names = ["qv-r4", "qv-r8", "all-r16", "mlp-r2", "pattern", "tiny-llama"]
    results: dict[int, str] = {}
    expected: dict[int, str] = {}

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        async def one(i: int) -> None:
            body = {"model": names[i % len(names)], "prompt": f"request {i % 5}",
                    "max_tokens": 6, "temperature": 0, "ignore_eos": True}
            if i % 2:
                async with http.stream("POST", "/v1/completions",
                                       json={**body, "stream": True}) as r:
                    text = ""
                    async for line in r.aiter_lines():
                        if line.startswith("data: ") and line != "data: [DONE]":
                            import json

                            text += json.loads(line[6:])["choices"][0]["text"]
                    results[i] = text
            else:
                results[i] = (await http.post("/v1/completions", json=body)).json()[
                    "choices"][0]["text"]
            expected[i] = f"{names[i % len(names)]}|{i % 5}"

        async with trio.open_nursery() as inner:
            for i in range(24):
                inner.start_soon(one, i)
    assert len(results) == 24
    by_key: dict[str, set[str]] = {}
    for i, key in expected.items():
        by_key.setdefault(key, set()).add(results[i])
    assert all(len(texts) == 1 for texts in by_key.values())  # same input, same greedy output
    assert worker.engine.steps < 24 * 6  # requests were batched, not run one by one
    stop.set()


async def test_engine_failure_fails_requests_but_keeps_serving(nursery, tokenizer, adapters_dir,
                                                               monkeypatch):
    worker, url, stop = await _start(nursery, tokenizer, adapters_dir)
    runner = worker.engine.runner
    real = runner.decode
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated device fault")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "decode", flaky)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"model": "qv-r4", "prompt": "abc", "max_tokens": 4, "ignore_eos": True}
        r = await http.post("/v1/completions", json=body)
        assert r.status_code == 500 and "simulated device fault" in r.json()["error"]["message"]
        r = await http.post("/v1/completions", json=body)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    with trio.fail_after(10):  # the row leaves right after the final event is sent
        while worker.engine.runner.n_rows:
            await trio.sleep(0.01)
    stop.set()


async def test_client_leaving_a_stream_cancels_its_request(nursery, tokenizer, adapters_dir):
    worker, url, stop = await _start(nursery, tokenizer, adapters_dir)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"model": "qv-r4", "prompt": "abc", "max_tokens": 400, "stream": True,
                "ignore_eos": True}
        async with http.stream("POST", "/v1/completions", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    break  # leave after the first chunk
    with trio.fail_after(20):
        while worker.engine.running or worker.engine.queue_depth:
            await trio.sleep(0.05)
    assert worker.engine.tokens_generated < 400
    assert worker.engine.store.get("qv-r4").pins == 0
    stop.set()


async def test_api_key_guards_v1_but_not_health(nursery, tokenizer, adapters_dir):
    worker = tiny_worker(tokenizer, adapters_dir)
    stop = trio.Event()
    urls = await nursery.start(lambda task_status: serve(
        worker, "127.0.0.1", 0, shutdown=stop, task_status=task_status, api_key="s3cret"))
    url = urls[0]
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = await http.get("/v1/models", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert (await http.get("/health")).status_code == 200
    client = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
    models = await _in_thread(lambda: client.models.list())
    assert models.data[0].id == "tiny-llama"
    stop.set()
