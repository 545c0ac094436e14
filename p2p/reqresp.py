"""Request/response over libp2p streams: one request frame, one answer frame, then close.

The server side turns a request into an answer with a handler; the client side opens a
stream, sends, and reads the answer within a timeout, mapping every failure onto a
`P2PError`. The status and block-range handlers live here too; they only need the node's
`SyncProviderAPI`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from p2p.abc import SyncProviderAPI
from p2p.errors import MalformedAnswer, P2PError, PeerUnavailable, ProtocolError, RequestTimeout
from p2p.streams import FrameReader, StreamEnded, write_frame
from p2p.wire import (
    BlockRangeRequest,
    BlockWithCertificate,
    DecodeError,
    encode_blocks_response,
    encode_error_response,
    encode_status_response,
)

log = logging.getLogger("openledger.p2p")

STATUS_PROTOCOL = TProtocol("/openledger/status/1.0.0")
BLOCKS_PROTOCOL = TProtocol("/openledger/blocks/1.0.0")
PEERS_PROTOCOL = TProtocol("/openledger/peers/1.0.0")
MAX_REQUEST_FRAME = 64

# A request handler: the request frame in, the answer frame's payload out; raises
# DecodeError for a malformed request.
Answer = Callable[[bytes], Awaitable[bytes]]


async def close_quietly(stream: INetStream) -> None:
    """Close a stream even while being cancelled, ignoring errors (the peer may be gone)."""
    with trio.move_on_after(1) as cleanup:
        cleanup.shield = True
        try:
            await stream.close()
        except Exception:
            pass


async def serve_request(stream: INetStream, answer: Answer, timeout: float) -> bool:
    """Answer one request on `stream`; False when the request was malformed."""
    well_formed = True
    try:
        with trio.fail_after(timeout):
            try:
                request = await FrameReader(stream, MAX_REQUEST_FRAME).read_frame()
                response = await answer(request)
            except (DecodeError, StreamEnded) as exc:
                well_formed = False
                response = encode_error_response(f"bad request: {exc}")
            await write_frame(stream, response)
    except Exception as exc:  # timeouts, resets: the requester's problem, never ours
        log.debug("request from %s failed: %r", stream.muxed_conn.peer_id, exc)
    finally:
        await close_quietly(stream)
    return well_formed


async def send_request(
    host: IHost,
    peer: ID,
    protocol: TProtocol,
    payload: bytes,
    timeout: float,
    max_answer: int,
) -> bytes:
    """Send one request and return the answer frame, or raise a `P2PError`."""
    stream: INetStream | None = None
    try:
        with trio.fail_after(timeout):
            try:
                stream = await host.new_stream(peer, [protocol])
                await write_frame(stream, payload)
                return await FrameReader(stream, max_answer).read_frame()
            except DecodeError as exc:
                raise MalformedAnswer(f"bad answer from {peer}: {exc}") from exc
            except StreamEnded as exc:
                raise ProtocolError(f"{peer} closed the stream without answering") from exc
            except (P2PError, trio.TooSlowError):
                raise
            except Exception as exc:
                raise PeerUnavailable(f"{protocol} request to {peer} failed: {exc}") from exc
    except trio.TooSlowError as exc:
        raise RequestTimeout(f"{peer} did not answer {protocol} in time") from exc
    finally:
        if stream is not None:
            await close_quietly(stream)


async def answer_status(provider: SyncProviderAPI | None, request: bytes) -> bytes:
    if request:
        raise DecodeError("a status request carries no body")
    if provider is None:
        return encode_error_response("this node serves no status")
    try:
        status = await provider.get_status()
    except Exception as exc:  # the node's failure: answer an error, keep serving
        log.exception("sync provider failed on status")
        return encode_error_response(f"cannot read status: {type(exc).__name__}")
    return encode_status_response(status)


async def answer_blocks(
    provider: SyncProviderAPI | None, request: bytes, max_blocks: int, max_bytes: int
) -> bytes:
    """Up to `max_blocks` blocks from the provider, cut to fit `max_bytes` on the wire."""
    req = BlockRangeRequest.decode(request)
    if provider is None:
        return encode_error_response("this node serves no blocks")
    count = min(req.count, max_blocks)
    if count == 0:
        return encode_error_response("count must be at least 1")
    try:
        items = await provider.get_blocks(req.start, count)
    except Exception as exc:
        log.exception("sync provider failed on blocks %d+%d", req.start, count)
        return encode_error_response(f"cannot read blocks: {type(exc).__name__}")
    budget = max_bytes - 16
    kept: list[BlockWithCertificate] = []
    for item in items[:count]:
        budget -= 8 + len(item.block) + len(item.certificate)
        if budget < 0:
            break
        kept.append(item)
    return encode_blocks_response(kept)
