"""Receipts carry attribution weights from the datanets span-attribution engine."""

from __future__ import annotations

import json
import shutil

import httpx
import trio

from openlora.attribution import CONTRIBUTIONS_FILE, ContributionsFileAttributor
from openlora.service import serve
from tests.openlora.helpers import tiny_worker


def _write(folder, docs: dict[int, str]) -> None:
    with open(folder / CONTRIBUTIONS_FILE, "w") as fh:
        for cid, text in docs.items():
            fh.write(json.dumps({"id": cid, "text": text}) + "\n")


def test_weights_over_the_adapters_contributions(adapters_dir, tmp_path, tokenizer):
    root = tmp_path / "adapters"
    shutil.copytree(adapters_dir / "qv-r4", root / "with")
    shutil.copytree(adapters_dir / "qv-r8", root / "without")
    shutil.copytree(adapters_dir / "qv-r8", root / "broken")
    _write(root / "with", {7: "the quick brown fox jumps over the lazy dog",
                           9: "a completely different sentence about ledgers and data"})
    (root / "broken" / CONTRIBUTIONS_FILE).write_text("not json\n")
    store = tiny_worker(tokenizer, root).engine.store
    attributor = ContributionsFileAttributor(store)
    assert attributor.weights("with", "well, the quick brown fox jumps!") == {7: 10_000}
    both = attributor.weights("with", "the quick brown fox and sentence about ledgers and data")
    assert set(both) == {7, 9} and sum(both.values()) == 10_000
    assert attributor.weights("with", "nothing reused here at all") == {}
    assert attributor.weights("without", "the quick brown fox jumps") == {}
    assert attributor.weights("broken", "the quick brown fox jumps") == {}


async def test_receipts_name_the_contributions_an_output_reuses(nursery, adapters_dir, tmp_path,
                                                                tokenizer):
    root = tmp_path / "adapters"
    shutil.copytree(adapters_dir / "all-r16", root / "model-a")
    worker = tiny_worker(tokenizer, root)
    stop = trio.Event()
    urls = await nursery.start(lambda task_status: serve(
        worker, "127.0.0.1", 0, shutdown=stop, task_status=task_status, adapters_root=root))
    body = {"model": "model-a", "prompt": "hello", "max_tokens": 40, "temperature": 0,
            "ignore_eos": True}
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as http:
        first = (await http.post("/v1/completions", json=body)).json()
        assert first["openledger_receipt"]["attribution"] == {}
        text = first["choices"][0]["text"]
        # a contribution that holds this very output (and one that does not)
        _write(root / "model-a", {3: "unrelated words only", 11: f"prefix {text} suffix"})
        r = await http.post("/v1/unload_lora_adapter", json={"lora_name": "model-a"})
        assert r.status_code == 200, r.text
        r = await http.post("/v1/load_lora_adapter", json={"lora_name": "model-a"})
        assert r.status_code == 200, r.text
        again = (await http.post("/v1/completions", json=body)).json()
    assert again["choices"][0]["text"] == text
    weights = again["openledger_receipt"]["attribution"]
    from datanets.attribution import tokenize

    assert len(tokenize(text)) >= 4  # long enough to count as a reused span
    assert weights == {"11": 10_000}
    stop.set()
