"""Validator consensus keys in a node home: encrypted (Web3 Secret Storage v3) in
`<home>/keystore`, unlocked by `<home>/validator_password` (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

from coincurve import PrivateKey
from eth_utils import to_canonical_address

from consensus.types import address_from_private_key
from genesis.schema import GenesisValidator
from openledger_node.config import ConfigError, NodeConfig
from openledger_node.keystore import Keystore, KeystoreError, read_password

PASSWORD_FILE = "validator_password"
KEYSTORE_DIR = "keystore"


def write_secret(path: Path, text: str) -> None:
    """Write `text` to a file only its owner may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def create_validator_key(home: Path, power: int, name: str = "") -> GenesisValidator:
    """A new random consensus key, stored encrypted in `home` with a random password file."""
    key = os.urandom(32)
    password = os.urandom(16).hex()
    Keystore(home / KEYSTORE_DIR).add(key, password, light=True)
    write_secret(home / PASSWORD_FILE, password + "\n")
    return GenesisValidator(
        address=address_from_private_key(key),
        public_key=PrivateKey(key).public_key.format(compressed=True),
        power=power,
        name=name,
    )


def load_validator_key(config: NodeConfig) -> bytes | None:
    """The configured validator's private key, or None for a node that does not vote."""
    if not config.validator_address:
        return None
    password_path = config.home / config.validator_password_file
    try:
        password = read_password(str(password_path) if password_path.exists() else None)
        return Keystore(config.home / KEYSTORE_DIR).private_key(
            to_canonical_address(config.validator_address), password)
    except KeystoreError as exc:
        raise ConfigError(f"cannot unlock the validator key: {exc}") from exc
