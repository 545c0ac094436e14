"""The contribution store, the keystore and the CLI's input handling, without a node."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from openledger_node import cli
from openledger_node.commands.datanet import CliError, format_open, parse_amount
from openledger_node.content_store import MAX_CONTENT_SIZE, ContentError, ContentStore
from openledger_node.keystore import Keystore, KeystoreError


def test_content_store_round_trip_and_limits(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "c")
    digest = store.put(b"hello datanet")
    assert digest == keccak(b"hello datanet")
    assert store.put(b"hello datanet") == digest  # idempotent
    assert store.get(digest) == b"hello datanet" and store.has(digest)
    assert store.get(keccak(b"other")) is None
    with pytest.raises(ContentError, match="empty"):
        store.put(b"")
    with pytest.raises(ContentError, match="limit"):
        store.put(b"x" * (MAX_CONTENT_SIZE + 1))
    assert store.put(b"x" * MAX_CONTENT_SIZE)
    # A corrupted file is never served under its hash.
    path = next(p for p in (tmp_path / "c").rglob(digest.hex()))
    path.write_bytes(b"tampered")
    assert store.get(digest) is None
    assert not list((tmp_path / "c").rglob(".tmp-*"))


def test_keystore_new_import_list_and_wrong_password(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "ks")
    a = ks.new("pw", light=True)
    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    b = ks.add(key, "other", light=True)
    assert [addr for addr, _ in ks.entries()] == [a, b]
    assert ks.private_key(b, "other") == key
    assert stat.S_IMODE(ks.find(b).stat().st_mode) == 0o600
    with pytest.raises(KeystoreError, match="wrong password"):
        ks.private_key(b, "nope")
    with pytest.raises(KeystoreError, match="already"):
        ks.add(key, "x", light=True)
    with pytest.raises(KeystoreError, match="no key"):
        ks.find(b"\x01" * 20)
    doc = json.loads(ks.find(b).read_text())
    assert doc["version"] == 3 and "pw" not in ks.find(a).read_text()


def test_keys_cli_never_prints_the_password(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-passphrase\n")
    keyfile = tmp_path / "key"
    keyfile.write_text("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    base = ["--keystore-dir", str(tmp_path / "ks")]
    assert cli.main(["keys", "import", "--private-key-file", str(keyfile), "--password-file",
                     str(pw), "--light-kdf", *base]) == 0
    assert cli.main(["keys", "new", "--password-file", str(pw), "--light-kdf", "--json",
                     *base]) == 0
    assert cli.main(["keys", "list", "--json", *base]) == 0
    out = capsys.readouterr()
    assert "s3cret" not in out.out + out.err
    listed = json.loads(out.out.strip().splitlines()[-1])
    assert listed[0]["address"] == Account.from_key(keyfile.read_text()).address
    assert len(listed) == 2
    badkey = tmp_path / "bad"
    badkey.write_text("zz")
    assert cli.main(["keys", "import", "--private-key-file", str(badkey), "--password-file",
                     str(pw), *base]) == 1
    assert "hex key" in capsys.readouterr().err


def test_amounts() -> None:
    assert parse_amount("1.5") == 15 * 10**17
    assert parse_amount("100wei") == 100
    assert parse_amount("0") == 0
    with pytest.raises(CliError):
        parse_amount("abc")
    with pytest.raises(CliError, match="decimals"):
        parse_amount("0.0000000000000000001")
    assert format_open(15 * 10**17) == "1.5 OPEN"
    assert format_open(0) == "0 OPEN"


def test_signing_command_reports_unknown_key_and_unreachable_node(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["datanet", "create", "--name", "x", "--from", "0x" + "11" * 20,
                     "--keystore-dir", str(tmp_path), "--rpc", "http://127.0.0.1:9"])
    assert code == 1 and "no key for" in capsys.readouterr().err
    code = cli.main(["datanet", "show", "1", "--rpc", "http://127.0.0.1:9"])
    assert code == 1 and "cannot reach the node" in capsys.readouterr().err
