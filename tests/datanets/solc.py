"""Compile Solidity with the npm `solc` package (solc-js) for tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
INTERFACES = HERE.parents[1] / "evm_bridge" / "precompiles" / "solidity"


def compile_sources(sources: dict[str, str]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (HERE.parent / "js" / "node_modules" / "solc").exists():
        pytest.skip("node and tests/js/node_modules/solc are needed (make setup)")
    out = subprocess.run([node, str(HERE / "compile_sol.js")], input=json.dumps(sources),
                         capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, Any] = json.loads(out.stdout)
    errors = [e for e in result.get("errors", []) if e["severity"] == "error"]
    assert not errors, errors
    return result


def interface_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(INTERFACES.glob("*.sol"))}
