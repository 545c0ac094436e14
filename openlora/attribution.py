"""Filling a receipt's attribution weights with the datanets span-attribution engine.

Beside a node (``--rpc-url``), the worker asks the node: ``openledger_attribute(modelId,
output)`` runs the same engine over the contents of the datanet versions the chain says the
model was trained on, so the weights are the ones anyone holding those contributions can
recompute and challenge (`NodeAttributor`). Offline, or when the node cannot answer, an
adapter folder may carry ``contributions.jsonl``: one ``{"id": <contribution id>, "text":
...}`` object per line, the contributions of the datanet versions the model was trained on. The
worker indexes them (``datanets.attribution.AttributionIndex``, built once per adapter on first
use) and credits the contributions each output reuses, as basis points summing to 10,000. An
adapter without the file gets empty weights.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

from datanets.attribution import AttributionIndex
from openlora.registry import RegistryError
from openlora.store import AdapterStore

log = logging.getLogger(__name__)

CONTRIBUTIONS_FILE = "contributions.jsonl"


class AttributorAPI(Protocol):
    def weights(self, adapter: str, output: str) -> dict[int, int]:
        """Contribution id -> basis points for ``output`` of ``adapter`` (empty: none)."""
        ...


@runtime_checkable
class NodeAttributionAPI(Protocol):
    """A node client that can attribute (`openlora.registry.JsonRpcRegistryClient`)."""

    def attribute(self, model_id: str, text: str) -> dict[int, int]: ...


def read_contributions(path: Path) -> dict[int, str]:
    contributions: dict[int, str] = {}
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                cid, text = int(item["id"]), item["text"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: expected {{\"id\": int, \"text\": str}}") from exc
            if not isinstance(text, str) or cid < 0:
                raise ValueError(f"{path}:{number}: expected a non-negative id and a string text")
            contributions[cid] = text
    return contributions


class ContributionsFileAttributor:
    """Span attribution over each adapter's ``contributions.jsonl`` (indexes kept LRU)."""

    def __init__(self, store: AdapterStore, min_span: int = 4, keep: int = 32) -> None:
        self.store = store
        self.min_span = min_span
        self.keep = keep
        self._indexes: OrderedDict[str, AttributionIndex | None] = OrderedDict()
        self._lock = threading.Lock()

    def _index(self, adapter: str) -> AttributionIndex | None:
        with self._lock:
            if adapter in self._indexes:
                self._indexes.move_to_end(adapter)
                return self._indexes[adapter]
        index: AttributionIndex | None = None
        path = self.store.get(adapter).spec.path / CONTRIBUTIONS_FILE
        if path.is_file():
            try:
                index = AttributionIndex(read_contributions(path), self.min_span)
            except (OSError, ValueError) as exc:
                log.warning("no attribution for %s: %s", adapter, exc)
        with self._lock:
            self._indexes[adapter] = index
            while len(self._indexes) > self.keep:
                self._indexes.popitem(last=False)
        return index

    def weights(self, adapter: str, output: str) -> dict[int, int]:
        index = self._index(adapter)
        return index.attribute(output).weights if index is not None else {}

    def forget(self, adapter: str) -> None:
        with self._lock:
            self._indexes.pop(adapter, None)


class NodeAttributor:
    """Weights from the node for adapters that name a chain model; the adapter's
    ``contributions.jsonl`` (`ContributionsFileAttributor`) when the node cannot answer or the
    adapter has no chain model id. The node's answer, empty or not, is final when it comes:
    the chain's contributions, not a local file, are what settlement checks."""

    def __init__(self, store: AdapterStore, node: NodeAttributionAPI,
                 fallback: ContributionsFileAttributor | None = None) -> None:
        self.store = store
        self.node = node
        self.fallback = fallback or ContributionsFileAttributor(store)

    def weights(self, adapter: str, output: str) -> dict[int, int]:
        model_id = self.store.get(adapter).model_id
        if model_id is not None and model_id.isdigit():
            try:
                return self.node.attribute(model_id, output)
            except RegistryError as exc:
                log.warning("node attribution for %s (model %s) failed, using %s: %s",
                            adapter, model_id, CONTRIBUTIONS_FILE, exc)
        return self.fallback.weights(adapter, output)

    def forget(self, adapter: str) -> None:
        self.fallback.forget(adapter)


def default_attributor(store: AdapterStore) -> AttributorAPI:
    """`NodeAttributor` when the store checks adapters against a node that can attribute
    (the worker runs with ``--rpc-url``), else `ContributionsFileAttributor`."""
    if isinstance(store.registry, NodeAttributionAPI):
        return NodeAttributor(store, store.registry)
    return ContributionsFileAttributor(store)
