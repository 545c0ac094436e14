"""Adapter registration, formats, LRU paging under byte budgets, and the registry hash check."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from openlora.abc import RegisteredModel
from openlora.peft_format import content_hash, inspect_adapter, load_adapter_weights
from openlora.registry import StaticRegistryClient
from openlora.store import (
    AdapterExists,
    AdapterInUse,
    AdapterNotFound,
    AdapterRejected,
    NoFreeSlot,
    RegistryUnavailable,
)
from tests.openlora.factories import make_adapter, tiny_llama
from tests.openlora.helpers import tiny_worker


def test_inspect_reads_ranks_modules_and_hash(adapters_dir):
    spec = inspect_adapter(adapters_dir / "pattern")
    assert spec.rank == 8
    assert "model.layers.1.self_attn.v_proj" in spec.modules
    assert spec.content_hash == content_hash(adapters_dir / "pattern")
    weights = load_adapter_weights(adapters_dir / "pattern")
    a, b = weights["model.layers.0.self_attn.v_proj"]
    assert a.shape == (64, 4) and b.shape == (4, 32)  # rank_pattern gives v_proj rank 4


def test_hash_changes_with_weights_or_config(adapters_dir, tmp_path):
    copy = shutil.copytree(adapters_dir / "qv-r4", tmp_path / "copy")
    original = content_hash(copy)
    config = json.loads((copy / "adapter_config.json").read_text())
    config["lora_alpha"] = 99
    (copy / "adapter_config.json").write_text(json.dumps(config))
    assert content_hash(copy) != original


@pytest.mark.parametrize("change, message", [
    ({"use_dora": True}, "DoRA"),
    ({"peft_type": "IA3"}, "not LORA"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"bias": "all"}, "bias"),
])
def test_unsupported_configs_are_refused_clearly(adapters_dir, tmp_path, tokenizer, change, message):
    bad = shutil.copytree(adapters_dir / "qv-r4", tmp_path / "bad")
    config = json.loads((bad / "adapter_config.json").read_text())
    config.update(change)
    (bad / "adapter_config.json").write_text(json.dumps(config))
    store = tiny_worker(tokenizer, None).engine.store
    with pytest.raises(AdapterRejected, match=message):
        store.register("bad", bad)
    assert "bad" not in store


def test_registration_errors(adapters_dir, tmp_path, tokenizer):
    store = tiny_worker(tokenizer, None).engine.store
    with pytest.raises(AdapterRejected, match=r"needs adapter_config\.json"):
        store.register("empty", tmp_path)
    (tmp_path / "adapter_config.json").write_text("{")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AdapterRejected):
        store.register("garbage", tmp_path)
    with pytest.raises(AdapterRejected, match="invalid adapter name"):
        store.register("../etc", adapters_dir / "qv-r4")
    big = make_adapter(tiny_llama(), tmp_path / "big", 9, rank=32)
    with pytest.raises(AdapterRejected, match="rank 32"):
        store.register("big", big)
    store.register("ok", adapters_dir / "qv-r4")
    with pytest.raises(AdapterExists):
        store.register("ok", adapters_dir / "qv-r8")
    with pytest.raises(AdapterNotFound):
        store.acquire("missing")


def test_wrong_base_model_is_refused(tmp_path, tokenizer):
    other = make_adapter(tiny_llama(layers=3), tmp_path / "deeper", 1)
    store = tiny_worker(tokenizer, None).engine.store
    with pytest.raises(AdapterRejected, match="wrong base model"):
        store.register("deeper", other)


def test_register_dir_skips_bad_folders(adapters_dir, tmp_path, tokenizer):
    root = tmp_path / "root"
    shutil.copytree(adapters_dir, root)
    (root / "junk").mkdir()
    worker = tiny_worker(tokenizer, root)
    names = {r.name for r in worker.engine.store.records()}
    assert names == {p.name for p in adapters_dir.iterdir()}


def test_device_slots_lru_and_pins(adapters_dir, tokenizer):
    store = tiny_worker(tokenizer, adapters_dir, slots=2).engine.store
    a = store.acquire("qv-r4")
    b = store.acquire("qv-r8")
    assert {a, b} == {1, 2}
    with pytest.raises(NoFreeSlot):
        store.acquire("all-r16")  # both slots pinned by running requests
    with pytest.raises(AdapterInUse):
        store.unregister("qv-r4")
    store.release("qv-r4")
    store.release("qv-r8")
    store.acquire("qv-r8")  # now most recently used
    store.release("qv-r8")
    c = store.acquire("all-r16")
    assert c == a  # the least recently used slot was reused
    assert set(store.resident()) == {"qv-r8", "all-r16"}
    module = store.bank.modules["model.layers.0.self_attn.q_proj"]
    expected_a, _ = load_adapter_weights(adapters_dir / "all-r16")["model.layers.0.self_attn.q_proj"]
    assert torch.equal(module.a_stack[c, :, :16], expected_a)
    # a module the new adapter does not touch was cleared from the reused slot
    mlp = store.bank.modules["model.layers.0.mlp.gate_proj"]
    assert c in mlp.filled
    store.release("all-r16")
    mlp_only = store.acquire("mlp-r2")
    q = store.bank.modules["model.layers.0.self_attn.q_proj"]
    assert mlp_only not in q.filled and not q.a_stack[mlp_only].any()


def test_host_cache_respects_byte_budget(adapters_dir, tokenizer):
    one = inspect_adapter(adapters_dir / "qv-r8").nbytes
    store = tiny_worker(tokenizer, adapters_dir, slots=1,
                        host_budget_bytes=int(one * 1.6)).engine.store
    for name in ("qv-r8", "qv-r4", "pattern", "qv-r8"):
        store.acquire(name)
        store.release(name)
    assert store.host_bytes <= int(one * 1.6)
    assert store.stats.host_evictions >= 1
    assert store.stats.device_evictions == 3


def test_chain_registry_hash_check(adapters_dir, tokenizer):
    good = content_hash(adapters_dir / "qv-r4")
    registry = StaticRegistryClient({
        "m-good": RegisteredModel("m-good", good, price_per_1k_tokens=5000),
        "m-bad": RegisteredModel("m-bad", "0x" + "00" * 32),
        "m-retired": RegisteredModel("m-retired", good, retired=True),
    })
    store = tiny_worker(tokenizer, None, registry=registry).engine.store
    record = store.register("good", adapters_dir / "qv-r4", model_id="m-good")
    assert record.price_per_1k_tokens == 5000
    with pytest.raises(AdapterRejected, match="differs from the chain registry"):
        store.register("bad", adapters_dir / "qv-r4", model_id="m-bad")
    with pytest.raises(AdapterRejected, match="retired"):
        store.register("old", adapters_dir / "qv-r4", model_id="m-retired")
    with pytest.raises(AdapterRejected, match="not in the chain registry"):
        store.register("m-unknown", adapters_dir / "qv-r4")
    assert registry.calls == ["m-good", "m-bad", "m-retired", "m-unknown"]

    class Broken:
        def get_model(self, model_id):
            raise ConnectionError("node down")

    store.registry = Broken()
    with pytest.raises(RegistryUnavailable, match="node down"):
        store.register("later", adapters_dir / "qv-r4")


def test_adapter_for_a_wider_base_is_refused(tmp_path, tokenizer):
    wider = make_adapter(tiny_llama(hidden=96), tmp_path / "wider", 1)
    store = tiny_worker(tokenizer, None).engine.store
    with pytest.raises(AdapterRejected, match="wrong base model"):
        store.register("wider", wider)


def test_unused_slots_cost_no_memory_until_written(adapters_dir, tokenizer):
    """Slots start unwritten; a reused slot is zeroed wherever the new adapter is absent."""
    store = tiny_worker(tokenizer, adapters_dir, slots=3).engine.store
    q = store.bank.modules["model.layers.0.self_attn.q_proj"]
    assert q.zeroed == {0} and not q.a_stack[0].any()
    slot = store.acquire("mlp-r2")
    assert slot in q.zeroed and not q.a_stack[slot].any()
