"""`openledger escrow deposit|withdraw|authorize|show|claim`: inference escrow and earnings."""

from __future__ import annotations

import argparse
import json

from evm_bridge.precompiles import SETTLEMENT_ADDRESS
from evm_bridge.precompiles.abi import SETTLEMENT
from openledger_node.commands.datanet import (
    ChainClient,
    add_common,
    emit,
    format_open,
    parse_amount,
    run_guarded,
)
from openledger_node.commands.keys import load_signer
from openledger_node.keystore import checksum, parse_address


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    top = subparsers.add_parser("escrow", help="inference escrow, worker authorisation, "
                                "attribution earnings")
    sub = top.add_subparsers(dest="escrow_command", metavar="COMMAND", required=True)

    p = sub.add_parser("deposit", help="put OPEN into your inference escrow")
    p.add_argument("amount", help="OPEN (or NNNwei)")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_deposit))

    p = sub.add_parser("withdraw", help="take OPEN back out of your escrow")
    p.add_argument("amount", help="OPEN (or NNNwei)")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_withdraw))

    p = sub.add_parser("authorize", help="let a worker settle your signed receipts")
    p.add_argument("worker")
    p.add_argument("--revoke", action="store_true", help="withdraw the authorisation")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_authorize))

    p = sub.add_parser("show", help="an address's escrow and accrued earnings")
    p.add_argument("address")
    add_common(p, False)
    p.set_defaults(func=run_guarded(cmd_show))

    p = sub.add_parser("claim", help="withdraw your accrued attribution earnings")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_claim))


def _balances(client: ChainClient, address: str) -> dict[str, str]:
    return client.rpc("openledger_getAccount", [address])  # type: ignore[no-any-return]


def cmd_deposit(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    amount = parse_amount(args.amount)
    receipt = client.transact(load_signer(args), SETTLEMENT_ADDRESS,
                              SETTLEMENT.function("deposit").encode_call(), amount)
    escrow = _balances(client, args.sender)["escrow"]
    emit(args, {"deposited": str(amount), "escrow": escrow, "tx": receipt["transactionHash"]},
         f"escrow: {format_open(int(escrow))}")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    amount = parse_amount(args.amount)
    receipt = client.transact(load_signer(args), SETTLEMENT_ADDRESS,
                              SETTLEMENT.function("withdrawEscrow").encode_call(amount))
    escrow = _balances(client, args.sender)["escrow"]
    emit(args, {"withdrawn": str(amount), "escrow": escrow, "tx": receipt["transactionHash"]},
         f"escrow: {format_open(int(escrow))}")
    return 0


def cmd_authorize(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    worker = parse_address(args.worker)
    data = SETTLEMENT.function("authorize").encode_call("0x" + worker.hex(), not args.revoke)
    receipt = client.transact(load_signer(args), SETTLEMENT_ADDRESS, data)
    emit(args, {"worker": checksum(worker), "authorized": not args.revoke,
                "tx": receipt["transactionHash"]},
         f"{checksum(worker)}: {'revoked' if args.revoke else 'authorized'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = _balances(ChainClient(args.rpc), args.address)
    if args.json:
        print(json.dumps(info))
    else:
        print(f"{info['address']}: escrow {format_open(int(info['escrow']))}, earnings "
              f"{format_open(int(info['earnings']))}")
    return 0


def cmd_claim(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    earnings = int(_balances(client, args.sender)["earnings"])
    receipt = client.transact(load_signer(args), SETTLEMENT_ADDRESS,
                              SETTLEMENT.function("withdrawEarnings").encode_call())
    emit(args, {"claimed": str(earnings), "tx": receipt["transactionHash"]},
         f"claimed {format_open(earnings)}")
    return 0
