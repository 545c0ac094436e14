"""Building workers around the tiny test model."""

from __future__ import annotations

from pathlib import Path

import torch

from openlora.runner import slot_bytes_for
from openlora.worker import Worker, WorkerConfig, build_from_model
from tests.openlora.factories import tiny_llama


def tiny_worker(tokenizer, adapters_dir: Path | None, slots: int = 8, **config_fields) -> Worker:
    config = WorkerConfig(adapters_dir=str(adapters_dir) if adapters_dir else None,
                          max_rank=16, **config_fields)
    model = tiny_llama()
    config.device_budget_bytes = slots * slot_bytes_for(model, config.lora_modules, 16,
                                                        torch.float32)
    return build_from_model(model, tokenizer, "tiny-llama", config, torch.device("cpu"))
