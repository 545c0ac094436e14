"""Devnet modes: interval block production, restart continuity and --fresh."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.utils.processes import devnet_process, rpc_result

pytestmark = pytest.mark.e2e


def test_interval_blocks_restart_and_fresh(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    node = devnet_process(home, "--block-time", "0.5").start()
    try:
        time.sleep(2.5)
        height = int(rpc_result(node.url, "eth_blockNumber"), 16)
        assert 2 <= height <= 8, height  # empty blocks keep coming every 0.5 s
        genesis_hash = rpc_result(node.url, "eth_getBlockByNumber", ["0x0", False])["hash"]
        head_hash = rpc_result(node.url, "eth_getBlockByNumber", [hex(height), False])["hash"]
    finally:
        node.stop()

    # Same directory: the same chain continues (instant mode now: no new empty blocks).
    again = devnet_process(home).start()
    try:
        assert rpc_result(again.url, "eth_getBlockByNumber", ["0x0", False])["hash"] == genesis_hash
        assert rpc_result(again.url, "eth_getBlockByNumber", [hex(height), False])["hash"] == \
            head_hash
        assert int(rpc_result(again.url, "eth_blockNumber"), 16) >= height
    finally:
        again.stop()

    # --fresh: a new chain from a new genesis.
    fresh = devnet_process(home, "--fresh").start()
    try:
        assert rpc_result(fresh.url, "eth_blockNumber") == "0x0"
    finally:
        fresh.stop()
