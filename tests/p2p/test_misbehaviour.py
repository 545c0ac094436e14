"""Peers that send garbage are scored down and disconnected; the node keeps serving."""

from __future__ import annotations

import os

import trio

from p2p.host import GOSSIP_PROTOCOL, P2PService
from p2p.wire import Kind, encode_frame
from tests.p2p.conftest import MemoryChain, line, make_service, mesh, running


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def send_raw(sender: P2PService, target: P2PService, data: bytes) -> None:
    """Open a gossip stream from `sender` to `target` and write raw bytes on it."""
    stream = await sender.host.new_stream(target.peer_id, [GOSSIP_PROTOCOL])
    try:
        await stream.write(data)
        await trio.sleep(0.05)
    except Exception:
        pass  # the target may already have hung up


async def test_garbage_sender_is_banned_and_node_keeps_serving():
    node, honest, rogue = make_service(MemoryChain(10)), make_service(), make_service()
    async with running(node, honest, rogue):
        await mesh(node, honest, rogue)
        sub = node.subscribe(Kind.TRANSACTION)
        # Well-framed junk: unknown kinds and empty messages, each a MALFORMED offense.
        junk = b"".join(encode_frame(bytes([0xEE]) + os.urandom(30)) for _ in range(3))
        junk += encode_frame(b"")
        await send_raw(rogue, node, junk)
        await wait_until(lambda: node.stats["offense_malformed"] >= 1)
        # Random bytes: a nonsense length prefix that exceeds the frame limit.
        for _ in range(3):
            if node.scorer.is_banned(rogue.peer_id):
                break
            await send_raw(rogue, node, b"\xff\xff\xff\xff" + os.urandom(64))
        await wait_until(lambda: node.scorer.is_banned(rogue.peer_id))
        await wait_until(lambda: rogue.peer_id not in node.connected_peers())
        assert node.scorer.score(rogue.peer_id) < node.config.score.disconnect_below
        # A banned peer that dials again is dropped at once.
        await rogue.connect(node.listen_addrs[0])
        await trio.sleep(0.3)
        assert rogue.peer_id not in node.connected_peers()
        # The node still gossips with and serves its honest peer.
        await honest.broadcast(Kind.TRANSACTION, b"still here")
        with trio.fail_after(5):
            msg = await sub.receive()
        assert msg.data == b"still here"
        assert (await honest.request_status(node.peer_id)).height == 10
        assert honest.scorer.score(node.peer_id) == 0


async def test_truncated_and_bad_requests_do_not_hurt_the_server():
    server, client = make_service(MemoryChain(5)), make_service()
    async with running(server, client):
        await line(client, server)
        from p2p.host import BLOCKS_PROTOCOL, STATUS_PROTOCOL

        for protocol, payload in [
            (BLOCKS_PROTOCOL, encode_frame(b"short")),
            (BLOCKS_PROTOCOL, b"\x00\x00"),
            (STATUS_PROTOCOL, encode_frame(b"unexpected body")),
            (BLOCKS_PROTOCOL, b"\x7f\xff\xff\xff" + os.urandom(10)),
        ]:
            stream = await client.host.new_stream(server.peer_id, [protocol])
            await stream.write(payload)
            await stream.close()
        await wait_until(lambda: server.stats["offense_malformed"] >= 3)
        assert len(await client.request_blocks(server.peer_id, 1, 3)) == 3


async def test_oversized_message_is_refused_and_penalized():
    a, b = make_service(), make_service()
    b.config.max_message[Kind.VOTE] = 100
    async with running(a, b):
        await line(a, b)
        sub = b.subscribe(Kind.VOTE)
        await a.broadcast(Kind.VOTE, bytes(500))  # a's limit is larger than b's
        await a.broadcast(Kind.VOTE, b"small vote")
        with trio.fail_after(5):
            msg = await sub.receive()
        assert msg.data == b"small vote"
        assert b.stats["offense_oversized"] == 1


async def test_static_peer_is_redialed_after_restart():
    b = make_service()
    async with trio.open_nursery() as outer:
        b_scope = trio.CancelScope()

        async def run_b() -> None:
            with b_scope:
                await b.run(task_status=trio.TASK_STATUS_IGNORED)

        outer.start_soon(run_b)
        await wait_until(lambda: b._host is not None and b._nursery is not None)
        b_addr = b.listen_addrs[0]
        port = int(b_addr.split("/tcp/")[1].split("/")[0])
        a = make_service(static_peers=[b_addr])
        await outer.start(a.run)
        await a.wait_for_peers(1)
        b_scope.cancel()  # b goes away; a notices
        await wait_until(lambda: a.peer_count == 0)
        # b comes back on the same port with the same key: a redials it by itself.
        b2 = P2PService(b.identity, make_service(listen_port=port).config)
        await outer.start(b2.run)
        await wait_until(lambda: b2.peer_count == 1 and a.peer_count == 1, timeout=10)
        assert a.peer_book()[0].static
        outer.cancel_scope.cancel()


async def test_random_bytes_on_every_protocol_never_stop_the_node():
    import random

    from p2p.host import BLOCKS_PROTOCOL, PEERS_PROTOCOL, STATUS_PROTOCOL

    rng = random.Random(7)
    node, honest = make_service(MemoryChain(4)), make_service()
    node.config.score.disconnect_below = -1e9  # keep the fuzzer connected for all rounds
    rogue = make_service()
    async with running(node, honest, rogue):
        await mesh(node, honest, rogue)
        protocols = [GOSSIP_PROTOCOL, STATUS_PROTOCOL, BLOCKS_PROTOCOL, PEERS_PROTOCOL]
        for i in range(40):
            data = rng.randbytes(rng.randrange(0, 300))
            if i % 3 == 0:  # a plausible length prefix in front of random bytes
                data = len(data).to_bytes(4, "big") + data
            try:
                stream = await rogue.host.new_stream(node.peer_id, [protocols[i % 4]])
                await stream.write(data)
                await stream.close()
            except Exception:
                pass
        await trio.sleep(0.3)
        assert node.scorer.score(rogue.peer_id) < 0
        assert (await honest.request_status(node.peer_id)).height == 4
        sub = node.subscribe(Kind.VOTE)
        await honest.broadcast(Kind.VOTE, b"after the storm")
        with trio.fail_after(5):
            assert (await sub.receive()).data == b"after the storm"
