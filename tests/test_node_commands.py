"""Operator commands: init, genesis testnet (with --fund), and the validator keys they write."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from genesis.schema import OPEN, Genesis
from openledger_node.cli import main
from openledger_node.commands.node import parse_fund
from openledger_node.config import NodeConfig
from openledger_node.validator_keys import load_validator_key


def test_init_creates_an_encrypted_validator_key(tmp_path: Path, capsys) -> None:
    genesis_file = tmp_path / "g.json"
    Genesis(chain_id=777).save(genesis_file)
    password = tmp_path / "pw"
    password.write_text("hunter2\n")
    home = tmp_path / "node"
    assert main(["init", "--home", str(home), "--validator", "--password-file", str(password),
                 "--genesis", str(genesis_file)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out  # no secret is printed
    config = NodeConfig.load(home)
    assert config.validator_address and config.validator_address in out
    key = load_validator_key(config)
    assert key is not None and len(key) == 32
    assert stat.S_IMODE((home / "validator_password").stat().st_mode) == 0o600
    keyfile = next((home / "keystore").iterdir())
    assert "crypto" in json.loads(keyfile.read_text())  # Web3 Secret Storage v3
    assert Genesis.load(home / "genesis.json").chain_id == 777
    assert main(["init", "--home", str(home)]) == 1  # never overwrites a home


def test_genesis_testnet_writes_a_consistent_network(tmp_path: Path) -> None:
    funded = "0x" + "ab" * 20
    out = tmp_path / "net"
    assert main(["genesis", "testnet", "--validators", "3", "--full-nodes", "1", "--out",
                 str(out), "--base-port", "21000", "--fund", f"{funded}=12.5"]) == 0
    network = json.loads((out / "network.json").read_text())
    assert len(network["nodes"]) == 4
    validators = [n for n in network["nodes"] if n["validator"]]
    assert len(validators) == 3
    genesis = Genesis.load(out / "node0" / "genesis.json")
    assert {v.address.hex() for v in genesis.validators} == {
        n["validator"][2:].lower() for n in validators}
    assert genesis.alloc[bytes.fromhex("ab" * 20)].balance == 12 * OPEN + OPEN // 2
    for node in network["nodes"]:
        config = NodeConfig.load(Path(node["home"]))
        assert config.rpc_port == node["rpc_port"] and len(config.peers) == 3
        assert (Path(node["home"]) / "genesis.json").read_text() == \
            (out / "node0" / "genesis.json").read_text()
        if node["validator"]:
            assert load_validator_key(config) is not None
    assert main(["genesis", "testnet", "--out", str(out)]) == 1  # never overwrites


@pytest.mark.parametrize("text", ["nope", "0x12=1", f"0x{'ab' * 20}=x", f"0x{'ab' * 20}=-1"])
def test_bad_fund_arguments(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fund(text)
    assert parse_fund(f"0x{'cd' * 20}=7wei") == (bytes.fromhex("cd" * 20), 7)
