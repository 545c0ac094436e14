"""Pure codecs: round trips, and random bytes never raise anything but DecodeError."""

from __future__ import annotations

import os

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from p2p.seen import SeenCache
from p2p.streams import FrameReader, StreamEnded
from p2p.wire import (
    BlockRangeRequest,
    BlockWithCertificate,
    ChainStatus,
    DecodeError,
    FrameTooLarge,
    Kind,
    RemoteError,
    decode_blocks_response,
    decode_gossip,
    decode_peers_response,
    decode_status_response,
    encode_blocks_response,
    encode_error_response,
    encode_frame,
    encode_gossip,
    encode_peers_response,
    encode_status_response,
)

hashes = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)


@given(st.sampled_from(list(Kind)), st.binary(max_size=300))
def test_gossip_round_trip(kind, body):
    assert decode_gossip(encode_gossip(kind, body)) == (kind, body)


@given(u64, hashes, u64, hashes)
def test_status_round_trip(chain_id, genesis, height, latest):
    status = ChainStatus(chain_id, genesis, height, latest)
    assert decode_status_response(encode_status_response(status)) == status


@given(st.lists(st.tuples(st.binary(max_size=64), st.binary(max_size=64)), max_size=10))
def test_blocks_round_trip(pairs):
    items = [BlockWithCertificate(b, c) for b, c in pairs]
    assert decode_blocks_response(encode_blocks_response(items), 10) == items
    if items:
        with pytest.raises(DecodeError):
            decode_blocks_response(encode_blocks_response(items), len(items) - 1)


def test_error_response_raises_remote_error():
    with pytest.raises(RemoteError, match="no blocks"):
        decode_blocks_response(encode_error_response("no blocks"), 1)


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_decoders_only_raise_decode_error(data):
    for decode in (
        decode_gossip,
        ChainStatus.decode,
        BlockRangeRequest.decode,
        decode_status_response,
        lambda d: decode_blocks_response(d, 5),
        lambda d: decode_peers_response(d, 5),
    ):
        try:
            decode(data)
        except (DecodeError, RemoteError):
            pass


@given(st.lists(st.binary(max_size=40), max_size=6), st.integers(1, 7))
def test_truncations_of_a_valid_response_are_rejected(blocks, cut):
    data = encode_blocks_response([BlockWithCertificate(b, b"c") for b in blocks])
    with pytest.raises(DecodeError):
        decode_blocks_response(data[: max(0, len(data) - cut)], 10)


class ChunkedStream:
    """A byte stream that returns data in the given chunk sizes, then EOF."""

    def __init__(self, data: bytes, chunks: list[int]) -> None:
        self.data, self.chunks = data, chunks or [len(data) or 1]

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        size = self.chunks.pop(0) if len(self.chunks) > 1 else len(self.data) or 1
        out, self.data = self.data[:size], self.data[size:]
        return out

    async def write(self, data: bytes) -> None:
        raise NotImplementedError


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=5), st.lists(st.integers(1, 9), max_size=30))
def test_frame_reader_reassembles_any_chunking(frames, chunks):
    async def main() -> list[bytes]:
        reader = FrameReader(ChunkedStream(b"".join(map(encode_frame, frames)), chunks), 64)
        out = []
        while True:
            try:
                out.append(await reader.read_frame())
            except StreamEnded:
                return out

    assert trio.run(main) == frames


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=10))
def test_frame_reader_on_random_bytes(data, chunks):
    async def main() -> None:
        reader = FrameReader(ChunkedStream(data, chunks), 100)
        while True:
            try:
                await reader.read_frame()
            except (StreamEnded, DecodeError):
                return

    trio.run(main)


async def test_frame_reader_refuses_large_frame_before_reading_it():
    reader = FrameReader(ChunkedStream(encode_frame(os.urandom(500)), [4]), 100)
    with pytest.raises(FrameTooLarge):
        await reader.read_frame()


def test_seen_cache_expires_and_bounds():
    now = [0.0]
    cache = SeenCache(ttl=10, max_entries=3, clock=lambda: now[0])
    assert cache.add(b"a") and not cache.add(b"a")
    now[0] = 11
    assert b"a" not in cache and cache.add(b"a")
    for key in (b"b", b"c", b"d"):
        cache.add(key)
    assert len(cache) == 3 and b"a" not in cache and b"d" in cache


@given(st.lists(st.text(alphabet="/abcdef0123456789.", max_size=80), max_size=8))
def test_peers_round_trip(addrs):
    assert decode_peers_response(encode_peers_response(addrs), 8) == addrs
