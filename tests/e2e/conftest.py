"""Fixtures that start real node processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.processes import NodeProcess, devnet_process


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[NodeProcess]:
    node = devnet_process(tmp_path / "devnet").start()
    try:
        yield node
    finally:
        node.stop()
