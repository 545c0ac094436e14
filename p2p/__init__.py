"""Peer-to-peer networking over py-libp2p on trio.

Node identity, static peers and bootnodes, gossip of transactions, proposals, votes and
evidence (validated before relaying), request/response protocols for status and block sync,
and peer scoring that disconnects peers sending garbage.
"""
