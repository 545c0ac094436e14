"""`openledger escrow ...`: inference escrow, worker authorisation, receipts and earnings.

`sign` is the payer's side of a receipt (EIP-712, for one worker and one nonce); `settle` is
the worker's: a file of signed receipts, one JSON object a line, settled in one transaction.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from datanets import receipts as receipt_codec
from datanets.types import Receipt
from evm_bridge.precompiles import SETTLEMENT_ADDRESS
from evm_bridge.precompiles.abi import SETTLEMENT
from openledger_node.commands.datanet import (
    ChainClient,
    CliError,
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

    p = sub.add_parser("sign", help="sign an inference receipt as its payer (prints JSON)")
    p.add_argument("--worker", required=True, help="the worker that will settle it")
    p.add_argument("--model", type=int, required=True)
    p.add_argument("--input-tokens", type=int, required=True)
    p.add_argument("--output-tokens", type=int, required=True)
    p.add_argument("--nonce", type=int, required=True,
                   help="unique per payer; consecutive nonces settle cheapest")
    p.add_argument("--attribution", action="append", required=True, metavar="CONTRIBUTION:BPS",
                   help="a contribution and its weight in basis points (repeatable; sum 10000)")
    p.add_argument("--fee", default=None, help="OPEN (default: the model's price for the tokens)")
    p.add_argument("--out", type=Path, help="append the receipt to this JSON-lines file")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_sign))

    p = sub.add_parser("settle", help="settle a file of signed receipts as their worker")
    p.add_argument("file", type=Path, help="JSON lines (or a JSON array) of signed receipts")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_settle))


def _balances(client: ChainClient, address: str) -> dict[str, Any]:
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
    """Immediate where the network has no unlock period; otherwise the first run requests
    the withdrawal and a run after the unlock block takes it."""
    client = ChainClient(args.rpc)
    amount = parse_amount(args.amount)
    key = load_signer(args)
    delay = int(client.rpc("openledger_protocolInfo")["escrowUnlockBlocks"])
    pending = _balances(client, args.sender)["pendingWithdrawal"]
    if delay and int(pending["amount"]) < amount:
        receipt = client.transact(key, SETTLEMENT_ADDRESS,
                                  SETTLEMENT.function("requestWithdrawal").encode_call(amount))
        unlock = log_topic_data_uint(receipt, "WithdrawalRequested", 1)
        emit(args, {"requested": str(amount), "unlockBlock": unlock,
                    "tx": receipt["transactionHash"]},
             f"withdrawal of {format_open(amount)} requested; run this again from block "
             f"{unlock} to take it")
        return 0
    receipt = client.transact(key, SETTLEMENT_ADDRESS,
                              SETTLEMENT.function("withdrawEscrow").encode_call(amount))
    escrow = _balances(client, args.sender)["escrow"]
    emit(args, {"withdrawn": str(amount), "escrow": escrow, "tx": receipt["transactionHash"]},
         f"escrow: {format_open(int(escrow))}")
    return 0


def log_topic_data_uint(receipt: dict[str, Any], event: str, word: int) -> int:
    """Non-indexed uint word `word` (0-based) of the first `event` log in a receipt."""
    topic0 = "0x" + SETTLEMENT.event(event).topic0.to_bytes(32, "big").hex()
    for log in receipt.get("logs", []):
        if log["topics"] and log["topics"][0] == topic0:
            data = bytes.fromhex(log["data"][2:])
            return int.from_bytes(data[32 * word: 32 * word + 32], "big")
    raise CliError(f"the transaction emitted no {event} event")


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


def cmd_sign(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    key = load_signer(args)
    pairs = []
    for item in args.attribution:
        try:
            cid, bps = (int(x) for x in item.split(":"))
        except ValueError:
            raise CliError(f"--attribution wants CONTRIBUTION:BPS, got {item!r}") from None
        pairs.append((cid, bps))
    if sum(b for _, b in pairs) != 10_000:
        raise CliError("attribution weights must sum to 10000")
    if args.fee is not None:
        fee = parse_amount(args.fee)
    else:
        model = client.rpc("openledger_getModel", [args.model])
        if model is None:
            raise CliError(f"unknown model {args.model}")
        fee = int(model["pricePer1kTokens"]) * (args.input_tokens + args.output_tokens) // 1000
    chain_id = int(client.rpc("eth_chainId"), 16)
    receipt = receipt_codec.sign_receipt(Receipt(
        args.model, parse_address(args.sender), parse_address(args.worker), args.input_tokens,
        args.output_tokens, fee, args.nonce, tuple(c for c, _ in pairs),
        tuple(b for _, b in pairs)), key, chain_id)
    line = json.dumps(receipt_codec.to_json(receipt))
    if args.out is not None:
        with args.out.open("a") as handle:
            handle.write(line + "\n")
    print(line)
    return 0


def _load_receipts(path: Path) -> list[Receipt]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        stripped = text.strip()
        docs: list[Any] = (json.loads(stripped) if stripped.startswith("[")
                           else [json.loads(line) for line in stripped.splitlines() if line])
        return [receipt_codec.from_json(d) for d in docs]
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None


def cmd_settle(args: argparse.Namespace) -> int:
    receipts = _load_receipts(args.file)
    if not receipts:
        raise CliError(f"{args.file} holds no receipts")
    worker = parse_address(args.sender)
    others = {r.worker for r in receipts} - {worker}
    if others:
        raise CliError(f"receipts signed for another worker: {checksum(others.pop())}")
    client = ChainClient(args.rpc)
    receipt = client.transact(load_signer(args), SETTLEMENT_ADDRESS,
                              receipt_codec.settle_calldata(receipts))
    total = sum(r.fee for r in receipts)
    emit(args, {"settled": len(receipts), "totalFees": str(total),
                "tx": receipt["transactionHash"]},
         f"settled {len(receipts)} receipts, {format_open(total)} in fees")
    return 0
