"""Typed records of datanets, contributions, versions, models and inference receipts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from datanets.abc import Space

BPS = 10_000  # basis points in one whole
BURN = b""  # the recipient of burned OPEN
MAX_CONTRIBUTION_SIZE = 5 * 1024 * 1024  # bytes, as OpenLedger's Datanets


class Status(IntEnum):
    """Lifecycle of a contribution."""

    NONE = 0
    PENDING = 1
    ACCEPTED = 2
    REJECTED = 3
    CHALLENGED = 4
    SLASHED = 5


@dataclass
class Datanet:
    owner: bytes
    name: str
    metadata_uri: str
    stake: int  # OPEN a contributor must lock per contribution
    fee: int  # OPEN a contributor pays the datanet owner per contribution
    reject_forfeit_bps: int  # share of the stake forfeited to the treasury on rejection
    curator_bond: int  # OPEN a curator locks with each acceptance
    challenge_bond: int  # minimum OPEN a challenger locks
    contribution_count: int = 0
    accepted_count: int = 0
    version_count: int = 0


@dataclass
class Contribution:
    datanet_id: int
    contributor: bytes
    content_hash: bytes
    size: int
    metadata_uri: str
    status: Status
    stake: int  # still locked (0 once released, refunded or slashed)
    curator: bytes = b"\x00" * 20  # who accepted or rejected it
    curator_bond: int = 0  # still locked
    accept_index: int = 0  # position in the datanet's accepted log
    accepted_at: int = 0  # block number
    challenger: bytes = b"\x00" * 20
    challenge_bond: int = 0


@dataclass
class Version:
    accepted_count: int  # the version holds accepted-log entries [0, accepted_count)
    root: bytes  # Merkle root over (contribution id, content hash) of those entries
    block_number: int


@dataclass
class Model:
    owner: bytes
    base_model: str
    adapter_hash: bytes
    price_per_1k: int  # OPEN (wei) per 1,000 tokens, input and output together
    owner_share_bps: int  # owner's share of what is left after the protocol's share
    retired: bool
    trained_on: list[tuple[int, int]]  # (datanet id, version number)


@dataclass(frozen=True)
class Receipt:
    """One inference, signed by its payer; the worker that settles it is `worker`."""

    model_id: int
    payer: bytes
    worker: bytes
    input_tokens: int
    output_tokens: int
    fee: int
    nonce: int
    contribution_ids: tuple[int, ...]
    weights: tuple[int, ...]  # basis points, summing to 10,000
    signature: bytes = b""  # 65 bytes: r, s, v (v 27/28 or 0/1)


@dataclass(frozen=True)
class Event:
    """A log the call emits; `args` in the order of the Solidity event's parameters."""

    name: str
    args: tuple[object, ...]


@dataclass(frozen=True)
class Transfer:
    """OPEN leaving a precompile account's balance for `to` (`BURN`: leaving circulation)."""

    source: Space
    to: bytes
    amount: int


@dataclass
class CallContext:
    """Who calls, with what value, where; collects the events and transfers of the call."""

    sender: bytes
    value: int = 0
    block_number: int = 0
    chain_id: int = 0
    events: list[Event] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)

    def emit(self, name: str, *args: object) -> None:
        self.events.append(Event(name, args))

    def pay(self, source: Space, to: bytes, amount: int) -> None:
        if amount:
            self.transfers.append(Transfer(source, to, amount))
