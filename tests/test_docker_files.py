"""The docker files describe the same topology the e2e tests run as processes.

No Docker engine runs on the CI machines, so the compose file is parsed and its genesis
command is run for real (into a temporary directory) to check the pieces agree.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from openledger_node.cli import main

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker" / "docker-compose.yml").read_text())


def node_services() -> dict[str, dict]:
    return {name: svc for name, svc in COMPOSE["services"].items() if re.fullmatch(r"node\d+", name)}


def test_every_package_is_copied_into_the_image() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    for package in ("openledger_node", "consensus", "evm_bridge", "datanets", "openlora",
                    "p2p", "genesis"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "torch==2.13.0" in dockerfile  # the CPU wheel, not a CUDA build


def test_compose_nodes_match_the_genesis_command(tmp_path: Path) -> None:
    nodes = node_services()
    assert len(nodes) == 4
    command = COMPOSE["services"]["genesis"]["command"][0]
    args = shlex.split(command.split("||", 1)[1])
    assert args[:3] == ["openledger", "genesis", "testnet"]
    hosts = args[args.index("--hosts") + 1].split(",")
    ips = [svc["networks"]["openledger"]["ipv4_address"] for _, svc in sorted(nodes.items())]
    assert hosts == ips
    host_ports = [p for svc in nodes.values() for p in svc["ports"]]
    assert len(host_ports) == len(set(host_ports))
    for name, svc in nodes.items():
        assert svc["command"] == ["run", "--home", f"/testnet/{name}"]

    # Run the same command into a temporary directory and check what each node will use.
    out = tmp_path / "testnet"
    fixed = [a if a != "/testnet" else str(out) for a in args[1:]]
    assert main(fixed) == 0
    for i, ip in enumerate(ips):
        config = tomllib.loads((out / f"node{i}" / "config.toml").read_text())["node"]
        assert config["p2p_host"] == ip and config["rpc_host"] == "0.0.0.0"
        assert len(config["peers"]) == 3
        assert all(f"/ip4/{other}/tcp/8547/p2p/" in " ".join(config["peers"])
                   for other in ips if other != ip)
        assert config["validator_address"]


def test_each_validator_has_a_worker() -> None:
    workers = [svc for name, svc in COMPOSE["services"].items() if name.startswith("lora")]
    assert len(workers) == len(node_services())
    for svc in workers:
        assert svc["command"][:2] == ["lora", "serve"]
