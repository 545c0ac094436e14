"""Interfaces of the worker: the batched-LoRA backend and the chain registry client.

Backends follow vLLM's punica wrapper split (a CPU reference and an accelerator backend with the
same semantics); the registry client is how the worker asks a node which adapter hash a model
has, over JSON-RPC only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import torch


class BatchLoraMetaAPI(ABC):
    """Per-forward metadata a backend derives once from the rows' slot indices."""

    slots: tuple[int, ...]
    """Slot index of each row (0 = no adapter)."""

    active: frozenset[int]
    """The non-zero slots present in the batch."""


class LoraBackendAPI(ABC):
    """Adds each row's own low-rank update to a linear layer's output.

    Semantics, identical for every backend: for row ``i`` of ``x`` (shape ``(n, T, in)``) with
    slot ``s = slots[i]``, the result is ``y[i] + x[i] @ a_stack[s] @ b_stack[s]``, where
    ``a_stack`` is ``(S, in, R)`` and ``b_stack`` is ``(S, R, out)`` (the adapter's scaling is
    already folded into ``b_stack``; unused rank columns are zero, so adapters of any rank up to
    ``R`` share one stack). Slot 0 holds zeros and means "base model only".
    """

    device: torch.device

    @abstractmethod
    def prepare(self, slots: list[int]) -> BatchLoraMetaAPI:
        """Build the metadata for one forward pass over rows using these slots."""

    @abstractmethod
    def apply(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        a_stack: torch.Tensor,
        b_stack: torch.Tensor,
        meta: BatchLoraMetaAPI,
    ) -> torch.Tensor:
        """Return ``y`` plus every row's adapter update (may update ``y`` in place)."""


@dataclass(frozen=True)
class RegisteredModel:
    """What the chain's model registry says about one model (an adapter)."""

    model_id: str
    adapter_hash: str
    """0x-prefixed lowercase hex of the adapter's content hash (see adapters.content_hash)."""
    price_per_1k_tokens: int = 0
    """Fee in wei of OPEN per 1,000 tokens (prompt + completion)."""
    owner: str | None = None
    retired: bool = False
    raw: dict[str, Any] | None = None


class RegistryClientAPI(Protocol):
    """Looks up a model in the chain registry; ``None`` when the registry has no such model."""

    def get_model(self, model_id: str) -> RegisteredModel | None: ...
