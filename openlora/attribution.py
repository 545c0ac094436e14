"""Filling a receipt's attribution weights with the datanets span-attribution engine.

An adapter folder may carry ``contributions.jsonl``: one ``{"id": <contribution id>, "text":
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
from typing import Protocol

from datanets.attribution import AttributionIndex
from openlora.store import AdapterStore

log = logging.getLogger(__name__)

CONTRIBUTIONS_FILE = "contributions.jsonl"


class AttributorAPI(Protocol):
    def weights(self, adapter: str, output: str) -> dict[int, int]:
        """Contribution id -> basis points for ``output`` of ``adapter`` (empty: none)."""
        ...


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
