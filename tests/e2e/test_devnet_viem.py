"""viem (npm) against a real devnet: chain definition, EIP-1559 transfer, receipt, fee data."""

from __future__ import annotations

import json
import subprocess

import pytest

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts
from tests.utils.processes import NodeProcess
from tests.utils.solidity import JS_DIR

pytestmark = pytest.mark.e2e


def test_viem_transfer(devnet: NodeProcess) -> None:
    sender, recipient = dev_accounts(2)
    result = subprocess.run(
        ["node", "viem_flow.mjs", devnet.url, "0x" + sender.private_key.hex(), recipient.address],
        cwd=JS_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr + devnet.log()
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["chainId"] == DEVNET_CHAIN_ID
    assert seen["status"] == "success" and seen["type"] == "eip1559"
    assert seen["delta"] == str(15 * 10**17)
    assert seen["blockHasTx"] is True
    assert int(seen["maxFeePerGas"]) > 0 and seen["feeHistoryBlocks"] == 3
