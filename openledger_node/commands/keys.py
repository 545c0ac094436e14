"""`openledger keys new|import|list`: the CLI's signing keys, as v3 keystore files.

Also the options every signing command shares (`--from --keystore-dir --password-file`) and
loading the key they name. Passwords are read from a file or a prompt that does not echo,
and never printed or logged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from openledger_node.keystore import (
    DEFAULT_KEYSTORE,
    Keystore,
    KeystoreError,
    checksum,
    parse_address,
    read_password,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = subparsers.add_parser("keys", help="manage signing keys (v3 keystore files)")
    sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)

    new = sub.add_parser("new", help="create a new random key")
    _keystore_args(new)
    new.set_defaults(func=cmd_new)

    imp = sub.add_parser("import", help="import a private key from a file")
    imp.add_argument("--private-key-file", required=True,
                     help="file holding the hex private key (0x optional)")
    _keystore_args(imp)
    imp.set_defaults(func=cmd_import)

    lst = sub.add_parser("list", help="list the keys in a keystore directory")
    lst.add_argument("--keystore-dir", type=Path, default=DEFAULT_KEYSTORE)
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_list)


def _keystore_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keystore-dir", type=Path, default=DEFAULT_KEYSTORE,
                        help=f"keystore directory (default {DEFAULT_KEYSTORE})")
    parser.add_argument("--password-file", help="read the password from this file's first "
                        "line (default: prompt without echo)")
    parser.add_argument("--light-kdf", action="store_true",
                        help="cheaper scrypt (like geth --lightkdf): for test keys only")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_signer_args(parser: argparse.ArgumentParser) -> None:
    """The options of every command that signs a transaction."""
    parser.add_argument("--from", dest="sender", required=True, help="signing address")
    parser.add_argument("--keystore-dir", type=Path, default=DEFAULT_KEYSTORE,
                        help=f"keystore directory (default {DEFAULT_KEYSTORE})")
    parser.add_argument("--password-file", help="read the key's password from this file "
                        "(default: prompt without echo)")


def load_signer(args: argparse.Namespace) -> bytes:
    """The private key `--from` names, decrypted with the password given."""
    address = parse_address(args.sender)
    keystore = Keystore(args.keystore_dir)
    keystore.find(address)  # a clear error before asking for a password
    return keystore.private_key(address, read_password(args.password_file))


def _print_address(args: argparse.Namespace, address: bytes, path: Path) -> None:
    if args.json:
        print(json.dumps({"address": checksum(address), "path": str(path)}))
    else:
        print(checksum(address))


def cmd_new(args: argparse.Namespace) -> int:
    try:
        keystore = Keystore(args.keystore_dir)
        address = keystore.new(read_password(args.password_file, confirm=True), args.light_kdf)
    except KeystoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_address(args, address, keystore.find(address))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    try:
        try:
            text = Path(args.private_key_file).read_text().strip()
        except OSError as exc:
            raise KeystoreError(f"cannot read private key file: {exc.strerror}") from None
        text = text[2:] if text.lower().startswith("0x") else text
        try:
            private_key = bytes.fromhex(text)
        except ValueError:
            raise KeystoreError("the private key file does not hold a hex key") from None
        keystore = Keystore(args.keystore_dir)
        address = keystore.add(private_key, read_password(args.password_file, confirm=True),
                               args.light_kdf)
    except KeystoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_address(args, address, keystore.find(address))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    entries = Keystore(args.keystore_dir).entries()
    if args.json:
        print(json.dumps([{"address": checksum(a), "path": str(p)} for a, p in entries]))
    else:
        for address, path in entries:
            print(f"{checksum(address)}  {path}")
    return 0
