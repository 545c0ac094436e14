"""Operator commands: `init`, `run`, `status` and `genesis testnet`."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import trio
from eth_utils import is_hex_address, to_canonical_address, to_checksum_address

from genesis.presets import MINIMAL_CONSENSUS_PARAMS
from genesis.schema import OPEN, Genesis, GenesisAccount, GenesisError
from openledger_node.config import ConfigError, NodeConfig
from openledger_node.keystore import Keystore, KeystoreError, read_password
from openledger_node.validator_keys import create_validator_key, load_validator_key, write_secret

DEFAULT_HOME = Path.home() / ".openledger" / "node"
VALIDATOR_POWER = 100
TESTNET_CHAIN_ID = 3_301_731


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    init = subparsers.add_parser("init", help="create a node home (config, keys, genesis)")
    init.add_argument("--home", type=Path, default=DEFAULT_HOME)
    init.add_argument("--genesis", type=Path, help="genesis.json of the network to join")
    init.add_argument("--moniker", default="openledger-node")
    init.add_argument("--validator", action="store_true",
                      help="create an encrypted consensus key (asks for a password)")
    init.add_argument("--password-file", help="read the validator key password from this file")
    init.set_defaults(func=run_init)

    run = subparsers.add_parser("run", help="run a node of a network (consensus, p2p, RPC)")
    run.add_argument("--home", type=Path, default=DEFAULT_HOME)
    run.add_argument("--with-lora", action="store_true",
                     help="also run the OpenLoRA worker beside the node (config: lora_*)")
    run.add_argument("--double-sign-for-tests", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=run_node)

    status = subparsers.add_parser("status", help="show a running node's height, peers, sync")
    status.add_argument("--rpc", default="http://127.0.0.1:8545", help="the node's RPC URL")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=run_status)

    genesis = subparsers.add_parser("genesis", help="genesis tools")
    genesis_sub = genesis.add_subparsers(dest="genesis_command", metavar="COMMAND")
    testnet = genesis_sub.add_parser(
        "testnet", help="write homes, keys and genesis for an N-validator network on loopback")
    testnet.add_argument("--validators", type=int, default=4)
    testnet.add_argument("--full-nodes", type=int, default=0, help="extra non-voting nodes")
    testnet.add_argument("--out", type=Path, required=True)
    testnet.add_argument("--chain-id", type=int, default=TESTNET_CHAIN_ID)
    testnet.add_argument("--base-port", type=int, default=18545,
                         help="node i gets RPC base+10i, WebSocket +1, p2p +2")
    testnet.add_argument("--host", default="127.0.0.1",
                         help="address of every node (a loopback network)")
    testnet.add_argument("--hosts", default="",
                         help="comma-separated address per node (e.g. container IPs); each node "
                         "then uses the base ports themselves")
    testnet.add_argument("--rpc-host", default="",
                         help="RPC listen address (default: the node's address; 0.0.0.0 in "
                         "containers, which exposes RPC to the network)")
    testnet.add_argument("--fund", action="append", default=[], metavar="ADDRESS=AMOUNT",
                         help="genesis balance in OPEN (e.g. 0xabc...=1000; suffix 'wei' for wei)")
    testnet.add_argument("--block-time", type=float, default=1.0, help="target seconds per block")
    testnet.set_defaults(func=run_genesis_testnet)
    genesis.set_defaults(func=lambda _args: (genesis.print_help(), 2)[1])


# -- init / run ----------------------------------------------------------------------------
def run_init(args: argparse.Namespace) -> int:
    home: Path = args.home
    if (home / "config.toml").exists():
        print(f"error: {home} is already initialised", file=sys.stderr)
        return 1
    home.mkdir(parents=True, exist_ok=True)
    from p2p.identity import load_or_create_identity

    identity = load_or_create_identity(home)
    validator_address = ""
    try:
        if args.validator:
            password = read_password(args.password_file, confirm=True)
            address = Keystore(home / "keystore").new(password)
            validator_address = to_checksum_address(address)
            if args.password_file:
                write_secret(home / "validator_password", password + "\n")
        if args.genesis:
            Genesis.load(args.genesis).save(home / "genesis.json")
    except (KeystoreError, GenesisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = NodeConfig(home=home, moniker=args.moniker, validator_address=validator_address)
    config.save()
    print(f"initialised {home}")
    print(f"peer id: {identity.peer_id.to_base58()}")
    if validator_address:
        print(f"validator address: {validator_address}")
    if not args.genesis:
        print("next: put the network's genesis.json in the home, then `openledger run`")
    return 0


def run_node(args: argparse.Namespace) -> int:
    from openledger_node.node import Node

    try:
        config = NodeConfig.load(args.home)
        if args.with_lora:
            config = config.with_overrides(lora_worker=True)
        genesis = Genesis.load(config.genesis_path)
        key = load_validator_key(config)
    except (ConfigError, GenesisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not genesis.validators:
        print("error: the genesis has no validators; use `openledger devnet` for a local chain",
              file=sys.stderr)
        return 2
    try:
        node = Node(config, genesis, network=True, validator_key=key,
                    double_sign_for_tests=args.double_sign_for_tests)
    except Exception as exc:
        print(f"error: cannot start the node in {config.home}: {exc}", file=sys.stderr)
        return 1

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            role = "validator " + config.validator_address if key else "full node"
            print(f"OpenLedger node ({role}) chain {genesis.chain_id}: RPC "
                  f"http://{config.rpc_host}:{config.rpc_port}, WebSocket "
                  f"ws://{config.rpc_host}:{config.ws_port}, p2p "
                  f"{', '.join(node.consensus.p2p.listen_addrs if node.consensus.p2p else [])}",
                  flush=True)

    trio.run(main)
    return 0


# -- status --------------------------------------------------------------------------------
def run_status(args: argparse.Namespace) -> int:
    import httpx

    try:
        response = httpx.post(args.rpc, json={"jsonrpc": "2.0", "id": 1,
                                              "method": "openledger_nodeInfo", "params": []},
                              timeout=10)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"error: cannot reach {args.rpc}: {exc}", file=sys.stderr)
        return 1
    if "error" in body:
        print(f"error: {body['error'].get('message')}", file=sys.stderr)
        return 1
    info: dict[str, Any] = body["result"]
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"chain id:   {info['chainId']}")
    print(f"height:     {info['height']} ({info['latestHash']})")
    print(f"peers:      {info['peers']}")
    print(f"syncing:    {'yes' if info['syncing'] else 'no'}")
    print(f"validator:  {'yes' if info['validator'] else 'no'}")
    print(f"mode:       {info['mode']}")
    print(f"tx pool:    {info['txpool']['pending']} pending, {info['txpool']['queued']} queued")
    return 0


# -- genesis testnet -----------------------------------------------------------------------
def parse_fund(text: str) -> tuple[bytes, int]:
    address, sep, amount = text.partition("=")
    if not sep or not is_hex_address(address):
        raise ValueError(f"--fund expects ADDRESS=AMOUNT, got {text!r}")
    amount = amount.strip()
    try:
        if amount.endswith("wei"):
            value = int(amount[:-3])
        else:
            value = int(Decimal(amount) * OPEN)
    except (InvalidOperation, ValueError):
        raise ValueError(f"--fund: bad amount {amount!r}") from None
    if value < 0:
        raise ValueError("--fund: amount must not be negative")
    return to_canonical_address(address), value


def run_genesis_testnet(args: argparse.Namespace) -> int:
    from p2p.identity import listen_multiaddr, load_or_create_identity, peer_multiaddr

    if not 1 <= args.validators <= 100:
        print("error: --validators must be 1..100", file=sys.stderr)
        return 2
    try:
        funds = dict(parse_fund(f) for f in args.fund)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    if (out / "network.json").exists():
        print(f"error: {out} already holds a network", file=sys.stderr)
        return 1
    total = args.validators + args.full_nodes
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()] if args.hosts else []
    if hosts and len(hosts) != total:
        print(f"error: --hosts names {len(hosts)} addresses for {total} nodes", file=sys.stderr)
        return 2
    nodes: list[dict[str, Any]] = []
    validators = []
    for i in range(total):
        home = out / f"node{i}"
        home.mkdir(parents=True, exist_ok=True)
        identity = load_or_create_identity(home)
        host = hosts[i] if hosts else args.host
        base = args.base_port if hosts else args.base_port + 10 * i
        entry: dict[str, Any] = {
            "name": f"node{i}", "home": str(home.resolve()), "host": host,
            "rpc": f"http://{host}:{base}", "ws": f"ws://{host}:{base + 1}",
            "rpc_port": base, "ws_port": base + 1, "p2p_port": base + 2,
            "p2p": peer_multiaddr(listen_multiaddr(host, base + 2), identity.peer_id),
            "validator": None,
        }
        if i < args.validators:
            validator = create_validator_key(home, VALIDATOR_POWER, entry["name"])
            validators.append(validator)
            entry["validator"] = to_checksum_address(validator.address)
        nodes.append(entry)
    params: dict[str, Any] = dict(MINIMAL_CONSENSUS_PARAMS)
    params["consensus.block_time_ms"] = int(args.block_time * 1000)
    # A proposer executing a full block on a loaded machine needs more than the minimal
    # preset's 1 s to get its proposal out; a dead proposer then costs 2 s, not 1.
    params["consensus.timeout_propose_ms"] = 2000
    # Payers wait 20 blocks to take escrow back, so workers can settle what they served.
    params["datanets.escrow_unlock_blocks"] = 20
    if funds:
        params["datanets.protocol_treasury"] = str(to_checksum_address(next(iter(funds))))
    import time

    genesis = Genesis(
        chain_id=args.chain_id, timestamp=int(time.time()),
        alloc={a: GenesisAccount(balance=v) for a, v in funds.items()},
        validators=tuple(validators), params=params, extra_data=b"openledger testnet",
    )
    for entry in nodes:
        home = Path(entry["home"])
        genesis.save(home / "genesis.json")
        NodeConfig(
            home=home, rpc_host=args.rpc_host or entry["host"], rpc_port=entry["rpc_port"],
            ws_port=entry["ws_port"], p2p_host=entry["host"], p2p_port=entry["p2p_port"],
            moniker=entry["name"],
            peers=tuple(other["p2p"] for other in nodes if other is not entry),
            validator_address=entry["validator"] or "",
        ).save()
    network = {"chain_id": args.chain_id, "nodes": nodes}
    (out / "network.json").write_text(json.dumps(network, indent=2) + "\n")
    print(f"wrote {total} node homes and {out / 'network.json'}")
    for entry in nodes:
        role = f"validator {entry['validator']}" if entry["validator"] else "full node"
        print(f"  {entry['name']}: {entry['rpc']}  ({role})")
    print(f"start each with: openledger run --home {out}/nodeN")
    return 0
