"""Compile Solidity in tests with the npm `solc` package (tests/js), evmVersion prague."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "js"


@dataclass(frozen=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime: bytes


def compile_solidity(sources: dict[str, str]) -> dict[str, Compiled]:
    """Compile `{filename: source}`; returns contracts by name. Raises on compiler errors."""
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {"optimizer": {"enabled": True, "runs": 200}},
    }
    result = subprocess.run(
        ["node", str(JS_DIR / "compile.cjs")], input=json.dumps(request).encode(),
        capture_output=True, check=True, cwd=JS_DIR, timeout=120,
    )
    output = json.loads(result.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("\n".join(e["formattedMessage"] for e in errors))
    contracts = {}
    for file_contracts in output["contracts"].values():
        for name, contract in file_contracts.items():
            contracts[name] = Compiled(
                abi=contract["abi"],
                bytecode=bytes.fromhex(contract["evm"]["bytecode"]["object"]),
                runtime=bytes.fromhex(contract["evm"]["deployedBytecode"]["object"]),
            )
    return contracts
