"""Assembling a worker: base model, backend, slot bank, adapter store and engine, from a config."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from openlora.abc import RegistryClientAPI
from openlora.backends import select_backend
from openlora.base_model import load_base
from openlora.engine import Engine
from openlora.lora_layers import SUPPORTED_MODULES
from openlora.runner import ModelRunner, slot_bytes_for
from openlora.store import AdapterStore

log = logging.getLogger(__name__)

MIB = 1 << 20


@dataclass
class WorkerConfig:
    base_model: str | None = None
    """Folder or hub id; None means the default SmolLM2-135M-Instruct."""
    adapters_dir: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    """``float32``, ``bfloat16``, ``float16``; auto: float32 on CPU, bfloat16 on CUDA."""
    max_rank: int = 16
    lora_modules: tuple[str, ...] = SUPPORTED_MODULES
    device_budget_bytes: int = 1024 * MIB
    """Memory for adapter slots on the device; the slot count follows from it. On the CPU a
    slot's pages are committed only once an adapter is written into it."""
    host_budget_bytes: int = 512 * MIB
    """Memory for cached adapter weights in host RAM."""
    max_batch: int = 32
    max_waiting: int = 256
    max_model_len: int = 2048
    kv_budget_bytes: int = 2048 * MIB
    """Memory for the key/value cache; requests wait for room once it is full."""
    price_per_1k_tokens: int = 0
    registry: RegistryClientAPI | None = field(default=None, repr=False)
    threads: int | None = None


@dataclass
class Worker:
    engine: Engine
    tokenizer: Any
    base_name: str
    config: WorkerConfig
    device: torch.device


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(table)}")
    return table[name]


def build_from_model(model: Any, tokenizer: Any, base_name: str, config: WorkerConfig,
                     device: torch.device) -> Worker:
    """Wrap an already loaded model (tests and benchmarks pass their own)."""
    dtype = next(model.parameters()).dtype
    per_slot = slot_bytes_for(model, config.lora_modules, config.max_rank, dtype)
    if per_slot == 0:
        raise ValueError(f"the base model has no layers named {config.lora_modules}")
    n_slots = config.device_budget_bytes // per_slot + 1  # + the zero slot
    if n_slots < 2:
        raise ValueError(
            f"device budget {config.device_budget_bytes} bytes is below one adapter slot "
            f"({per_slot} bytes at rank {config.max_rank})"
        )
    backend = select_backend(device)
    runner = ModelRunner(model, backend, n_slots=n_slots, max_rank=config.max_rank,
                         module_names=config.lora_modules, max_model_len=config.max_model_len,
                         max_rows=config.max_batch)
    store = AdapterStore(
        runner.bank,
        host_budget_bytes=config.host_budget_bytes,
        dtype=dtype,
        registry=config.registry,
        default_price_per_1k=config.price_per_1k_tokens,
        pin_host_memory=device.type == "cuda",
    )
    engine = Engine(runner, store, tokenizer, max_batch=config.max_batch,
                    max_waiting=config.max_waiting, kv_budget_bytes=config.kv_budget_bytes)
    if config.adapters_dir:
        names = store.register_dir(Path(config.adapters_dir))
        log.info("registered %d adapters from %s", len(names), config.adapters_dir)
    log.info("%s on %s: %d adapter slots of %.1f MiB", base_name, device, n_slots - 1,
             per_slot / MIB)
    return Worker(engine, tokenizer, base_name, config, device)


def build_worker(config: WorkerConfig) -> Worker:
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    model, tokenizer, base_name = load_base(config.base_model, device, dtype)
    return build_from_model(model, tokenizer, base_name, config, device)
