"""Node configuration: runtime settings in `<home>/config.toml` (protocol constants live in
the genesis). Command-line flags override the file."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

CONFIG_FILE = "config.toml"
GENESIS_FILE = "genesis.json"
CHAINDATA_DIR = "chaindata"


class ConfigError(ValueError):
    """The configuration file or a flag is invalid."""


@dataclass(frozen=True)
class NodeConfig:
    home: Path
    rpc_host: str = "127.0.0.1"  # secure default: loopback only
    rpc_port: int = 8545
    ws_port: int = 8546
    cors_origins: tuple[str, ...] = ("*",)
    block_time: float = 0.0  # seconds; 0: instant (devnet only)
    rpc_max_concurrency: int = 64
    p2p_host: str = "127.0.0.1"
    p2p_port: int = 26656
    peers: tuple[str, ...] = field(default_factory=tuple)  # multiaddrs
    # A validator's consensus key: its address, kept encrypted in <home>/keystore (Web3
    # Secret Storage v3), unlocked with the password file (relative to home, mode 0600).
    validator_address: str = ""  # empty: a full node that does not vote
    validator_password_file: str = "validator_password"
    moniker: str = "openledger-node"
    # The OpenLoRA worker beside the node (a child process talking to it over JSON-RPC).
    lora_worker: bool = False
    lora_host: str = "127.0.0.1"
    lora_port: int = 8000
    lora_base_model: str = ""  # empty: the default model (SmolLM2-135M-Instruct)
    lora_adapters_dir: str = "adapters"  # relative to home
    lora_args: tuple[str, ...] = ()  # further `openledger lora serve` flags

    def __post_init__(self) -> None:
        for name in ("rpc_port", "ws_port", "p2p_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} must be a port number, got {port}")
        if self.block_time < 0:
            raise ConfigError("block_time must not be negative")

    @property
    def chaindata(self) -> Path:
        return self.home / CHAINDATA_DIR

    @property
    def genesis_path(self) -> Path:
        return self.home / GENESIS_FILE

    @classmethod
    def load(cls, home: Path) -> NodeConfig:
        path = home / CONFIG_FILE
        if not path.exists():
            return cls(home=home)
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        return cls.from_dict(home, raw.get("node", raw))

    @classmethod
    def from_dict(cls, home: Path, raw: dict[str, Any]) -> NodeConfig:
        known = {f.name for f in fields(cls)} - {"home"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(home=home, **values)

    def with_overrides(self, **overrides: Any) -> NodeConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def save(self) -> None:
        data = {k: list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items() if k != "home"}
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / CONFIG_FILE).write_text(tomli_w.dumps({"node": data}))
