"""`openledger_nodeInfo`: what `openledger status` shows (height, peers, sync, validator)."""

from __future__ import annotations

from typing import Any

from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import rpc_method
from openledger_node.rpc.encoding import address, data, parse_quantity


@rpc_method("openledger_nodeInfo")
async def node_info(ctx: RpcContext) -> dict[str, Any]:
    head = ctx.ledger.head
    node = ctx.extensions.get("node")
    consensus = getattr(node, "consensus", None)
    pending, queued = ctx.pool.counts()
    info: dict[str, Any] = {
        "clientVersion": ctx.client_version,
        "chainId": ctx.ledger.chain_id,
        "genesisHash": data(ctx.ledger.genesis_hash),
        "height": head.block_number,
        "latestHash": data(head.hash),
        "latestTimestamp": head.timestamp,
        "peers": ctx.peer_count(),
        "syncing": ctx.syncing() is not False,
        "mode": "network" if getattr(consensus, "p2p", None) is not None else "devnet",
        "txpool": {"pending": pending, "queued": queued},
        "validator": consensus is None or bool(consensus.is_validator),
    }
    if consensus is not None and consensus.p2p is not None:
        info["peerId"] = consensus.p2p.peer_id.to_base58()
        info["listenAddrs"] = consensus.p2p.listen_addrs
        info["syncProgress"] = {
            "target": consensus.progress.target,
            "blocksPerSecond": round(consensus.progress.blocks_per_second, 1),
        }
    return info


@rpc_method("openledger_getBlockEvidence")
async def block_evidence(ctx: RpcContext, number: Any) -> list[dict[str, Any]] | None:
    """Double-signing evidence a block carried (consensus envelope beside the Ethereum block)."""
    height = parse_quantity(number, "block number")
    consensus = getattr(ctx.extensions.get("node"), "consensus", None)
    if consensus is None or height > ctx.ledger.head.block_number:
        return None
    decision = consensus.db.load_decision(height)
    if decision is None:
        return None
    return [
        {
            "validator": address(ev.vote_a.validator),
            "height": hex(ev.vote_a.height),
            "round": hex(ev.vote_a.round),
            "type": ev.vote_a.vote_type.name.lower(),
            "blockHashes": [data(v.block_hash) if v.block_hash else None
                            for v in (ev.vote_a, ev.vote_b)],
            "hash": data(ev.hash()),
        }
        for ev in decision.proposal.evidence
    ]
