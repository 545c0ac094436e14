"""A node started with the OpenLoRA worker beside it: the worker serves, and stops with it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest

from openledger_node.config import NodeConfig
from tests.openlora.factories import save_base
from tests.utils.processes import devnet_process, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_devnet_with_lora_worker(tmp_path: Path) -> None:
    base = save_base(tmp_path / "tiny-llama")
    home = tmp_path / "devnet"
    lora_port = free_port()
    NodeConfig(home=home, lora_base_model=str(base), lora_port=lora_port,
               lora_args=("--threads", "1")).save()
    node = devnet_process(home, "--with-lora").start()
    try:
        deadline = time.monotonic() + 180
        models = None
        while time.monotonic() < deadline:
            try:
                models = httpx.get(f"http://127.0.0.1:{lora_port}/v1/models", timeout=5).json()
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert models is not None, node.log()
        assert models["data"], models
        assert (home / "adapters").is_dir()
        assert node.process is not None
        children = psutil.Process(node.process.pid).children(recursive=True)
        assert children, "the worker runs as a child of the node"
    finally:
        node.stop()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "worker outlived the node"
