"""Linear layers in which each row of a batch applies its own adapter, over stacked slots.

`LoraSlotBank` owns the preallocated device slots (one ``(S, in, R)`` A stack and one
``(S, R, out)`` B stack per wrapped module); `BatchedLoraLinear` replaces a model's
``nn.Linear`` and adds the gathered per-row update chosen by the current `BatchContext`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from openlora.abc import BatchLoraMetaAPI, LoraBackendAPI

SUPPORTED_MODULES: tuple[str, ...] = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)


@dataclass
class BatchContext:
    """The rows' adapter slots for the forward pass under way (shared by all wrapped layers)."""

    backend: LoraBackendAPI
    meta: BatchLoraMetaAPI | None = None


class BatchedLoraLinear(nn.Module):
    """``base(x)`` plus, for each row, the low-rank update of the adapter in that row's slot."""

    def __init__(
        self, base: nn.Linear, n_slots: int, max_rank: int, ctx: BatchContext
    ) -> None:
        super().__init__()
        self.base = base
        self.ctx = ctx
        weight = base.weight
        self.in_features = base.in_features
        self.out_features = base.out_features
        # Slots are allocated but not written until used, so on the CPU their pages are only
        # committed as adapters arrive; slot 0 (the base model) is zero for good.
        self.a_stack = torch.empty(
            n_slots, self.in_features, max_rank, dtype=weight.dtype, device=weight.device
        )
        self.b_stack = torch.empty(
            n_slots, max_rank, self.out_features, dtype=weight.dtype, device=weight.device
        )
        self.a_stack[0].zero_()
        self.b_stack[0].zero_()
        self.filled: set[int] = set()
        """Slots holding a non-zero update for this module."""
        self.zeroed: set[int] = {0}
        """Slots known to hold zeros (others may hold garbage and are never gathered)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        meta = self.ctx.meta
        if meta is None or self.filled.isdisjoint(meta.active):
            return y
        return self.ctx.backend.apply(y, x, self.a_stack, self.b_stack, meta)

    @property
    def slot_bytes(self) -> int:
        per = self.a_stack[0].numel() + self.b_stack[0].numel()
        return per * self.a_stack.element_size()


@dataclass
class LoraSlotBank:
    """All wrapped modules of a model, addressed by name, with ``n_slots`` slots each."""

    modules: dict[str, BatchedLoraLinear]
    n_slots: int
    max_rank: int

    @property
    def slot_bytes(self) -> int:
        """Bytes one slot takes across all wrapped modules."""
        return sum(m.slot_bytes for m in self.modules.values())

    def write(self, slot: int, weights: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Put one adapter into ``slot``: ``weights[name] = (A^T (in, r), scaled B^T (r, out))``.

        Modules the adapter does not touch are cleared, so a reused slot carries nothing over.
        """
        if not 0 < slot < self.n_slots:
            raise ValueError(f"slot {slot} out of range 1..{self.n_slots - 1}")
        unknown = set(weights) - set(self.modules)
        if unknown:
            raise ValueError(f"adapter targets modules this worker does not wrap: {sorted(unknown)[:3]}")
        for name, module in self.modules.items():
            if name in weights:
                a, b = weights[name]
                rank = a.shape[1]
                if rank > self.max_rank:
                    raise ValueError(f"rank {rank} exceeds the worker's max rank {self.max_rank}")
                if rank < self.max_rank:
                    module.a_stack[slot, :, rank:].zero_()
                    module.b_stack[slot, rank:, :].zero_()
                module.a_stack[slot, :, :rank].copy_(a, non_blocking=True)
                module.b_stack[slot, :rank, :].copy_(b, non_blocking=True)
                module.filled.add(slot)
                module.zeroed.discard(slot)
            elif slot not in module.zeroed:
                # another adapter in the batch may use this module: this row must add zero
                module.a_stack[slot].zero_()
                module.b_stack[slot].zero_()
                module.filled.discard(slot)
                module.zeroed.add(slot)

    def clear(self, slot: int) -> None:
        """Empty a slot."""
        self.write(slot, {})


def wrap_linears(
    model: nn.Module,
    module_names: tuple[str, ...],
    n_slots: int,
    max_rank: int,
    ctx: BatchContext,
) -> LoraSlotBank:
    """Replace every ``nn.Linear`` whose last name is in ``module_names`` with a wrapper.

    Names in the bank are the model's module paths (``model.layers.0.self_attn.q_proj``), the
    same paths PEFT writes into adapter files.
    """
    bad = set(module_names) - set(SUPPORTED_MODULES)
    if bad:
        raise ValueError(f"unsupported LoRA target modules: {sorted(bad)}")
    found: dict[str, BatchedLoraLinear] = {}
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in module_names and isinstance(child, nn.Linear):
                wrapped = BatchedLoraLinear(child, n_slots, max_rank, ctx)
                setattr(module, child_name, wrapped)
                found[f"{name}.{child_name}" if name else child_name] = wrapped
    if not found:
        raise ValueError(f"no linear layers named {module_names} in the model")
    return LoraSlotBank(found, n_slots, max_rank)
