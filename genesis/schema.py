"""The genesis schema: what a chain's first block and state are made of.

Pure data with JSON round trips. Two file formats are read: our own (`openledger` genesis,
written by `Genesis.to_json`) and geth-style `genesis.json` (`config.chainId`, `alloc`, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import is_hex_address, to_canonical_address, to_checksum_address

DEFAULT_GAS_LIMIT = 30_000_000
DEFAULT_BASE_FEE = 1_000_000_000  # 1 gwei, EIP-1559 initial base fee
OPEN = 10**18  # one OPEN in its smallest unit (18 decimals, like ether)


class GenesisError(ValueError):
    """A genesis file or object is malformed."""


def _parse_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise GenesisError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError as exc:
            raise GenesisError(f"{what}: not an integer: {value!r}") from exc
    else:
        raise GenesisError(f"{what}: expected an integer, got {value!r}")
    if result < 0:
        raise GenesisError(f"{what}: must not be negative")
    return result


def _parse_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise GenesisError(f"{what}: expected 0x-prefixed hex, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise GenesisError(f"{what}: invalid hex") from exc


def _parse_address(value: Any, what: str) -> bytes:
    text = value if isinstance(value, str) else ""
    if not text.startswith("0x"):
        text = "0x" + text
    if not is_hex_address(text):
        raise GenesisError(f"{what}: not an address: {value!r}")
    return to_canonical_address(text)


@dataclass(frozen=True)
class GenesisAccount:
    """An account's state at genesis."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: Mapping[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"balance": hex(self.balance)}
        if self.nonce:
            out["nonce"] = hex(self.nonce)
        if self.code:
            out["code"] = "0x" + self.code.hex()
        if self.storage:
            out["storage"] = {
                "0x" + k.to_bytes(32, "big").hex(): "0x" + v.to_bytes(32, "big").hex()
                for k, v in sorted(self.storage.items())
            }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> GenesisAccount:
        storage = {
            _parse_int(k, f"{what}.storage key"): _parse_int(v, f"{what}.storage value")
            for k, v in dict(data.get("storage") or {}).items()
        }
        return cls(
            balance=_parse_int(data.get("balance", 0), f"{what}.balance"),
            nonce=_parse_int(data.get("nonce", 0), f"{what}.nonce"),
            code=_parse_bytes(data["code"], f"{what}.code") if data.get("code") else b"",
            storage=storage,
        )


@dataclass(frozen=True)
class GenesisValidator:
    """A validator in the genesis set: its operator account, consensus key and stake."""

    address: bytes  # 20-byte consensus address (derived from the consensus public key)
    public_key: bytes  # 33-byte compressed secp256k1 public key
    power: int  # voting power (stake in OPEN units / a power reduction)
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "address": to_checksum_address(self.address),
            "public_key": "0x" + self.public_key.hex(),
            "power": self.power,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> GenesisValidator:
        return cls(
            address=_parse_address(data.get("address"), f"{what}.address"),
            public_key=_parse_bytes(data.get("public_key"), f"{what}.public_key"),
            power=_parse_int(data.get("power"), f"{what}.power"),
            name=str(data.get("name", "")),
        )


@dataclass(frozen=True)
class Genesis:
    """Everything needed to build block 0 and the chain's protocol parameters."""

    chain_id: int
    timestamp: int = 0
    gas_limit: int = DEFAULT_GAS_LIMIT
    base_fee_per_gas: int = DEFAULT_BASE_FEE
    extra_data: bytes = b""
    coinbase: bytes = b"\x00" * 20
    alloc: Mapping[bytes, GenesisAccount] = field(default_factory=dict)
    validators: tuple[GenesisValidator, ...] = ()
    # Protocol parameters (consensus timeouts, fee shares, staking rules...): free-form so that
    # each subsystem owns its keys; every reader supplies defaults.
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.chain_id < 2**53:
            raise GenesisError(f"chain_id must be in 1..2^53-1, got {self.chain_id}")
        if self.gas_limit < 5000:
            raise GenesisError("gas_limit is too small")
        if len(self.extra_data) > 32:
            raise GenesisError("extra_data is limited to 32 bytes")
        for validator in self.validators:
            if validator.power <= 0:
                raise GenesisError("validator power must be positive")

    # -- our own format -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": "openledger-genesis/1",
            "chain_id": self.chain_id,
            "timestamp": self.timestamp,
            "gas_limit": self.gas_limit,
            "base_fee_per_gas": self.base_fee_per_gas,
            "extra_data": "0x" + self.extra_data.hex(),
            "coinbase": to_checksum_address(self.coinbase),
            "alloc": {to_checksum_address(a): acct.to_json() for a, acct in self.alloc.items()},
            "validators": [v.to_json() for v in self.validators],
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Genesis:
        if not isinstance(data, Mapping):
            raise GenesisError("genesis must be a JSON object")
        if "config" in data and "chain_id" not in data:
            return cls.from_geth_json(data)
        alloc = {
            _parse_address(a, "alloc"): GenesisAccount.from_json(v, f"alloc[{a}]")
            for a, v in dict(data.get("alloc") or {}).items()
        }
        validators = tuple(
            GenesisValidator.from_json(v, f"validators[{i}]")
            for i, v in enumerate(data.get("validators") or [])
        )
        extra = data.get("extra_data") or "0x"
        return cls(
            chain_id=_parse_int(data.get("chain_id"), "chain_id"),
            timestamp=_parse_int(data.get("timestamp", 0), "timestamp"),
            gas_limit=_parse_int(data.get("gas_limit", DEFAULT_GAS_LIMIT), "gas_limit"),
            base_fee_per_gas=_parse_int(
                data.get("base_fee_per_gas", DEFAULT_BASE_FEE), "base_fee_per_gas"
            ),
            extra_data=_parse_bytes(extra, "extra_data"),
            coinbase=_parse_address(data.get("coinbase", "0x" + "00" * 20), "coinbase"),
            alloc=alloc,
            validators=validators,
            params=dict(data.get("params") or {}),
        )

    # -- geth-style genesis.json ------------------------------------------------------------
    @classmethod
    def from_geth_json(cls, data: Mapping[str, Any]) -> Genesis:
        """Read a geth-style genesis: `config.chainId`, hex `gasLimit`, `alloc` without 0x."""
        config = data.get("config")
        if not isinstance(config, Mapping) or "chainId" not in config:
            raise GenesisError("geth genesis: config.chainId is required")
        alloc = {
            _parse_address(a, "alloc"): GenesisAccount.from_json(v, f"alloc[{a}]")
            for a, v in dict(data.get("alloc") or {}).items()
        }
        extra = data.get("extraData") or "0x"
        return cls(
            chain_id=_parse_int(config["chainId"], "config.chainId"),
            timestamp=_parse_int(data.get("timestamp", 0), "timestamp"),
            gas_limit=_parse_int(data.get("gasLimit", DEFAULT_GAS_LIMIT), "gasLimit"),
            base_fee_per_gas=_parse_int(
                data.get("baseFeePerGas", DEFAULT_BASE_FEE), "baseFeePerGas"
            ),
            extra_data=_parse_bytes(extra, "extraData")[:32],
            coinbase=_parse_address(data.get("coinbase", "0x" + "00" * 20), "coinbase"),
            alloc=alloc,
        )

    @classmethod
    def load(cls, path: str | Path) -> Genesis:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise GenesisError(f"cannot read genesis {path}: {exc}") from exc
        return cls.from_json(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")
