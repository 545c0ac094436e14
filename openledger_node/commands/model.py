"""`openledger model register|list|show|price|retire`: the model registry from the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eth_hash.auto import keccak

from evm_bridge.precompiles import MODELS_ADDRESS
from evm_bridge.precompiles.abi import MODELS
from openledger_node.commands.datanet import (
    ChainClient,
    CliError,
    add_common,
    emit,
    format_open,
    log_topic,
    parse_amount,
    run_guarded,
)
from openledger_node.commands.keys import load_signer
from openledger_node.content_store import parse_hash


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    top = subparsers.add_parser("model", help="the model registry (LoRA adapters on datanets)")
    sub = top.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    p = sub.add_parser("register", help="register a model (prints its id)")
    p.add_argument("--base-model", required=True, help="base model id, e.g. SmolLM2-135M")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--adapter-hash", help="the adapter's content hash (0x + 64 hex)")
    src.add_argument("--adapter-file", type=Path,
                     help="hash this file (e.g. adapter_model.safetensors) as the adapter")
    p.add_argument("--datanet", action="append", required=True, metavar="ID:VERSION",
                   help="a datanet version the model was trained on (repeatable)")
    p.add_argument("--price", required=True, help="OPEN per 1,000 tokens (or NNNwei)")
    p.add_argument("--owner-share-bps", type=int, default=2000,
                   help="owner's share after the protocol's, in basis points (default 2000)")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_register))

    p = sub.add_parser("list", help="list models")
    add_common(p, False)
    p.set_defaults(func=run_guarded(cmd_list))

    p = sub.add_parser("show", help="one model")
    p.add_argument("model", type=int)
    add_common(p, False)
    p.set_defaults(func=run_guarded(cmd_show))

    p = sub.add_parser("price", help="change a model's price (owner)")
    p.add_argument("model", type=int)
    p.add_argument("price", help="OPEN per 1,000 tokens")
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_price))

    p = sub.add_parser("retire", help="retire a model: no more settlements (owner)")
    p.add_argument("model", type=int)
    add_common(p, True)
    p.set_defaults(func=run_guarded(cmd_retire))


def _versions(items: list[str]) -> tuple[list[int], list[int]]:
    datanets, versions = [], []
    for item in items:
        try:
            datanet, version = (int(x) for x in item.split(":"))
        except ValueError:
            raise CliError(f"--datanet wants ID:VERSION, got {item!r}") from None
        datanets.append(datanet)
        versions.append(version)
    return datanets, versions


def cmd_register(args: argparse.Namespace) -> int:
    if args.adapter_file is not None:
        try:
            adapter_hash = keccak(args.adapter_file.read_bytes())
        except OSError as exc:
            raise CliError(f"cannot read {args.adapter_file}: {exc.strerror}") from None
    else:
        try:
            adapter_hash = parse_hash(args.adapter_hash)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if not 0 <= args.owner_share_bps <= 10_000:
        raise CliError("--owner-share-bps must be within 0..10000")
    datanets, versions = _versions(args.datanet)
    client = ChainClient(args.rpc)
    data = MODELS.function("registerModel").encode_call(
        args.base_model, adapter_hash, datanets, versions, parse_amount(args.price),
        args.owner_share_bps)
    receipt = client.transact(load_signer(args), MODELS_ADDRESS, data)
    model_id = log_topic(receipt, MODELS, "ModelRegistered", 1)
    emit(args, {"id": model_id, "adapterHash": "0x" + adapter_hash.hex(),
                "tx": receipt["transactionHash"]}, str(model_id))
    return 0


def _line(m: dict[str, object]) -> str:
    trained = ", ".join(f"{t['datanetId']}:{t['version']}" for t in m["trainedOn"])  # type: ignore[attr-defined]
    return (f"{m['id']:>4}  {m['baseModel']}  adapter {m['adapterHash']}  "
            f"{format_open(int(str(m['pricePer1kTokens'])))}/1k tokens  owner share "
            f"{int(str(m['ownerShareBps'])) / 100}%  datanets {trained}"
            f"{'  (retired)' if m['retired'] else ''}")


def cmd_list(args: argparse.Namespace) -> int:
    models = ChainClient(args.rpc).rpc("openledger_listModels")
    if args.json:
        print(json.dumps(models))
    else:
        for m in models:
            print(_line(m))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    m = ChainClient(args.rpc).rpc("openledger_getModel", [args.model])
    if m is None:
        raise CliError(f"unknown model {args.model}")
    print(json.dumps(m) if args.json else _line(m) + f"\n      owner {m['owner']}")
    return 0


def cmd_price(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    price = parse_amount(args.price)
    receipt = client.transact(load_signer(args), MODELS_ADDRESS,
                              MODELS.function("setPrice").encode_call(args.model, price))
    emit(args, {"id": args.model, "pricePer1kTokens": str(price),
                "tx": receipt["transactionHash"]}, f"model {args.model}: {format_open(price)}")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    client = ChainClient(args.rpc)
    receipt = client.transact(load_signer(args), MODELS_ADDRESS,
                              MODELS.function("retireModel").encode_call(args.model))
    emit(args, {"id": args.model, "retired": True, "tx": receipt["transactionHash"]},
         f"model {args.model}: retired")
    return 0
