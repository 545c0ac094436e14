"""The CPU reference and the CUDA backend's algorithm agree on the batched LoRA semantics."""

from __future__ import annotations

import pytest
import torch

from openlora.backends import CpuLoraBackend, CudaLoraBackend, select_backend


def _stacks(slots: int = 6, d_in: int = 24, d_out: int = 20, rank: int = 8):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(slots, d_in, rank, generator=g)
    b = torch.randn(slots, rank, d_out, generator=g)
    a[0] = 0
    b[0] = 0
    a[3, :, 5:] = 0  # a rank-5 adapter padded to rank 8
    b[3, 5:, :] = 0
    return a, b


def _reference(y, x, a, b, slots):
    out = y.clone()
    for i, s in enumerate(slots):
        out[i] += x[i] @ a[s] @ b[s]
    return out


@pytest.mark.parametrize("backend", [
    CpuLoraBackend("cpu"),
    CudaLoraBackend("cpu"),  # segmented (SGMV) path
    CudaLoraBackend("cpu", max_segments=1),  # gathered path
])
@pytest.mark.parametrize("slots", [[1, 2, 0, 3, 5, 2, 1], [0, 0], [4], [3, 3, 3, 1]])
def test_backend_matches_per_row_reference(backend, slots) -> None:
    a, b = _stacks()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(len(slots), 3, 24, generator=g)
    y = torch.randn(len(slots), 3, 20, generator=g)
    expected = _reference(y, x, a, b, slots)
    got = backend.apply(y.clone(), x, a, b, backend.prepare(slots))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_all_base_rows_leave_output_untouched() -> None:
    a, b = _stacks()
    x = torch.randn(3, 1, 24)
    y = torch.randn(3, 1, 20)
    for backend in (CpuLoraBackend(), CudaLoraBackend("cpu")):
        assert torch.equal(backend.apply(y.clone(), x, a, b, backend.prepare([0, 0, 0])), y)


def test_select_backend_by_device() -> None:
    assert isinstance(select_backend("cpu"), CpuLoraBackend)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_backend_on_gpu_matches_cpu_reference() -> None:
    a, b = _stacks()
    slots = [1, 2, 0, 3, 5, 2, 1, 4, 4]
    x = torch.randn(len(slots), 2, 24)
    y = torch.randn(len(slots), 2, 20)
    expected = CpuLoraBackend().apply(y.clone(), x, a, b, CpuLoraBackend().prepare(slots))
    for segments in (8, 1):
        gpu = CudaLoraBackend("cuda", max_segments=segments)
        got = gpu.apply(y.cuda(), x.cuda(), a.cuda(), b.cuda(), gpu.prepare(slots))
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-4)
