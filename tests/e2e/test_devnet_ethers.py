"""ethers v6 (npm) against a real devnet: ERC-20 deploy with EIP-1559, transfer, logs, revert."""

from __future__ import annotations

import json
import subprocess

import pytest

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts
from tests.utils.processes import NodeProcess
from tests.utils.solidity import JS_DIR

pytestmark = pytest.mark.e2e


def test_ethers_erc20_flow(devnet: NodeProcess) -> None:
    owner, recipient = dev_accounts(2)
    result = subprocess.run(
        ["node", "erc20_flow.mjs", devnet.url, "0x" + owner.private_key.hex(), recipient.address],
        cwd=JS_DIR, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr + devnet.log()
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    supply = 1_000_000 * 10**18
    amount = 250 * 10**18
    assert seen["chainId"] == str(DEVNET_CHAIN_ID)
    assert seen["deployType"] == 2 and seen["transferType"] == 2
    assert seen["transferStatus"] == 1
    assert seen["recipientBalance"] == str(amount)
    assert seen["senderBalance"] == str(supply - amount)
    assert seen["logs"] == [
        {"from": "0x" + "00" * 20, "to": owner.address, "value": str(supply)},
        {"from": owner.address, "to": recipient.address, "value": str(amount)},
    ]
    assert seen["revertReason"] == "ERC20: transfer amount exceeds balance"
    assert seen["estimateRevert"] == "ERC20: transfer amount exceeds balance"
