"""Keys the CLI signs with: Web3 Secret Storage v3 files (as geth, MetaMask and Foundry use).

One JSON file per key in a keystore directory (0700; files 0600), named as geth names them.
Passwords come from a file or a prompt that does not echo; nothing here logs or prints them.
`light=True` uses a cheaper scrypt (as geth's `--lightkdf`), for tests and throwaway keys.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path

from eth_account import Account
from eth_utils import to_checksum_address

DEFAULT_KEYSTORE = Path.home() / ".openledger" / "keystore"
LIGHT_SCRYPT_N = 4096  # geth's --lightkdf value; the default is eth-account's 2^18


class KeystoreError(Exception):
    """A keystore problem worth a one-line message: unknown address, wrong password..."""


def parse_address(text: str) -> bytes:
    raw = text[2:] if text.lower().startswith("0x") else text
    try:
        address = bytes.fromhex(raw)
    except ValueError:
        raise KeystoreError(f"not an address: {text!r}") from None
    if len(address) != 20:
        raise KeystoreError(f"not an address: {text!r}")
    return address



def checksum(address: bytes) -> str:
    return str(to_checksum_address(address))


def read_password(password_file: str | None, confirm: bool = False) -> str:
    """The first line of `password_file`, or a prompt (twice when `confirm`)."""
    if password_file:
        try:
            text = Path(password_file).read_text()
        except OSError as exc:
            raise KeystoreError(f"cannot read password file: {exc.strerror}") from None
        return text.splitlines()[0] if text else ""
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise KeystoreError("passwords do not match")
    return password


class Keystore:
    """The keys in one directory."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory else DEFAULT_KEYSTORE

    def entries(self) -> list[tuple[bytes, Path]]:
        """(address, file) of every keystore file, sorted by file name (creation time)."""
        if not self.dir.is_dir():
            return []
        out = []
        for path in sorted(self.dir.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                address = parse_address(json.loads(path.read_text())["address"])
            except (ValueError, KeyError, TypeError, KeystoreError):
                continue  # not a keystore file
            out.append((address, path))
        return out

    def find(self, address: bytes) -> Path:
        for found, path in self.entries():
            if found == address:
                return path
        raise KeystoreError(f"no key for {checksum(address)} in {self.dir}")

    def add(self, private_key: bytes, password: str, light: bool = False) -> bytes:
        """Encrypt and save a key; returns its address. Refuses a key already present."""
        if len(private_key) != 32:
            raise KeystoreError("a private key is 32 bytes")
        try:
            account = Account.from_key(private_key)
        except (ValueError, TypeError):
            raise KeystoreError("not a valid secp256k1 private key") from None
        address = bytes.fromhex(account.address[2:])
        if any(found == address for found, _ in self.entries()):
            raise KeystoreError(f"{account.address} is already in {self.dir}")
        encrypted = Account.encrypt(private_key, password, kdf="scrypt",
                                    iterations=LIGHT_SCRYPT_N if light else None)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime())
        path = self.dir / f"UTC--{stamp}.{time.time_ns() % 10**9:09d}Z--{address.hex()}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(encrypted, handle)
        return address

    def new(self, password: str, light: bool = False) -> bytes:
        return self.add(os.urandom(32), password, light)

    def private_key(self, address: bytes, password: str) -> bytes:
        path = self.find(address)
        try:
            return bytes(Account.decrypt(json.loads(path.read_text()), password))
        except ValueError:
            raise KeystoreError(f"wrong password for {checksum(address)}") from None
