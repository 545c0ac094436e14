"""Start real `openledger` processes for end-to-end tests and wait until they serve RPC."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


# Ports handed to node processes come from below the kernel's ephemeral range (32768+ on
# Linux), where outgoing client connections never take them while a node is starting.
PORT_RANGE = (10_000, 32_000)


def free_port() -> int:
    return _free_port_block(1)


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 30) -> Any:
    """One JSON-RPC call; returns the whole response object (result or error)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def rpc_result(url: str, method: str, params: list[Any] | None = None) -> Any:
    response = rpc(url, method, params)
    if "error" in response:
        raise AssertionError(f"{method} failed: {response['error']}")
    return response["result"]


@dataclass
class NodeProcess:
    """A running `openledger` process with its ports and log."""

    args: list[str]
    home: Path
    port: int
    ws_port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def start(self, timeout: float = 60) -> NodeProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "openledger_node.cli", *self.args],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited early:\n{self.log()}")
            try:
                rpc(self.url, "eth_blockNumber", timeout=2)
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"node did not serve RPC within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (the crash-consistency tests use this)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def devnet_process(home: Path, *extra: str, port: int | None = None,
                   ws_port: int | None = None) -> NodeProcess:
    """A devnet process description on free ports (call `.start()`)."""
    port = port or free_port()
    ws_port = ws_port or free_port()
    args = ["devnet", "--home", str(home), "--port", str(port), "--ws-port", str(ws_port), *extra]
    return NodeProcess(args, home, port, ws_port, home.parent / f"{home.name}.log")


def make_testnet(out: Path, validators: int, full_nodes: int = 0,
                      fund: tuple[str, ...] = ()) -> list[NodeProcess]:
    """Write an N-validator network with `openledger genesis testnet` on free ports and
    return a (not yet started) process per node, validators first."""
    base = _free_port_block(10 * (validators + full_nodes))
    args = [sys.executable, "-m", "openledger_node.cli", "genesis", "testnet",
            "--validators", str(validators), "--full-nodes", str(full_nodes),
            "--out", str(out), "--base-port", str(base)]
    for item in fund:
        args += ["--fund", item]
    subprocess.run(args, cwd=REPO, check=True, capture_output=True, timeout=120)
    network = json.loads((out / "network.json").read_text())
    return [
        NodeProcess(["run", "--home", node["home"]], Path(node["home"]), node["rpc_port"],
                    node["ws_port"], out / f"{node['name']}.log")
        for node in network["nodes"]
    ]


def _free_port_block(size: int) -> int:
    """A base port with `size` consecutive free ports after it (best effort)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(PORT_RANGE[0], PORT_RANGE[1] - size)
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free block of ports")
