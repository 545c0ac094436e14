"""Node identity: key file creation, permissions, reload, peer addresses."""

import os
import stat

import pytest

from p2p.identity import (
    NODE_KEY_FILE,
    AddressError,
    IdentityError,
    NodeIdentity,
    listen_multiaddr,
    load_or_create_identity,
    parse_peer_addr,
    peer_multiaddr,
)


def test_key_created_private_and_stable(tmp_path):
    first = load_or_create_identity(tmp_path / "home")
    path = tmp_path / "home" / NODE_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_identity(tmp_path / "home")
    assert again.peer_id == first.peer_id
    assert first.peer_id != NodeIdentity.generate().peer_id


def test_world_readable_key_refused(tmp_path):
    load_or_create_identity(tmp_path)
    os.chmod(tmp_path / NODE_KEY_FILE, 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_or_create_identity(tmp_path)


@pytest.mark.parametrize("content", ["zz", "00" * 31, "00" * 32, ""])
def test_malformed_key_refused(tmp_path, content):
    path = tmp_path / NODE_KEY_FILE
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(IdentityError):
        load_or_create_identity(tmp_path)


def test_peer_addr_round_trip():
    ident = NodeIdentity.generate()
    text = peer_multiaddr(listen_multiaddr("127.0.0.1", 26656), ident.peer_id)
    assert text == f"/ip4/127.0.0.1/tcp/26656/p2p/{ident.peer_id.to_base58()}"
    info = parse_peer_addr(text)
    assert info.peer_id == ident.peer_id
    assert str(info.addrs[0]) == "/ip4/127.0.0.1/tcp/26656"


@pytest.mark.parametrize(
    "bad", ["", "/ip4/127.0.0.1/tcp/26656", "not an addr", "/ip4/127.0.0.1/tcp/1/p2p/xyz"]
)
def test_bad_peer_addr(bad):
    with pytest.raises(AddressError):
        parse_peer_addr(bad)


def test_bad_port():
    with pytest.raises(AddressError):
        listen_multiaddr("127.0.0.1", 70000)
