"""Shared fixtures: a tiny random Llama with a byte tokenizer and a set of PEFT adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.openlora.factories import byte_tokenizer, make_adapter, save_base, tiny_llama

ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# name -> (seed, rank, targets, extra LoraConfig fields): mixed ranks and targets on purpose
ADAPTERS: dict[str, tuple[int, int, tuple[str, ...], dict]] = {
    "qv-r4": (1, 4, ("q_proj", "v_proj"), {}),
    "qv-r8": (2, 8, ("q_proj", "v_proj"), {}),
    "all-r16": (3, 16, ALL, {}),
    "mlp-r2": (4, 2, ("gate_proj", "up_proj", "down_proj"), {}),
    "rslora-r8": (5, 8, ("q_proj", "k_proj", "o_proj"), {"use_rslora": True}),
    "pattern": (6, 8, ("q_proj", "v_proj"), {"rank_pattern": {"v_proj": 4},
                                              "alpha_pattern": {"q_proj": 3}}),
}


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    return byte_tokenizer()


@pytest.fixture(scope="session")
def adapters_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adapters")
    base = tiny_llama()
    for name, (seed, rank, targets, extra) in ADAPTERS.items():
        make_adapter(base, root / name, seed, rank=rank, targets=targets, **extra)
    return root


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_base(tmp_path_factory.mktemp("base") / "tiny-llama")
