"""Status and block-range request/response between real libp2p hosts."""

from __future__ import annotations

import pytest
import trio

from p2p.host import RequestRefused, RequestTimeout
from p2p.wire import ChainStatus
from tests.p2p.conftest import MemoryChain, line, make_service, running


async def test_status_and_block_range():
    server_chain, client_chain = MemoryChain(height=40), MemoryChain(height=3)
    server, client = make_service(server_chain), make_service(client_chain)
    async with running(server, client):
        await line(client, server)
        status = await client.request_status(server.peer_id)
        assert status == await server_chain.get_status()
        blocks = await client.request_blocks(server.peer_id, 10, 5)
        assert blocks == [MemoryChain.block(h) for h in range(10, 15)]
        # Past the tip: only what exists.
        tail = await client.request_blocks(server.peer_id, 38, 10)
        assert tail == [MemoryChain.block(h) for h in (38, 39, 40)]
        assert await client.request_blocks(server.peer_id, 41, 10) == []
        # The handshake on connect recorded each other's status in the peer books.
        with trio.fail_after(3):
            while client.peer_status(server.peer_id) is None:
                await trio.sleep(0.02)
        assert client.best_peers()[0] == (server.peer_id, status)


async def test_block_range_is_capped_by_count_and_bytes():
    chain = MemoryChain(height=1000)
    server = make_service(chain, max_blocks_per_request=50, max_response_bytes=2000)
    client = make_service()
    async with running(server, client):
        await line(client, server)
        blocks = await client.request_blocks(server.peer_id, 0, 200)
        one = MemoryChain.block(0)
        per_block = 8 + len(one.block) + len(one.certificate)
        assert 0 < len(blocks) <= 2000 // per_block
        assert blocks == [MemoryChain.block(h) for h in range(len(blocks))]
        assert chain.calls == [(0, 50)]  # the server asked its chain for at most 50


async def test_request_to_node_without_provider_is_refused():
    server, client = make_service(), make_service(MemoryChain(1))
    async with running(server, client):
        await line(client, server)
        with pytest.raises(RequestRefused):
            await client.request_status(server.peer_id)
        with pytest.raises(RequestRefused):
            await client.request_blocks(server.peer_id, 0, 1)


class HangingChain(MemoryChain):
    async def get_status(self) -> ChainStatus:
        await trio.sleep_forever()
        raise AssertionError


async def test_request_times_out():
    server = make_service(HangingChain(5), handshake=False)
    client = make_service(request_timeout=0.5, handshake=False)
    async with running(server, client):
        await line(client, server)
        start = trio.current_time()
        with pytest.raises(RequestTimeout):
            await client.request_status(server.peer_id)
        assert trio.current_time() - start < 2
        # The server is still serving other requests.
        assert len(await client.request_blocks(server.peer_id, 0, 2)) == 2


async def test_peer_on_another_chain_is_dropped_by_handshake():
    ours, theirs = (
        make_service(MemoryChain(5, chain_id=1)),
        make_service(MemoryChain(5, chain_id=2)),
    )
    async with running(ours, theirs):
        await ours.connect(theirs.listen_addrs[0])
        with trio.fail_after(5):
            while not ours.scorer.is_banned(theirs.peer_id) or ours.peer_count:
                await trio.sleep(0.05)
        assert ours.stats["offense_wrong_chain"] == 1


class BrokenChain(MemoryChain):
    async def get_status(self) -> ChainStatus:
        raise RuntimeError("database closed")

    async def get_blocks(self, start: int, count: int) -> list:
        raise RuntimeError("database closed")


async def test_failing_provider_answers_an_error_and_keeps_serving():
    server, client = make_service(BrokenChain(3)), make_service()
    async with running(server, client):
        await line(client, server)
        for _ in range(2):
            with pytest.raises(RequestRefused, match="RuntimeError"):
                await client.request_status(server.peer_id)
            with pytest.raises(RequestRefused, match="RuntimeError"):
                await client.request_blocks(server.peer_id, 0, 3)
        assert server.peer_count == 1


async def test_bootnode_introduces_its_peers():
    boot, validator = make_service(), make_service()
    async with running(boot, validator):
        await line(validator, boot)  # the validator dialed the bootnode earlier
        newcomer = make_service(bootnodes=boot.listen_addrs, discovery_interval=0.2, target_peers=4)
        async with running(newcomer):
            with trio.fail_after(10):
                while set(newcomer.connected_peers()) != {boot.peer_id, validator.peer_id}:
                    await trio.sleep(0.05)
            shared = await newcomer.request_peers(boot.peer_id)
            assert any(addr.endswith(validator.peer_id.to_base58()) for addr in shared)
            assert all("/tcp/" in addr for addr in shared)
