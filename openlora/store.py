"""Adapter store: registered adapters paged disk -> host memory -> device slots, LRU both tiers.

Registration only reads an adapter's config and tensor headers (and, when the worker is
connected to a node, checks its content hash against the chain registry), so thousands can be
registered. Host memory holds recently used adapters' weights up to a byte budget; the device
holds those in use in the slots of a `LoraSlotBank`, whose count follows from the device byte
budget. A slot used by a running request is pinned and never evicted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from openlora.abc import RegistryClientAPI
from openlora.lora_layers import LoraSlotBank
from openlora.peft_format import (
    AdapterFormatError,
    AdapterSpec,
    inspect_adapter,
    load_adapter_weights,
)

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
Weights = dict[str, tuple[torch.Tensor, torch.Tensor]]


class AdapterError(Exception):
    """Base of the store's errors; ``status`` is the HTTP status the API answers with."""

    status = 400


class AdapterNotFound(AdapterError):
    status = 404


class AdapterExists(AdapterError):
    status = 409


class AdapterInUse(AdapterError):
    status = 409


class AdapterRejected(AdapterError):
    """Bad format, too large a rank, wrong base, or the chain registry disagrees."""

    status = 400


class RegistryUnavailable(AdapterError):
    """The chain registry could not be asked, so the adapter's hash cannot be checked."""

    status = 503


class NoFreeSlot(AdapterError):
    """Every device slot is pinned by a running request; try again after some finish."""

    status = 503


@dataclass
class AdapterRecord:
    name: str
    spec: AdapterSpec
    model_id: str
    price_per_1k_tokens: int
    registered_at: float = field(default_factory=time.time)
    slot: int | None = None
    pins: int = 0


@dataclass
class StoreStats:
    device_hits: int = 0
    device_loads: int = 0
    device_evictions: int = 0
    host_hits: int = 0
    host_loads: int = 0
    host_evictions: int = 0
    load_seconds: float = 0.0


class AdapterStore:
    """Registry of adapters with host and device LRU caches under byte budgets."""

    def __init__(
        self,
        bank: LoraSlotBank,
        *,
        host_budget_bytes: int,
        dtype: torch.dtype = torch.float32,
        registry: RegistryClientAPI | None = None,
        default_price_per_1k: int = 0,
        pin_host_memory: bool = False,
    ) -> None:
        self.bank = bank
        self.host_budget_bytes = host_budget_bytes
        self.dtype = dtype
        self.registry = registry
        self.default_price_per_1k = default_price_per_1k
        self.pin_host_memory = pin_host_memory
        self.stats = StoreStats()
        self._lock = threading.RLock()
        self._records: dict[str, AdapterRecord] = {}
        self._host: OrderedDict[str, tuple[Weights, int]] = OrderedDict()
        self._host_bytes = 0
        self._slots: OrderedDict[int, str] = OrderedDict()  # slot -> name, LRU first
        self._free = list(range(bank.n_slots - 1, 0, -1))
        self._prefetcher: ThreadPoolExecutor | None = None
        self._inflight: dict[str, threading.Event] = {}

    # -- registration -----------------------------------------------------------------------

    def register(
        self, name: str, path: str | Path, *, model_id: str | None = None
    ) -> AdapterRecord:
        """Register an adapter folder under ``name``; raises `AdapterError` subclasses."""
        if not NAME_RE.match(name):
            raise AdapterRejected(
                f"invalid adapter name {name!r}: letters, digits and ._:@/- only, up to 128"
            )
        try:
            spec = inspect_adapter(path)
        except AdapterFormatError as exc:
            raise AdapterRejected(str(exc)) from exc
        if spec.rank > self.bank.max_rank:
            raise AdapterRejected(
                f"adapter {name!r} has rank {spec.rank}; this worker serves ranks up to "
                f"{self.bank.max_rank} (--max-rank)"
            )
        unknown = [m for m in spec.modules if m not in self.bank.modules]
        if unknown:
            raise AdapterRejected(
                f"adapter {name!r} targets {unknown[0]}, which is not a wrapped layer of this "
                "base model (wrong base model, or a module outside --lora-modules)"
            )
        for module, (d_in, d_out) in spec.dims.items():
            layer = self.bank.modules[module]
            if (d_in, d_out) != (layer.in_features, layer.out_features):
                raise AdapterRejected(
                    f"adapter {name!r} expects {module} of shape {d_in}x{d_out}, the base model "
                    f"has {layer.in_features}x{layer.out_features} (wrong base model)"
                )
        model_id = model_id or name
        price = self.default_price_per_1k
        if self.registry is not None:
            try:
                entry = self.registry.get_model(model_id)
            except Exception as exc:  # any client failure: refuse rather than serve unchecked
                raise RegistryUnavailable(
                    f"cannot check adapter {name!r} against the chain registry: {exc}"
                ) from exc
            if entry is None:
                raise AdapterRejected(f"model {model_id!r} is not in the chain registry")
            if entry.retired:
                raise AdapterRejected(f"model {model_id!r} is retired in the chain registry")
            if entry.adapter_hash.lower() != spec.content_hash:
                raise AdapterRejected(
                    f"adapter {name!r} content hash {spec.content_hash} differs from the chain "
                    f"registry's {entry.adapter_hash} for model {model_id!r}"
                )
            price = entry.price_per_1k_tokens
        with self._lock:
            if name in self._records:
                raise AdapterExists(f"adapter {name!r} is already registered")
            record = AdapterRecord(name, spec, model_id, price)
            self._records[name] = record
        return record

    def register_dir(self, folder: str | Path) -> list[str]:
        """Register every adapter sub-folder under its folder name; bad ones are logged."""
        names = []
        for sub in sorted(Path(folder).iterdir()):
            if not sub.is_dir():
                continue
            try:
                self.register(sub.name, sub)
                names.append(sub.name)
            except AdapterError as exc:
                log.warning("skipping adapter %s: %s", sub, exc)
        return names

    def unregister(self, name: str) -> None:
        with self._lock:
            record = self.get(name)
            if record.pins:
                raise AdapterInUse(f"adapter {name!r} is serving {record.pins} request(s)")
            if record.slot is not None:
                self._slots.pop(record.slot, None)
                self.bank.clear(record.slot)
                self._free.append(record.slot)
            entry = self._host.pop(name, None)
            if entry is not None:
                self._host_bytes -= entry[1]
            del self._records[name]

    def get(self, name: str) -> AdapterRecord:
        with self._lock:
            record = self._records.get(name)
        if record is None:
            raise AdapterNotFound(f"adapter {name!r} is not registered")
        return record

    def __contains__(self, name: str) -> bool:
        return name in self._records

    def records(self) -> list[AdapterRecord]:
        with self._lock:
            return list(self._records.values())

    # -- paging -----------------------------------------------------------------------------

    def _cached(self, name: str) -> Weights | None:
        with self._lock:
            entry = self._host.get(name)
            if entry is None:
                return None
            self._host.move_to_end(name)
            self.stats.host_hits += 1
            return entry[0]

    def _host_weights(self, record: AdapterRecord) -> Weights:
        """The adapter's weights from the host cache, loading them from disk on a miss.

        A load already under way (a prefetch) is waited for rather than repeated.
        """
        cached = self._cached(record.name)
        if cached is not None:
            return cached
        with self._lock:
            pending = self._inflight.get(record.name)
            owner = pending is None
            if pending is None:
                pending = self._inflight[record.name] = threading.Event()
        if not owner:
            pending.wait()
            cached = self._cached(record.name)
            if cached is not None:
                return cached
        try:
            return self._load(record)
        finally:
            if owner:
                with self._lock:
                    self._inflight.pop(record.name, None)
                pending.set()

    def _load(self, record: AdapterRecord) -> Weights:
        start = time.perf_counter()
        try:
            weights = load_adapter_weights(record.spec.path, self.dtype)
        except (AdapterFormatError, OSError) as exc:
            raise AdapterRejected(f"adapter {record.name!r} failed to load: {exc}") from exc
        if self.pin_host_memory:
            weights = {k: (a.pin_memory(), b.pin_memory()) for k, (a, b) in weights.items()}
        nbytes = sum(a.numel() * a.element_size() + b.numel() * b.element_size()
                     for a, b in weights.values())
        with self._lock:
            self.stats.host_loads += 1
            self.stats.load_seconds += time.perf_counter() - start
            if record.name in self._records and record.name not in self._host:
                self._host[record.name] = (weights, nbytes)
                self._host_bytes += nbytes
                while self._host_bytes > self.host_budget_bytes and len(self._host) > 1:
                    _, (_, freed) = self._host.popitem(last=False)
                    self._host_bytes -= freed
                    self.stats.host_evictions += 1
        return weights

    def acquire(self, name: str) -> int:
        """Make ``name`` resident in a device slot, pin it, and return the slot."""
        record = self.get(name)
        with self._lock:
            if record.slot is not None:
                self._slots.move_to_end(record.slot)
                record.pins += 1
                self.stats.device_hits += 1
                return record.slot
            if not self._free and not any(
                self._records[n].pins == 0 for n in self._slots.values()
            ):
                raise NoFreeSlot("all adapter slots are in use by running requests")
        weights = self._host_weights(record)
        with self._lock:
            if record.slot is not None:  # loaded meanwhile by another thread
                record.pins += 1
                return record.slot
            slot = self._take_slot()
            self.bank.write(slot, weights)
            record.slot = slot
            record.pins += 1
            self._slots[slot] = name
            self.stats.device_loads += 1
            return slot

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        for slot, owner in self._slots.items():
            victim = self._records[owner]
            if victim.pins == 0:
                del self._slots[slot]
                victim.slot = None
                self.stats.device_evictions += 1
                return slot
        raise NoFreeSlot("all adapter slots are in use by running requests")

    def release(self, name: str) -> None:
        with self._lock:
            record = self._records.get(name)
            if record is not None and record.pins > 0:
                record.pins -= 1

    def prefetch(self, name: str) -> Future[None] | None:
        """Start loading ``name`` into host memory in the background (no-op when cached)."""
        with self._lock:
            record = self._records.get(name)
            if record is None or record.slot is not None or name in self._host:
                return None
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="lora-prefetch")
        def task() -> None:
            try:
                self._host_weights(record)
            except AdapterError as exc:
                log.warning("prefetch of %s failed: %s", name, exc)
        return self._prefetcher.submit(task)

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=True, cancel_futures=True)

    # -- introspection ----------------------------------------------------------------------

    def resident(self) -> list[str]:
        with self._lock:
            return list(self._slots.values())

    @property
    def host_bytes(self) -> int:
        return self._host_bytes

    def host_cached(self) -> list[str]:
        with self._lock:
            return list(self._host)
