"""Reading and writing length-prefixed frames on a libp2p stream."""

from __future__ import annotations

from typing import Protocol

from libp2p.network.stream.exceptions import StreamClosed, StreamEOF

from p2p.wire import LENGTH_PREFIX, DecodeError, FrameTooLarge, encode_frame

READ_CHUNK = 64 * 1024


class ByteStream(Protocol):
    """The part of libp2p's INetStream that framing needs."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class StreamEnded(Exception):
    """The peer closed the stream cleanly between frames."""


class FrameReader:
    """Reads whole frames from a stream, refusing any larger than `max_frame` bytes.

    A frame that is too large raises `FrameTooLarge` before its body is read; EOF in the
    middle of a frame raises `DecodeError`; EOF between frames raises `StreamEnded`.
    """

    def __init__(self, stream: ByteStream, max_frame: int) -> None:
        self._stream = stream
        self._max_frame = max_frame
        self._buffer = bytearray()

    async def _fill(self, need: int) -> bool:
        """Read until `need` bytes are buffered; False on EOF before that."""
        while len(self._buffer) < need:
            try:
                chunk = await self._stream.read(READ_CHUNK)
            except (StreamEOF, StreamClosed):
                return False
            if not chunk:
                return False
            self._buffer += chunk
        return True

    async def read_frame(self) -> bytes:
        if not await self._fill(LENGTH_PREFIX.size):
            if self._buffer:
                raise DecodeError("stream ended inside a length prefix")
            raise StreamEnded()
        (size,) = LENGTH_PREFIX.unpack_from(self._buffer, 0)
        if size > self._max_frame:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the limit of {self._max_frame}")
        end = LENGTH_PREFIX.size + size
        if not await self._fill(end):
            raise DecodeError(f"stream ended inside a frame of {size} bytes")
        frame = bytes(self._buffer[LENGTH_PREFIX.size : end])
        del self._buffer[:end]
        return frame


async def write_frame(stream: ByteStream, payload: bytes) -> None:
    await stream.write(encode_frame(payload))
