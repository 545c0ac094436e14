"""Batched multi-LoRA backends: a CPU reference (gathered bmm) and a CUDA backend (segmented).

Both implement `LoraBackendAPI` with the same semantics (see its docstring); the tests run both
on the same inputs and compare. The CPU backend gathers each row's A and B from the stacked slots
and does two batched matmuls (S-LoRA's MBGMV shape): its cost does not grow with the number of
distinct adapters. The CUDA backend groups rows by slot (Punica's SGMV: one shrink and one
expand per segment of rows sharing an adapter), which is fast when few adapters share a big
batch (prefill, popular adapters); when a batch holds many distinct adapters it switches to the
same gather as the CPU path, which then is a handful of kernels instead of one per segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from openlora.abc import BatchLoraMetaAPI, LoraBackendAPI


@dataclass(frozen=True)
class GatherMeta(BatchLoraMetaAPI):
    slots: tuple[int, ...]
    active: frozenset[int]
    index: torch.Tensor
    """Slot index per row, on the backend's device."""


@dataclass(frozen=True)
class SegmentMeta(BatchLoraMetaAPI):
    slots: tuple[int, ...]
    active: frozenset[int]
    index: torch.Tensor
    segments: tuple[tuple[int, torch.Tensor], ...]
    """(slot, row indices on device) for every non-zero slot in the batch."""
    gather: bool
    """True when there are so many segments that the gathered form is cheaper."""


def _gathered(
    y: torch.Tensor, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    shrunk = torch.bmm(x, a.index_select(0, index))
    return torch.baddbmm(y, shrunk, b.index_select(0, index))


class CpuLoraBackend(LoraBackendAPI):
    """Reference backend: gather per-row A/B, two bmm calls. Runs on any device."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def prepare(self, slots: list[int]) -> GatherMeta:
        index = torch.tensor(slots, dtype=torch.long, device=self.device)
        return GatherMeta(tuple(slots), frozenset(s for s in slots if s), index)

    def apply(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        a_stack: torch.Tensor,
        b_stack: torch.Tensor,
        meta: BatchLoraMetaAPI,
    ) -> torch.Tensor:
        assert isinstance(meta, GatherMeta)
        if not meta.active:
            return y
        return _gathered(y, x, a_stack, b_stack, meta.index)


class CudaLoraBackend(LoraBackendAPI):
    """Accelerator backend: rows grouped by adapter (SGMV), gathered when segments are many.

    Index tensors are built in pinned host memory and copied without blocking, so preparing a
    batch never synchronises the GPU. ``device`` may be ``cpu`` for testing the algorithm where no
    GPU exists; the arithmetic is the same.
    """

    def __init__(self, device: torch.device | str = "cuda", max_segments: int = 8) -> None:
        self.device = torch.device(device)
        self.max_segments = max_segments
        self._pin = self.device.type == "cuda"

    def _to_device(self, values: list[int]) -> torch.Tensor:
        host = torch.tensor(values, dtype=torch.long)
        if self._pin:
            host = host.pin_memory()
        return host.to(self.device, non_blocking=True)

    def prepare(self, slots: list[int]) -> SegmentMeta:
        groups: dict[int, list[int]] = {}
        for row, slot in enumerate(slots):
            if slot:
                groups.setdefault(slot, []).append(row)
        gather = len(groups) > self.max_segments
        segments = () if gather else tuple(
            (slot, self._to_device(rows)) for slot, rows in sorted(groups.items())
        )
        return SegmentMeta(
            tuple(slots), frozenset(groups), self._to_device(slots), segments, gather
        )

    def apply(
        self,
        y: torch.Tensor,
        x: torch.Tensor,
        a_stack: torch.Tensor,
        b_stack: torch.Tensor,
        meta: BatchLoraMetaAPI,
    ) -> torch.Tensor:
        assert isinstance(meta, SegmentMeta)
        if not meta.active:
            return y
        if meta.gather:
            return _gathered(y, x, a_stack, b_stack, meta.index)
        for slot, rows in meta.segments:
            xs = x.index_select(0, rows)
            delta = (xs @ a_stack[slot]) @ b_stack[slot]
            y.index_add_(0, rows, delta)
        return y


def select_backend(device: torch.device | str) -> LoraBackendAPI:
    """The backend for a device: CUDA for ``cuda``, the reference everywhere else."""
    device = torch.device(device)
    if device.type == "cuda":
        return CudaLoraBackend(device)
    return CpuLoraBackend(device)
