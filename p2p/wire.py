"""Wire formats: length-prefixed frames and the pure codecs of every p2p message.

Every message on every stream is one frame: a 4-byte big-endian length, then that many bytes.
The decoders here take untrusted bytes and either return a value or raise `DecodeError`;
nothing else may escape them (they are fuzzed with random bytes in the tests).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

LENGTH_PREFIX = struct.Struct(">I")


class DecodeError(ValueError):
    """Bytes from a peer do not form a valid message."""


class FrameTooLarge(DecodeError):
    """A frame announces more bytes than the receiver accepts."""


class Kind(enum.IntEnum):
    """Gossip message kinds; the first byte of a gossip frame."""

    TRANSACTION = 1
    PROPOSAL = 2
    VOTE = 3
    EVIDENCE = 4
    DECISION = 5  # a decided block with its commit certificate (catch-up for laggards)
    IDONTWANT = 6  # control: "I already have message <32-byte id>, do not relay it to me"


def encode_frame(payload: bytes) -> bytes:
    """Prefix `payload` with its 4-byte length."""
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("frame payload too large")
    return LENGTH_PREFIX.pack(len(payload)) + payload


# ---------------------------------------------------------------------------- gossip


NONCE_SIZE = 8
ZERO_NONCE = bytes(NONCE_SIZE)


def encode_gossip(kind: Kind, body: bytes, nonce: bytes = ZERO_NONCE) -> bytes:
    """A gossip payload (not yet framed): kind byte, 8-byte nonce, then the opaque body.

    The message id (for dedupe) is the hash of the whole payload, so the nonce decides what
    counts as "the same message": a zero nonce makes the id depend on the content only (an
    announcement sent twice is one message), a fresh random nonce makes each retransmission
    a message of its own that reaches every consumer again (consensus retransmits the votes
    of its current round until the round moves on, and a peer that dropped them while
    catching up needs the next copy).
    """
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    return bytes([int(kind)]) + nonce + body


def decode_gossip(payload: bytes) -> tuple[Kind, bytes]:
    """Split a gossip payload into its kind and body (the nonce only matters for dedupe)."""
    if len(payload) < 1 + NONCE_SIZE:
        raise DecodeError(f"gossip message of {len(payload)} bytes is shorter than its header")
    try:
        kind = Kind(payload[0])
    except ValueError as exc:
        raise DecodeError(f"unknown gossip kind {payload[0]}") from exc
    return kind, bytes(payload[1 + NONCE_SIZE :])


# ---------------------------------------------------------------------------- status


@dataclass(frozen=True)
class ChainStatus:
    """What a node says about its chain: which chain, and how far it is."""

    chain_id: int
    genesis_hash: bytes
    height: int
    latest_hash: bytes

    _STRUCT = struct.Struct(">Q32sQ32s")

    def __post_init__(self) -> None:
        if not 0 <= self.chain_id < 2**64 or not 0 <= self.height < 2**64:
            raise ValueError("chain id and height must fit in 64 bits")
        if len(self.genesis_hash) != 32 or len(self.latest_hash) != 32:
            raise ValueError("hashes must be 32 bytes")

    def encode(self) -> bytes:
        return self._STRUCT.pack(self.chain_id, self.genesis_hash, self.height, self.latest_hash)

    @classmethod
    def decode(cls, data: bytes) -> ChainStatus:
        if len(data) != cls._STRUCT.size:
            raise DecodeError(f"status must be {cls._STRUCT.size} bytes, got {len(data)}")
        chain_id, genesis, height, latest = cls._STRUCT.unpack(data)
        return cls(chain_id, genesis, height, latest)


# ---------------------------------------------------------------------------- block range

_RANGE = struct.Struct(">QI")
_COUNT = struct.Struct(">I")
STATUS_OK = 0
STATUS_ERROR = 1


@dataclass(frozen=True)
class BlockRangeRequest:
    """Ask for `count` committed blocks starting at height `start`."""

    start: int
    count: int

    def encode(self) -> bytes:
        return _RANGE.pack(self.start, self.count)

    @classmethod
    def decode(cls, data: bytes) -> BlockRangeRequest:
        if len(data) != _RANGE.size:
            raise DecodeError(f"block range request must be {_RANGE.size} bytes")
        start, count = _RANGE.unpack(data)
        return cls(start, count)


@dataclass(frozen=True)
class BlockWithCertificate:
    """A committed block's bytes and the bytes of the commit certificate that finalized it."""

    block: bytes
    certificate: bytes


def encode_blocks_response(items: Sequence[BlockWithCertificate]) -> bytes:
    """OK byte, item count, then (length, block, length, certificate) per item."""
    parts = [bytes([STATUS_OK]), _COUNT.pack(len(items))]
    for item in items:
        parts += [_COUNT.pack(len(item.block)), item.block]
        parts += [_COUNT.pack(len(item.certificate)), item.certificate]
    return b"".join(parts)


def encode_error_response(message: str) -> bytes:
    """An error answer to any request: ERROR byte and a short UTF-8 reason."""
    return bytes([STATUS_ERROR]) + message.encode()[:512]


class RemoteError(Exception):
    """The peer answered a request with an error message."""


def _split_status(data: bytes) -> bytes:
    if not data:
        raise DecodeError("empty response")
    if data[0] == STATUS_ERROR:
        raise RemoteError(data[1:].decode(errors="replace"))
    if data[0] != STATUS_OK:
        raise DecodeError(f"unknown response status byte {data[0]}")
    return data[1:]


def decode_status_response(data: bytes) -> ChainStatus:
    """Decode an answer to a status request (raises RemoteError for an error answer)."""
    return ChainStatus.decode(_split_status(data))


def encode_status_response(status: ChainStatus) -> bytes:
    return bytes([STATUS_OK]) + status.encode()


def decode_blocks_response(data: bytes, max_items: int) -> list[BlockWithCertificate]:
    """Decode an answer to a block range request holding at most `max_items` blocks."""
    body = memoryview(_split_status(data))
    if len(body) < _COUNT.size:
        raise DecodeError("truncated block count")
    (count,) = _COUNT.unpack_from(body, 0)
    if count > max_items:
        raise DecodeError(f"response holds {count} blocks, more than the {max_items} asked")
    offset = _COUNT.size
    items: list[BlockWithCertificate] = []
    for _ in range(count):
        fields: list[bytes] = []
        for _field in range(2):
            if offset + _COUNT.size > len(body):
                raise DecodeError("truncated length prefix")
            (size,) = _COUNT.unpack_from(body, offset)
            offset += _COUNT.size
            if offset + size > len(body):
                raise DecodeError("truncated block or certificate")
            fields.append(bytes(body[offset : offset + size]))
            offset += size
        items.append(BlockWithCertificate(fields[0], fields[1]))
    if offset != len(body):
        raise DecodeError(f"{len(body) - offset} trailing bytes after the blocks")
    return items


# ---------------------------------------------------------------------------- peer exchange

_SHORT = struct.Struct(">H")
MAX_ADDR_LENGTH = 256


def encode_peers_response(addrs: Sequence[str]) -> bytes:
    """OK byte, count, then (u16 length, ASCII multiaddr) per `/ip4/.../tcp/.../p2p/ID`."""
    parts = [bytes([STATUS_OK]), _SHORT.pack(len(addrs))]
    for addr in addrs:
        raw = addr.encode("ascii")
        if len(raw) > MAX_ADDR_LENGTH:
            raise ValueError(f"address too long: {addr[:40]}...")
        parts += [_SHORT.pack(len(raw)), raw]
    return b"".join(parts)


def decode_peers_response(data: bytes, max_items: int) -> list[str]:
    """Decode an answer to a peers request: at most `max_items` ASCII address strings."""
    body = _split_status(data)
    if len(body) < _SHORT.size:
        raise DecodeError("truncated address count")
    (count,) = _SHORT.unpack_from(body, 0)
    if count > max_items:
        raise DecodeError(f"{count} addresses, more than the {max_items} accepted")
    offset = _SHORT.size
    addrs: list[str] = []
    for _ in range(count):
        if offset + _SHORT.size > len(body):
            raise DecodeError("truncated address length")
        (size,) = _SHORT.unpack_from(body, offset)
        offset += _SHORT.size
        if size > MAX_ADDR_LENGTH or offset + size > len(body):
            raise DecodeError("address too long or truncated")
        try:
            addrs.append(body[offset : offset + size].decode("ascii"))
        except UnicodeDecodeError as exc:
            raise DecodeError("address is not ASCII") from exc
        offset += size
    if offset != len(body):
        raise DecodeError("trailing bytes after the addresses")
    return addrs
