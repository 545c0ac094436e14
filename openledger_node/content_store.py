"""The off-chain contribution store: contents addressed by their keccak-256 hash.

Lives in the node home (`<home>/contributions`); the chain holds only each contribution's
record (hash, size, metadata URI). A file is at most 5 MB, as OpenLedger's Datanets allow.
Writes are atomic (temporary file, fsync, rename), so a crash never leaves a partial
content under its hash, and every read is checked against the hash it is addressed by.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from eth_hash.auto import keccak

MAX_CONTENT_SIZE = 5 * 1024 * 1024
CONTENT_DIR = "contributions"


class ContentError(ValueError):
    """Content refused (empty, too large) or a malformed hash."""


def content_hash(data: bytes) -> bytes:
    return keccak(data)


def parse_hash(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        raw = value
    else:
        text = value[2:] if value.startswith("0x") else value
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ContentError(f"content hash is not hex: {value!r}") from None
    if len(raw) != 32:
        raise ContentError("content hash must be 32 bytes")
    return raw


class ContentStore:
    """Content-addressed files under `root`, fanned out by the first hash byte."""

    def __init__(self, root: Path, max_size: int = MAX_CONTENT_SIZE) -> None:
        self.root = Path(root)
        self.max_size = max_size

    def _path(self, digest: bytes) -> Path:
        hexed = digest.hex()
        return self.root / hexed[:2] / hexed

    def put(self, data: bytes) -> bytes:
        """Store `data` and return its hash (storing the same content twice is a no-op)."""
        if not data:
            raise ContentError("content is empty")
        if len(data) > self.max_size:
            raise ContentError(f"content is {len(data)} bytes; the limit is {self.max_size}")
        digest = content_hash(data)
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: bytes) -> bytes | None:
        """The content with this hash, or None if absent (or corrupted on disk)."""
        path = self._path(parse_hash(digest))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return data if content_hash(data) == digest else None

    def has(self, digest: bytes) -> bool:
        return self._path(parse_hash(digest)).exists()
