"""The OpenLoRA benchmark's HTTP path: the same 64 requests through the real API server.

Starts the worker's HTTP server in this process (hypercorn on trio, the engine on its thread)
on a free port and sends the requests concurrently with httpx, so the figure includes JSON,
HTTP, receipts and the event-loop hand-off; the engine driven directly is measured beside it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
import trio

from openlora.engine import Request
from openlora.sampling import SamplingParams
from openlora.service import serve


def measure(worker: Any, prompts: list[str], adapters: list[str], new_tokens: int,
            repeats: int) -> dict[str, float]:
    """Median output tokens/s through HTTP and straight through the engine."""
    engine = worker.engine
    tokenizer = worker.tokenizer
    n_tok = len(prompts) * new_tokens

    def direct() -> float:
        for p, a in zip(prompts, adapters, strict=True):
            engine.submit(Request(a, tokenizer(p).input_ids,
                                  SamplingParams(max_tokens=new_tokens, temperature=0.0,
                                                 ignore_eos=True)))
        start = time.perf_counter()
        engine.run_until_idle()
        return n_tok / (time.perf_counter() - start)

    async def over_http() -> list[float]:
        rates = []
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(lambda task_status: serve(
                worker, "127.0.0.1", 0, shutdown=stop, task_status=task_status))
            limits = httpx.Limits(max_connections=len(prompts))
            async with httpx.AsyncClient(base_url=urls[0], timeout=600, limits=limits) as http:
                async def one(p: str, a: str) -> None:
                    r = await http.post("/v1/completions", json={
                        "model": a, "prompt": p, "max_tokens": new_tokens, "temperature": 0,
                        "ignore_eos": True})
                    assert r.status_code == 200, r.text
                for _ in range(repeats + 1):  # the first round warms up
                    start = time.perf_counter()
                    async with trio.open_nursery() as inner:
                        for p, a in zip(prompts, adapters, strict=True):
                            inner.start_soon(one, p, a)
                    rates.append(n_tok / (time.perf_counter() - start))
            stop.set()
        return rates[1:]

    direct()
    direct_rates = [direct() for _ in range(repeats)]
    http_rates = trio.run(over_http)
    # the server stopped the engine thread; leave the engine usable for direct driving
    engine._closed = False
    return {"direct": statistics.median(direct_rates), "http": statistics.median(http_rates)}
