"""`openledger devnet`: a local single-validator chain with funded dev accounts, like anvil."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import time
from pathlib import Path

import trio
from eth_utils import to_checksum_address

from genesis.presets import DEV_ACCOUNT_BALANCE, dev_accounts, devnet_genesis
from genesis.schema import OPEN, Genesis, GenesisError
from openledger_node.config import CHAINDATA_DIR, ConfigError, NodeConfig
from openledger_node.node import Node
from openledger_node.validator_keys import create_validator_key, load_validator_key

log = logging.getLogger(__name__)
DEFAULT_HOME = Path.home() / ".openledger" / "devnet"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "devnet",
        help="run a local single-validator chain with funded dev accounts",
        description="Start a local OpenLedger chain for development (LevelDB in --home). "
        "Restarting on the same --home continues the same chain; --fresh starts over.",
    )
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help=f"data directory (default {DEFAULT_HOME})")
    parser.add_argument("--host", default=None, help="RPC listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP JSON-RPC port (default 8545)")
    parser.add_argument("--ws-port", type=int, default=None,
                        help="WebSocket JSON-RPC port (default 8546)")
    parser.add_argument("--block-time", type=float, default=None,
                        help="seconds between blocks (0 or absent: a block per transaction batch)")
    parser.add_argument("--accounts", type=int, default=10, help="funded dev accounts (default 10)")
    parser.add_argument("--fresh", action="store_true", help="wipe the data directory first")
    parser.add_argument("--with-lora", action="store_true",
                        help="also run the OpenLoRA worker (adapters in HOME/adapters, port 8000)")
    parser.set_defaults(func=run)


def prepare_home(home: Path, accounts: int, fresh: bool) -> Genesis:
    """Create (or reuse) the devnet's genesis, validator key and config in `home`.

    The devnet is a one-validator network: its consensus key is made here, kept encrypted
    in the home like any validator's, and named in the genesis.
    """
    if fresh and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    genesis_path = home / "genesis.json"
    if genesis_path.exists():
        genesis = Genesis.load(genesis_path)
        if genesis.validators:
            return genesis
        if (home / CHAINDATA_DIR).exists():
            raise GenesisError(f"{home} holds a devnet without a validator (made by an older "
                               "version); start over with --fresh")
        # A genesis written by hand (custom parameters, allocations): add our validator.
    else:
        genesis = devnet_genesis(accounts=accounts, timestamp=int(time.time()))
    validator = create_validator_key(home, power=1, name="devnet")
    genesis = dataclasses.replace(genesis, validators=(validator,))
    NodeConfig.load(home).with_overrides(
        validator_address=to_checksum_address(validator.address), moniker="devnet").save()
    genesis.save(genesis_path)
    return genesis


def banner(config: NodeConfig, genesis: Genesis, keys: dict[bytes, bytes], restarted: int) -> str:
    host = config.rpc_host if config.rpc_host not in ("0.0.0.0", "::") else "127.0.0.1"
    rpc_url = f"http://{host}:{config.rpc_port}"
    ws_url = f"ws://{host}:{config.ws_port}"
    lines = [
        "",
        "OpenLedger devnet",
        "=================",
        f"Chain ID:      {genesis.chain_id} (0x{genesis.chain_id:x})",
        f"RPC URL:       {rpc_url}",
        f"WebSocket URL: {ws_url}",
        f"Data dir:      {config.home}" + (f" (continuing at block {restarted})" if restarted else ""),
        f"Block time:    {'instant' if not config.block_time else f'{config.block_time}s'}",
        "Currency:      OPEN (18 decimals)",
        "",
        f"Dev accounts ({DEV_ACCOUNT_BALANCE // OPEN:,} OPEN each at genesis; well-known test keys, "
        "never use them on a real network):",
    ]
    for index, (address, key) in enumerate(keys.items()):
        lines.append(f"  ({index}) {to_checksum_address(address)}  private key 0x{key.hex()}")
    lines += [
        "",
        "MetaMask: Settings > Networks > Add a network manually:",
        f"  Network name 'OpenLedger devnet', RPC URL {rpc_url}, Chain ID {genesis.chain_id}, "
        "Currency symbol OPEN",
        "",
        "Listening. Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        genesis = prepare_home(args.home, args.accounts, args.fresh)
        config = NodeConfig.load(args.home).with_overrides(
            rpc_host=args.host, rpc_port=args.port, ws_port=args.ws_port,
            block_time=args.block_time, lora_worker=True if args.with_lora else None,
        )
    except (GenesisError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    count = len(genesis.alloc)
    keys = {bytes.fromhex(a.address[2:]): a.private_key for a in dev_accounts(max(count, 1))}
    keys = {a: k for a, k in keys.items() if a in genesis.alloc}
    try:
        node = Node(config, genesis, dev_keys=keys, validator_key=load_validator_key(config))
    except Exception as exc:  # locked store, genesis mismatch: say it plainly
        print(f"error: cannot open the chain in {config.home}: {exc}", file=sys.stderr)
        return 1

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            print(banner(config, genesis, keys, node.ledger.head.block_number), flush=True)

    try:
        trio.run(main)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
