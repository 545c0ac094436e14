"""Errors the p2p service raises to its callers (all derive from `P2PError`)."""

from __future__ import annotations


class P2PError(Exception):
    """A p2p operation failed (base class of the errors callers may catch)."""


class RequestTimeout(P2PError):
    """A peer did not answer a request in time."""


class ProtocolError(P2PError):
    """A peer broke the protocol: no answer, or malformed bytes."""


class MalformedAnswer(ProtocolError):
    """A peer's answer did not decode (the peer has been scored down)."""


class PeerUnavailable(P2PError):
    """No stream could be opened to the peer, or it reset the stream."""


class RequestRefused(P2PError):
    """The peer answered our request with an error (e.g. it serves no blocks)."""
