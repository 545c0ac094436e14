"""web3_, net_ and the chain-identity eth_ methods."""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import rpc_method
from openledger_node.rpc.encoding import data, parse_data, quantity


@rpc_method("web3_clientVersion")
async def client_version(ctx: RpcContext) -> str:
    return ctx.client_version


@rpc_method("web3_sha3")
async def sha3(ctx: RpcContext, payload: Any) -> str:
    return data(keccak(parse_data(payload, "data")))


@rpc_method("net_version")
async def net_version(ctx: RpcContext) -> str:
    return str(ctx.ledger.chain_id)


@rpc_method("net_listening")
async def net_listening(ctx: RpcContext) -> bool:
    return True


@rpc_method("net_peerCount")
async def net_peer_count(ctx: RpcContext) -> str:
    return quantity(ctx.peer_count())


@rpc_method("eth_chainId")
async def chain_id(ctx: RpcContext) -> str:
    return quantity(ctx.ledger.chain_id)


@rpc_method("eth_syncing")
async def syncing(ctx: RpcContext) -> Any:
    return ctx.syncing()


@rpc_method("eth_mining")
async def mining(ctx: RpcContext) -> bool:
    return False


@rpc_method("eth_hashrate")
async def hashrate(ctx: RpcContext) -> str:
    return "0x0"


@rpc_method("eth_protocolVersion")
async def protocol_version(ctx: RpcContext) -> str:
    return "0x44"
