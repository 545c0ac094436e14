"""Node identity: a secp256k1 key kept in the node home, its libp2p peer id, multiaddr helpers.

The key file `<home>/node_key` holds the 32-byte secret as hex on one line. It is created with
mode 0600 when absent and never logged; a file readable by others is refused, as ssh does, so a
leaked network identity is noticed instead of silently used.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import multiaddr
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.secp256k1 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

NODE_KEY_FILE = "node_key"
DEFAULT_P2P_PORT = 26656


class IdentityError(ValueError):
    """The node key file is missing, malformed or unsafely readable."""


class AddressError(ValueError):
    """A peer address is not a usable `/ip4/<host>/tcp/<port>/p2p/<peer id>` multiaddr."""


@dataclass(frozen=True)
class NodeIdentity:
    """A node's libp2p key pair and the peer id derived from its public key."""

    key_pair: KeyPair

    @property
    def peer_id(self) -> ID:
        return ID.from_pubkey(self.key_pair.public_key)

    @classmethod
    def generate(cls) -> NodeIdentity:
        """A fresh random identity (tests, throwaway nodes)."""
        return cls(create_new_key_pair())

    @classmethod
    def from_secret(cls, secret: bytes) -> NodeIdentity:
        """The identity of a 32-byte secp256k1 secret."""
        if len(secret) != 32:
            raise IdentityError(f"node key must be 32 bytes, got {len(secret)}")
        try:
            return cls(create_new_key_pair(secret))
        except ValueError as exc:  # zero or >= the group order
            raise IdentityError(f"node key is not a valid secp256k1 secret: {exc}") from exc


def load_or_create_identity(home: str | os.PathLike[str]) -> NodeIdentity:
    """Load `<home>/node_key`, creating it (mode 0600) with a new random key if absent."""
    path = Path(home) / NODE_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        identity = NodeIdentity.generate()
        secret = identity.key_pair.private_key.to_bytes()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile: use theirs
            return load_identity(path)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret.hex() + "\n")
        return identity
    return load_identity(path)


def load_identity(path: str | os.PathLike[str]) -> NodeIdentity:
    """Load a node key file; refuse one that group or others may read or write."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise IdentityError(f"node key file {path} does not exist") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityError(
            f"node key file {path} has mode {stat.S_IMODE(mode):o}; it must be 600 "
            f"(run: chmod 600 {path})"
        )
    text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text.removeprefix("0x"))
    except ValueError as exc:
        raise IdentityError(f"node key file {path} does not hold a hex secret") from exc
    return NodeIdentity.from_secret(secret)


def parse_peer_addr(addr: str | multiaddr.Multiaddr) -> PeerInfo:
    """Parse `/ip4/127.0.0.1/tcp/26656/p2p/<peer id>` into a PeerInfo, with a clear error."""
    try:
        maddr = addr if isinstance(addr, multiaddr.Multiaddr) else multiaddr.Multiaddr(addr)
        info = info_from_p2p_addr(maddr)
    except Exception as exc:
        raise AddressError(
            f"bad peer address {str(addr)!r}: expected /ip4/<host>/tcp/<port>/p2p/<peer id> ({exc})"
        ) from exc
    if not info.addrs:
        raise AddressError(f"bad peer address {str(addr)!r}: no transport part before /p2p")
    return info


def listen_multiaddr(host: str = "127.0.0.1", port: int = DEFAULT_P2P_PORT) -> multiaddr.Multiaddr:
    """The TCP listen address for `host:port` (port 0 picks a free port)."""
    if not 0 <= port <= 65535:
        raise AddressError(f"port {port} is out of range")
    family = "ip6" if ":" in host else "ip4"
    return multiaddr.Multiaddr(f"/{family}/{host}/tcp/{port}")


def peer_multiaddr(transport_addr: multiaddr.Multiaddr | str, peer_id: ID) -> str:
    """The dialable `<transport addr>/p2p/<peer id>` string others put in their peer lists."""
    base = str(transport_addr)
    if "/p2p/" in base:
        base = base.split("/p2p/")[0]
    return f"{base}/p2p/{peer_id.to_base58()}"
