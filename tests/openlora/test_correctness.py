"""Batched generation over many adapters equals each adapter alone through peft."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel

from openlora.backends import CpuLoraBackend, CudaLoraBackend
from openlora.engine import Engine, Event, Request
from openlora.sampling import SamplingParams
from openlora.store import AdapterStore
from openlora.worker import WorkerConfig, build_from_model
from tests.openlora.conftest import ADAPTERS
from tests.openlora.factories import tiny_llama

PROMPTS = ["hello world", "abc", "the quick brown fox jumps", "LoRA!", "x", "many adapters, one base"]
NEW_TOKENS = 10


def _peft(folder: Path, merged: bool = False):
    model = PeftModel.from_pretrained(tiny_llama(), folder).eval()
    return model.merge_and_unload() if merged else model


def _peft_greedy(model, prompt_ids: list[int]) -> list[int]:
    out = model.generate(
        torch.tensor([prompt_ids]), attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
        max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=258,
    )
    return out[0, len(prompt_ids):].tolist()


@pytest.fixture(scope="module")
def references(adapters_dir, tokenizer):
    """(adapter or None, prompt ids) -> peft greedy tokens, and last-token logits."""
    tokens, logits = {}, {}
    for name in [None, *ADAPTERS]:
        model = tiny_llama() if name is None else _peft(adapters_dir / name)
        for prompt in PROMPTS:
            ids = tokenizer(prompt).input_ids
            tokens[name, prompt] = _peft_greedy(model, ids)
            with torch.no_grad():
                logits[name, prompt] = model(torch.tensor([ids])).logits[0, -1]
    return tokens, logits


def _engine(adapters_dir, tokenizer, backend=None, budget_slots: int = 16, max_batch: int = 64):
    config = WorkerConfig(adapters_dir=str(adapters_dir), max_rank=16, max_batch=max_batch,
                          device_budget_bytes=1)
    model = tiny_llama()
    from openlora.runner import slot_bytes_for

    config.device_budget_bytes = budget_slots * slot_bytes_for(model, config.lora_modules, 16,
                                                               torch.float32)
    worker = build_from_model(model, tokenizer, "tiny", config, torch.device("cpu"))
    if backend is not None:
        worker.engine.runner.ctx.backend = backend
    return worker.engine


def _run(engine: Engine, jobs: list[tuple[str | None, str]], tokenizer) -> list[Event]:
    finals: dict[int, Event] = {}
    for i, (adapter, prompt) in enumerate(jobs):
        def record(event: Event, i: int = i) -> None:
            if event.finished:
                finals[i] = event
        engine.submit(Request(adapter, tokenizer(prompt).input_ids,
                              SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0,
                                             ignore_eos=True), record))
    engine.run_until_idle()
    return [finals[i] for i in range(len(jobs))]


def _jobs():
    names = [None, *ADAPTERS]
    return [(names[(i * 5 + j) % len(names)], p) for i, p in enumerate(PROMPTS) for j in range(3)]


@pytest.mark.parametrize("backend", [None, CudaLoraBackend("cpu"),
                                     CudaLoraBackend("cpu", max_segments=2)],
                         ids=["cpu-gather", "sgmv", "sgmv-gather"])
def test_batched_greedy_tokens_equal_peft_alone(adapters_dir, tokenizer, references, backend):
    engine = _engine(adapters_dir, tokenizer, backend)
    jobs = _jobs()
    assert len({a for a, _ in jobs}) == len(ADAPTERS) + 1  # every adapter and the base in one batch
    events = _run(engine, jobs, tokenizer)
    tokens, _ = references
    for (adapter, prompt), event in zip(jobs, events, strict=True):
        assert event.output_ids == tokens[adapter, prompt], (adapter, prompt)
        assert event.finish_reason == "length"
        assert event.completion_tokens == NEW_TOKENS


def test_prefill_logits_match_peft_within_tolerance(adapters_dir, tokenizer, references):
    engine = _engine(adapters_dir, tokenizer)
    jobs = [(name, p) for name in [None, *ADAPTERS] for p in PROMPTS[:3]]
    slots = [0 if a is None else engine.store.acquire(a) for a, _ in jobs]
    logits = engine.runner.prefill([tokenizer(p).input_ids for _, p in jobs], slots)
    _, ref = references
    for row, (adapter, prompt) in enumerate(jobs):
        torch.testing.assert_close(logits[row], ref[adapter, prompt], rtol=1e-4, atol=1e-4)


def test_merged_peft_gives_the_same_tokens(adapters_dir, tokenizer, references):
    tokens, _ = references
    for name in ("all-r16", "pattern"):
        merged = _peft(adapters_dir / name, merged=True)
        for prompt in PROMPTS[:2]:
            assert _peft_greedy(merged, tokenizer(prompt).input_ids) == tokens[name, prompt]


def test_wrong_adapter_is_detected(adapters_dir, tokenizer, references):
    """Swapping two adapters' slots changes the tokens: the comparison above can fail."""
    engine = _engine(adapters_dir, tokenizer)
    bank, store = engine.runner.bank, engine.store
    slot_a, slot_b = store.acquire("qv-r4"), store.acquire("qv-r8")
    from openlora.peft_format import load_adapter_weights

    bank.write(slot_a, load_adapter_weights(adapters_dir / "qv-r8"))
    bank.write(slot_b, load_adapter_weights(adapters_dir / "qv-r4"))
    events = _run(engine, [("qv-r4", p) for p in PROMPTS], tokenizer)
    tokens, _ = references
    wrong = sum(e.output_ids != tokens["qv-r4", p] for e, p in zip(events, PROMPTS, strict=True))
    assert wrong >= len(PROMPTS) - 1
    # and every adapter differs from the base model on some prompt
    for name in ADAPTERS:
        assert any(tokens[name, p] != tokens[None, p] for p in PROMPTS), name


def test_requests_joining_mid_flight_match_alone(adapters_dir, tokenizer, references):
    """Continuous batching: requests admitted between decode steps still match peft alone."""
    engine = _engine(adapters_dir, tokenizer, max_batch=4)
    names = list(ADAPTERS)
    finals: dict[int, Event] = {}
    jobs = [(names[i % len(names)], PROMPTS[i % len(PROMPTS)]) for i in range(10)]
    for i, (adapter, prompt) in enumerate(jobs):
        engine.submit(Request(adapter, tokenizer(prompt).input_ids,
                              SamplingParams(max_tokens=NEW_TOKENS - (i % 4), temperature=0.0,
                                             ignore_eos=True),
                              lambda e, i=i: finals.__setitem__(i, e) if e.finished else None))
        engine.step()  # one request arrives per step while others run
    engine.run_until_idle()
    tokens, _ = references
    for i, (adapter, prompt) in enumerate(jobs):
        assert finals[i].output_ids == tokens[adapter, prompt][: NEW_TOKENS - (i % 4)]
    assert engine.runner.n_rows == 0


def test_slot_eviction_and_reload_keep_results(adapters_dir, tokenizer, references):
    """With 2 device slots for 6 adapters, paging in and out still gives peft's tokens."""
    engine = _engine(adapters_dir, tokenizer, budget_slots=2, max_batch=8)
    store: AdapterStore = engine.store
    jobs = [(name, PROMPTS[0]) for name in ADAPTERS] * 2
    events = _run(engine, jobs, tokenizer)
    tokens, _ = references
    for (adapter, prompt), event in zip(jobs, events, strict=True):
        assert event.output_ids == tokens[adapter, prompt]
    assert len(store.resident()) <= 2
    assert store.stats.device_loads >= len(ADAPTERS)
    assert store.stats.device_evictions == store.stats.device_loads - 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_engine_matches_peft(adapters_dir, tokenizer, references):
    config = WorkerConfig(adapters_dir=str(adapters_dir), max_rank=16, device_budget_bytes=1 << 24)
    worker = build_from_model(tiny_llama().cuda(), tokenizer, "tiny", config, torch.device("cuda"))
    assert isinstance(worker.engine.runner.ctx.backend, CudaLoraBackend)
    events = _run(worker.engine, _jobs(), tokenizer)
    tokens, _ = references
    for (adapter, prompt), event in zip(_jobs(), events, strict=True):
        assert event.output_ids == tokens[adapter, prompt]


def test_cpu_backend_is_default(adapters_dir, tokenizer):
    assert isinstance(_engine(adapters_dir, tokenizer).runner.ctx.backend, CpuLoraBackend)
