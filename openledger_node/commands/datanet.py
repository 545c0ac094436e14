"""`openledger datanet ...`: create, contribute to, curate and version datanets from the CLI.

Also the small JSON-RPC client every signing command uses (`ChainClient`): it builds an
EIP-1559 transaction (nonce, fees and gas from the node), signs it with the keystore key,
sends it with `eth_sendRawTransaction` and waits for the receipt. A call that would revert is
caught at gas estimation, so the user sees the precompile's reason and nothing is sent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_hash.auto import keccak

from evm_bridge.precompiles import DATANETS_ADDRESS
from evm_bridge.precompiles.abi import DATANETS, Interface
from openledger_node.commands.keys import add_signer_args, load_signer
from openledger_node.content_store import MAX_CONTENT_SIZE
from openledger_node.keystore import KeystoreError, parse_address

DEFAULT_RPC = "http://127.0.0.1:8545"
# httpx logs every request at INFO; a CLI command's output should be its answer alone.
logging.getLogger("httpx").setLevel(logging.WARNING)
WEI = 10**18


class CliError(Exception):
    """A failure reported to the user in one line."""


def parse_amount(text: str) -> int:
    """'1.5' (OPEN) or '1500wei' -> wei."""
    raw = text.strip().lower()
    try:
        if raw.endswith("wei"):
            value = int(raw[:-3])
        else:
            amount = Decimal(raw.removesuffix("open")) * WEI
            if amount != amount.to_integral_value():
                raise CliError(f"amount {text!r} has more than 18 decimals")
            value = int(amount)
    except (ValueError, InvalidOperation):
        raise CliError(f"not an amount: {text!r} (OPEN, e.g. 1.5, or wei, e.g. 100wei)") from None
    if value < 0:
        raise CliError("amounts cannot be negative")
    return value


def format_open(wei: int) -> str:
    text = f"{Decimal(wei) / WEI:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " OPEN"


class ChainClient:
    """JSON-RPC over HTTP to a node."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout)
        self._id = 0

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        self._id += 1
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or []}
        try:
            response = self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the node at {self.url}: {exc}") from None
        if response.status_code == 413:
            raise CliError("the node refused the request as too large")
        try:
            payload = response.json()
        except ValueError:
            raise CliError(f"the node answered HTTP {response.status_code}, not JSON-RPC") from None
        if "error" in payload:
            raise CliError(payload["error"].get("message", "unknown error"))
        return payload["result"]

    def call(self, iface: Interface, to: bytes, fn: str, *args: Any) -> tuple[Any, ...]:
        f = iface.function(fn)
        out = self.rpc("eth_call", [{"to": "0x" + to.hex(),
                                     "data": "0x" + f.encode_call(*args).hex()}, "latest"])
        return f.decode_output(bytes.fromhex(out[2:]))

    def transact(self, private_key: bytes, to: bytes, data: bytes, value: int = 0) -> dict[str, Any]:
        """Sign, send and wait for a transaction; its receipt (raises if it failed)."""
        sender = Account.from_key(private_key).address
        call = {"from": sender, "to": "0x" + to.hex(), "data": "0x" + data.hex(),
                "value": hex(value)}
        gas = int(self.rpc("eth_estimateGas", [call]), 16)  # a revert surfaces here
        chain_id = int(self.rpc("eth_chainId"), 16)
        nonce = int(self.rpc("eth_getTransactionCount", [sender, "pending"]), 16)
        tip = int(self.rpc("eth_maxPriorityFeePerGas"), 16)
        base = int(self.rpc("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
        tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "to": call["to"], "value": value,
              "data": data, "gas": gas + gas // 5 + 10_000, "maxPriorityFeePerGas": tip,
              "maxFeePerGas": 2 * base + tip}
        raw = Account.sign_transaction(tx, private_key).raw_transaction
        tx_hash = self.rpc("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                if receipt.get("status") != "0x1":
                    raise CliError(f"transaction {tx_hash} failed on chain")
                return receipt  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise CliError(f"transaction {tx_hash} not mined within {self.timeout:.0f}s")


def log_topic(receipt: dict[str, Any], iface: Interface, event: str, index: int) -> int:
    """Indexed argument `index` (1-based topic) of the first `event` log in a receipt."""
    topic0 = "0x" + iface.event(event).topic0.to_bytes(32, "big").hex()
    for log in receipt.get("logs", []):
        if log["topics"] and log["topics"][0] == topic0:
            return int(log["topics"][index], 16)
    raise CliError(f"the transaction emitted no {event} event")


def emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if getattr(args, "json", False) else text)


def run_guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures into one line on stderr and exit status 1."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (CliError, KeystoreError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return wrapper


def add_common(parser: argparse.ArgumentParser, signing: bool) -> None:
    if signing:
        add_signer_args(parser)
    parser.add_argument("--rpc", default=DEFAULT_RPC, help=f"node JSON-RPC URL (default {DEFAULT_RPC})")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


# -- commands ------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    top = subparsers.add_parser("datanet", help="datanets: community data pools on chain")
    sub = top.add_subparsers(dest="datanet_command", metavar="COMMAND", required=True)

    p = sub.add_parser("create", help="create a datanet (prints its id)")
    p.add_argument("--name", required=True)
    p.add_argument("--metadata-uri", default="")
    p.add_argument("--curator", action="append", default=[], help="curator address (repeatable;"
                   " the owner always curates)")
    p.add_argument("--stake", default="0", help="contributor stake in OPEN (default 0)")
    p.add_argument("--fee", default="0", help="contribution fee to the owner in OPEN (default 0)")
    p.add_argument("--reject-forfeit-bps", type=int, default=0,
                   help="share of the stake forfeited on rejection, in basis points")
    p.add_argument("--curator-bond", default="0", help="OPEN a curator locks per acceptance")
    p.add_argument("--challenge-bond", default="0", help="minimum OPEN a challenger locks")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_create))

    p = sub.add_parser("contribute", help="upload FILE to the node's store and record it on "
                       "chain (prints the contribution id)")
    p.add_argument("datanet", type=int)
    p.add_argument("file", type=Path)
    p.add_argument("--metadata-uri", default="")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_contribute))

    p = sub.add_parser("content", help="download a contribution's content (to review it), "
                       "checked against its on-chain hash")
    p.add_argument("contribution", type=int)
    p.add_argument("--out", type=Path, help="write it here (default: standard output)")
    p.add_argument("--rpc", default=DEFAULT_RPC, help=f"node JSON-RPC URL (default {DEFAULT_RPC})")
    p.set_defaults(func=run_guarded(cmd_content))

    p = sub.add_parser("list", help="list datanets")
    add_common(p, False)
    p.set_defaults(func=run_guarded(cmd_list))

    p = sub.add_parser("show", help="a datanet with its contributions and versions")
    p.add_argument("datanet", type=int)
    add_common(p, False)
    p.set_defaults(func=run_guarded(cmd_show))

    for name, helptext in (("accept", "accept a pending contribution (curators)"),
                           ("reject", "reject a pending contribution (curators)"),
                           ("release", "return a contribution's stake after its challenge "
                                       "period")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("datanet", type=int)
        p.add_argument("contribution", type=int)
        add_common(p, True)
        p.set_defaults(func=run_guarded(cmd_curate), action=name)

    p = sub.add_parser("challenge", help="challenge an accepted contribution with a bond")
    p.add_argument("datanet", type=int)
    p.add_argument("contribution", type=int)
    p.add_argument("--bond", default=None, help="OPEN to lock (default: the datanet's minimum)")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_challenge))

    p = sub.add_parser("resolve", help="decide a challenge (curators)")
    p.add_argument("datanet", type=int)
    p.add_argument("contribution", type=int)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--upheld", action="store_true", help="slash the contribution")
    group.add_argument("--dismissed", action="store_true", help="keep it; the bond is forfeited")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_resolve))

    p = sub.add_parser("update", help="change a datanet's rules for later contributions (owner)")
    p.add_argument("datanet", type=int)
    p.add_argument("--metadata-uri")
    p.add_argument("--stake")
    p.add_argument("--fee")
    p.add_argument("--reject-forfeit-bps", type=int)
    p.add_argument("--curator-bond")
    p.add_argument("--challenge-bond")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_update))

    for name, helptext in (("add-curator", "let ADDRESS curate the datanet (owner)"),
                           ("remove-curator", "stop ADDRESS curating the datanet (owner)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("datanet", type=int)
        p.add_argument("address")
        add_common(p, True)
        p.set_defaults(func=run_guarded(cmd_curator), action=name)

    p = sub.add_parser("version", help="snapshot the accepted contributions (prints the "
                       "version number)")
    p.add_argument("datanet", type=int)
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_version))


def _datanet(client: ChainClient, datanet_id: int) -> dict[str, Any]:
    dn: dict[str, Any] | None = client.rpc("openledger_getDatanet", [datanet_id])
    if dn is None:
        raise CliError(f"unknown datanet {datanet_id}")
    return dn


def cmd_create(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    curators = ["0x" + parse_address(c).hex() for c in args.curator]
    if not 0 <= args.reject_forfeit_bps <= 10_000:
        raise CliError("--reject-forfeit-bps must be within 0..10000")
    data = DATANETS.function("createDatanet").encode_call(
        args.name, args.metadata_uri, curators, parse_amount(args.stake), parse_amount(args.fee),
        args.reject_forfeit_bps, parse_amount(args.curator_bond),
        parse_amount(args.challenge_bond))
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS, data)
    datanet_id = log_topic(receipt, DATANETS, "DatanetCreated", 1)
    emit(args, {"id": datanet_id, "tx": receipt["transactionHash"]}, str(datanet_id))
    return 0


def cmd_contribute(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    try:
        content = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    if not content:
        raise CliError(f"{args.file} is empty")
    if len(content) > MAX_CONTENT_SIZE:
        raise CliError(f"{args.file} is {len(content)} bytes; the limit is {MAX_CONTENT_SIZE}")
    dn = _datanet(client, args.datanet)
    key = load_signer(args)
    stored = client.rpc("openledger_putContent", ["0x" + content.hex()])
    digest = keccak(content)
    if stored["hash"] != "0x" + digest.hex():
        raise CliError("the node stored the content under another hash")
    data = DATANETS.function("contribute").encode_call(args.datanet, digest, len(content),
                                                       args.metadata_uri)
    receipt = client.transact(key, DATANETS_ADDRESS, data,
                              value=int(dn["stake"]) + int(dn["fee"]))
    cid = log_topic(receipt, DATANETS, "Contributed", 2)
    emit(args, {"id": cid, "datanet": args.datanet, "contentHash": stored["hash"],
                "size": len(content), "tx": receipt["transactionHash"]}, str(cid))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    datanets = ChainClient(args.rpc).rpc("openledger_listDatanets")
    if args.json:
        print(json.dumps(datanets))
        return 0
    for dn in datanets:
        print(f"{dn['id']:>4}  {dn['name']}  owner {dn['owner']}  contributions "
              f"{dn['contributionCount']} (accepted {dn['acceptedCount']})  versions "
              f"{dn['versionCount']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    dn = _datanet(ChainClient(args.rpc), args.datanet)
    if args.json:
        print(json.dumps(dn))
        return 0
    print(f"datanet {dn['id']}: {dn['name']}  ({dn['metadataUri'] or 'no metadata URI'})")
    print(f"  owner {dn['owner']}; stake {format_open(int(dn['stake']))}, fee "
          f"{format_open(int(dn['fee']))}, forfeit on reject {dn['rejectForfeitBps'] / 100}%")
    for c in dn["contributions"]:
        print(f"  #{c['id']:<5} {c['status']:<10} {c['contributor']}  {c['contentHash']}  "
              f"{c['size']} B")
    for v in dn["versions"]:
        print(f"  version {v['version']}: {v['acceptedCount']} accepted, root {v['root']}")
    return 0


def _belongs(client: ChainClient, datanet_id: int, cid: int) -> dict[str, Any]:
    c: dict[str, Any] | None = client.rpc("openledger_getContribution", [cid])
    if c is None:
        raise CliError(f"unknown contribution {cid}")
    if c["datanetId"] != datanet_id:
        raise CliError(f"contribution {cid} belongs to datanet {c['datanetId']}, not {datanet_id}")
    return c


def cmd_curate(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    _belongs(client, args.datanet, args.contribution)
    fn = {"accept": "accept", "reject": "reject", "release": "releaseStake"}[args.action]
    value = int(_datanet(client, args.datanet)["curatorBond"]) if fn == "accept" else 0
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS,
                              DATANETS.function(fn).encode_call(args.contribution), value)
    status = client.rpc("openledger_getContribution", [args.contribution])["status"]
    emit(args, {"datanet": args.datanet, "contribution": args.contribution, "status": status,
                "tx": receipt["transactionHash"]}, f"contribution {args.contribution}: {status}")
    return 0


def cmd_challenge(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    _belongs(client, args.datanet, args.contribution)
    bond = (parse_amount(args.bond) if args.bond is not None
            else max(int(_datanet(client, args.datanet)["challengeBond"]), 1))
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS,
                              DATANETS.function("challenge").encode_call(args.contribution), bond)
    emit(args, {"contribution": args.contribution, "bond": str(bond),
                "tx": receipt["transactionHash"]},
         f"contribution {args.contribution}: challenged with {format_open(bond)}")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    _belongs(client, args.datanet, args.contribution)
    data = DATANETS.function("resolveChallenge").encode_call(args.contribution, args.upheld)
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS, data)
    status = client.rpc("openledger_getContribution", [args.contribution])["status"]
    emit(args, {"contribution": args.contribution, "status": status,
                "tx": receipt["transactionHash"]}, f"contribution {args.contribution}: {status}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS,
                              DATANETS.function("createVersion").encode_call(args.datanet))
    version = log_topic(receipt, DATANETS, "VersionCreated", 2)
    emit(args, {"datanet": args.datanet, "version": version, "tx": receipt["transactionHash"]},
         str(version))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    dn = _datanet(client, args.datanet)

    def amount(given: str | None, current: str) -> int:
        return parse_amount(given) if given is not None else int(current)

    bps = dn["rejectForfeitBps"] if args.reject_forfeit_bps is None else args.reject_forfeit_bps
    if not 0 <= bps <= 10_000:
        raise CliError("--reject-forfeit-bps must be within 0..10000")
    data = DATANETS.function("updateDatanet").encode_call(
        args.datanet, dn["metadataUri"] if args.metadata_uri is None else args.metadata_uri,
        amount(args.stake, dn["stake"]), amount(args.fee, dn["fee"]), bps,
        amount(args.curator_bond, dn["curatorBond"]),
        amount(args.challenge_bond, dn["challengeBond"]))
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS, data)
    emit(args, {"id": args.datanet, "tx": receipt["transactionHash"]},
         f"datanet {args.datanet}: updated")
    return 0


def cmd_curator(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    curator = "0x" + parse_address(args.address).hex()
    fn = "addCurator" if args.action == "add-curator" else "removeCurator"
    receipt = client.transact(load_signer(args), DATANETS_ADDRESS,
                              DATANETS.function(fn).encode_call(args.datanet, curator))
    emit(args, {"id": args.datanet, "curator": args.address, "curating": fn == "addCurator",
                "tx": receipt["transactionHash"]},
         f"datanet {args.datanet}: {args.address} {'added' if fn == 'addCurator' else 'removed'}")
    return 0


def cmd_content(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    c = client.rpc("openledger_getContribution", [args.contribution])
    if c is None:
        raise CliError(f"unknown contribution {args.contribution}")
    data = bytes.fromhex(client.rpc("openledger_getContent", [c["contentHash"]])[2:])
    if "0x" + keccak(data).hex() != c["contentHash"]:
        raise CliError("the node served content that does not match the on-chain hash")
    if args.out is not None:
        args.out.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
