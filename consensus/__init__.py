"""Proof-of-stake BFT consensus (Tendermint-style) for OpenLedger.

Rounds of propose / prevote / precommit with locks, stake-weighted quorums, a weighted
round-robin proposer, commit certificates, evidence of double signing and a write-ahead log.
It drives an application only through `consensus.abc.ApplicationAPI` and knows nothing of the EVM.
"""
