"""The `openledger` command line.

Each command group lives in its own module under `openledger_node.commands` (or in the package
it belongs to, such as `openlora.cli`) and exposes `register(subparsers)`, which adds its
parsers and sets `func` on them. `main` only collects them, parses and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules that contribute command groups, with the group they stand for in `--help` when a
# third-party dependency of theirs (an optional extra, such as the worker's torch stack) is
# not installed: the group is then listed as unavailable and names the missing package.
COMMAND_MODULES: dict[str, str] = {
    "openledger_node.commands.devnet": "devnet",
    "openledger_node.commands.keys": "keys",
    "openledger_node.commands.node": "node commands",
    "openledger_node.commands.datanet": "datanet",
    "openledger_node.commands.model": "model",
    "openledger_node.commands.escrow": "escrow",
    "openlora.cli": "lora",
}
OUR_PACKAGES = ("openledger_node", "consensus", "evm_bridge", "datanets", "openlora", "p2p",
                "genesis")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openledger",
        description="OpenLedger node: a proof-of-stake EVM chain for data, models and AI agents.",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, group in COMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing.split(".")[0] in OUR_PACKAGES:
                raise  # a broken install of ours, not an optional extra
            stub = subparsers.add_parser(
                group, help=f"(unavailable: missing dependency {missing})",
            )
            stub.set_defaults(func=lambda _args, m=missing: _missing_dependency(m))
            continue
        module.register(subparsers)
    return parser


def _missing_dependency(name: str | None) -> int:
    print(f"error: this command needs the optional dependency {name!r}; "
          "install with: pip install 'openledger-node[lora]'", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
