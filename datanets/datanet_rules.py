"""Rules of datanets and their contributions: create, curate, contribute, accept, reject,
challenge, resolve, release and version.

OPEN locked by these rules (contributor stakes, curator and challenger bonds) sits in the
datanets account; every payout is a direct `Transfer` from it, since each happens once per
contribution (no micropayment stream to batch). Invariant: the account's balance equals the sum
of the stakes and bonds still locked.
"""

from __future__ import annotations

from datanets import merkle
from datanets.abc import RuleError, Space
from datanets.ledger import CONTRIBUTION_COUNT, DATANET_COUNT, Ledger
from datanets.params import challenge_period, slash_recipient
from datanets.types import (
    BPS,
    MAX_CONTRIBUTION_SIZE,
    CallContext,
    Contribution,
    Datanet,
    Status,
    Version,
)

ZERO_ADDRESS = b"\x00" * 20
MAX_STRING = 1024  # bytes of a name or metadata URI
MAX_CURATORS = 32  # per creation call


def _check_text(label: str, text: str) -> None:
    if len(text.encode("utf-8")) > MAX_STRING:
        raise RuleError(f"{label} longer than {MAX_STRING} bytes")


def _require_datanet(ledger: Ledger, datanet_id: int) -> Datanet:
    dn = ledger.get_datanet(datanet_id)
    if dn is None:
        raise RuleError(f"unknown datanet {datanet_id}")
    return dn


def _require_no_value(ctx: CallContext) -> None:
    if ctx.value:
        raise RuleError("function is not payable")


def _can_curate(ledger: Ledger, datanet_id: int, dn: Datanet, who: bytes) -> bool:
    return who == dn.owner or ledger.is_curator(datanet_id, who)


def create_datanet(
    ledger: Ledger,
    ctx: CallContext,
    name: str,
    metadata_uri: str,
    curators: list[bytes],
    stake: int,
    fee: int,
    reject_forfeit_bps: int,
    curator_bond: int,
    challenge_bond: int,
) -> int:
    """A new datanet owned by the caller; the owner always curates too."""
    _require_no_value(ctx)
    if not name:
        raise RuleError("datanet name is empty")
    _check_text("name", name)
    _check_text("metadata URI", metadata_uri)
    if len(curators) > MAX_CURATORS:
        raise RuleError(f"more than {MAX_CURATORS} curators")
    if reject_forfeit_bps > BPS:
        raise RuleError("rejectForfeitBps above 10000")
    if curator_bond >= 1 << 128 or challenge_bond >= 1 << 128:
        raise RuleError("bond too large")
    datanet_id = ledger.next_id(ledger.d, DATANET_COUNT)
    dn = Datanet(ctx.sender, name, metadata_uri, stake, fee, reject_forfeit_bps,
                 curator_bond, challenge_bond)
    ledger.put_datanet(datanet_id, dn)
    ctx.emit("DatanetCreated", datanet_id, ctx.sender, name, metadata_uri)
    for curator in curators:
        if curator == ZERO_ADDRESS:
            raise RuleError("curator is the zero address")
        ledger.set_curator(datanet_id, curator, True)
        ctx.emit("CuratorAdded", datanet_id, curator)
    return datanet_id


def update_datanet(
    ledger: Ledger,
    ctx: CallContext,
    datanet_id: int,
    metadata_uri: str,
    stake: int,
    fee: int,
    reject_forfeit_bps: int,
    curator_bond: int,
    challenge_bond: int,
) -> None:
    """Owner only; applies to contributions made from now on (each keeps its own stake)."""
    _require_no_value(ctx)
    dn = _require_datanet(ledger, datanet_id)
    if ctx.sender != dn.owner:
        raise RuleError("only the datanet owner may update it")
    _check_text("metadata URI", metadata_uri)
    if reject_forfeit_bps > BPS:
        raise RuleError("rejectForfeitBps above 10000")
    if curator_bond >= 1 << 128 or challenge_bond >= 1 << 128:
        raise RuleError("bond too large")
    dn.metadata_uri, dn.stake, dn.fee = metadata_uri, stake, fee
    dn.reject_forfeit_bps, dn.curator_bond, dn.challenge_bond = (
        reject_forfeit_bps, curator_bond, challenge_bond)
    ledger.put_datanet(datanet_id, dn)
    ctx.emit("DatanetUpdated", datanet_id)


def set_curator(ledger: Ledger, ctx: CallContext, datanet_id: int, curator: bytes,
                on: bool) -> None:
    _require_no_value(ctx)
    dn = _require_datanet(ledger, datanet_id)
    if ctx.sender != dn.owner:
        raise RuleError("only the datanet owner may change curators")
    if curator == ZERO_ADDRESS:
        raise RuleError("curator is the zero address")
    if ledger.is_curator(datanet_id, curator) == on:
        raise RuleError("already a curator" if on else "not a curator")
    ledger.set_curator(datanet_id, curator, on)
    ctx.emit("CuratorAdded" if on else "CuratorRemoved", datanet_id, curator)


def contribute(ledger: Ledger, ctx: CallContext, datanet_id: int, content_hash: bytes,
               size: int, metadata_uri: str) -> int:
    """Record a contribution; the value sent must be the datanet's stake plus its fee."""
    dn = _require_datanet(ledger, datanet_id)
    if len(content_hash) != 32 or content_hash == b"\x00" * 32:
        raise RuleError("content hash is empty")
    if not 0 < size <= MAX_CONTRIBUTION_SIZE:
        raise RuleError(f"size must be within 1..{MAX_CONTRIBUTION_SIZE} bytes")
    _check_text("metadata URI", metadata_uri)
    if ctx.value != dn.stake + dn.fee:
        raise RuleError(f"value must be stake + fee = {dn.stake + dn.fee}")
    cid = ledger.next_id(ledger.d, CONTRIBUTION_COUNT)
    ledger.put_contribution(cid, _new_contribution(datanet_id, ctx.sender, content_hash, size,
                                                   metadata_uri, dn.stake))
    ledger.set_datanet_contribution(datanet_id, dn.contribution_count, cid)
    dn.contribution_count += 1
    ledger.put_datanet(datanet_id, dn, strings=False)
    ctx.pay(Space.DATANETS, dn.owner, dn.fee)
    ctx.emit("Contributed", datanet_id, cid, ctx.sender, content_hash, size, dn.stake)
    return cid


def _new_contribution(datanet_id: int, contributor: bytes, content_hash: bytes, size: int,
                      metadata_uri: str, stake: int) -> Contribution:
    return Contribution(datanet_id, contributor, content_hash, size, metadata_uri,
                        Status.PENDING, stake)


def _curated(ledger: Ledger, ctx: CallContext, cid: int,
             expect: Status) -> tuple[Contribution, Datanet]:
    c = ledger.get_contribution(cid)
    if c is None:
        raise RuleError(f"unknown contribution {cid}")
    dn = _require_datanet(ledger, c.datanet_id)
    if not _can_curate(ledger, c.datanet_id, dn, ctx.sender):
        raise RuleError("caller is not a curator of this datanet")
    if c.status != expect:
        raise RuleError(f"contribution {cid} is {c.status.name.lower()}, not {expect.name.lower()}")
    return c, dn


def accept(ledger: Ledger, ctx: CallContext, cid: int) -> int:
    """A curator accepts a pending contribution, locking the datanet's curator bond."""
    c, dn = _curated(ledger, ctx, cid, Status.PENDING)
    if ctx.value != dn.curator_bond:
        raise RuleError(f"value must be the curator bond = {dn.curator_bond}")
    c.status, c.curator, c.curator_bond = Status.ACCEPTED, ctx.sender, ctx.value
    c.accept_index, c.accepted_at = dn.accepted_count, ctx.block_number
    ledger.put_contribution(cid, c, full=False)
    ledger.set_accepted_entry(c.datanet_id, dn.accepted_count, cid)
    merkle.insert(lambda h: ledger.branch_node(c.datanet_id, h),
                  lambda h, node: ledger.set_branch_node(c.datanet_id, h, node),
                  dn.accepted_count, merkle.leaf(cid, c.content_hash))
    dn.accepted_count += 1
    ledger.put_datanet(c.datanet_id, dn, strings=False)
    ctx.emit("Accepted", c.datanet_id, cid, ctx.sender, c.accept_index)
    return c.accept_index


def reject(ledger: Ledger, ctx: CallContext, cid: int) -> int:
    """A curator rejects a pending contribution: the forfeit share of its stake goes to the
    treasury (or is burned, per `datanets.slash_to`), the rest back to the contributor. Returns the forfeited amount."""
    _require_no_value(ctx)
    c, dn = _curated(ledger, ctx, cid, Status.PENDING)
    forfeited = c.stake * dn.reject_forfeit_bps // BPS
    ctx.pay(Space.DATANETS, slash_recipient(ledger.d), forfeited)
    ctx.pay(Space.DATANETS, c.contributor, c.stake - forfeited)
    c.status, c.curator, c.stake = Status.REJECTED, ctx.sender, 0
    ledger.put_contribution(cid, c, full=False)
    ctx.emit("Rejected", c.datanet_id, cid, ctx.sender, forfeited)
    return forfeited


def challenge(ledger: Ledger, ctx: CallContext, cid: int) -> None:
    """Anyone challenges an accepted contribution whose stake is still locked, with a bond."""
    c = ledger.get_contribution(cid)
    if c is None:
        raise RuleError(f"unknown contribution {cid}")
    if c.status != Status.ACCEPTED:
        raise RuleError(f"contribution {cid} is {c.status.name.lower()}, not accepted")
    if c.stake == 0 and c.curator_bond == 0:
        raise RuleError("stake already released: the challenge period is over")
    dn = _require_datanet(ledger, c.datanet_id)
    if ctx.value < max(dn.challenge_bond, 1):
        raise RuleError(f"challenge bond must be at least {max(dn.challenge_bond, 1)}")
    if ctx.sender == c.contributor:
        raise RuleError("a contributor cannot challenge their own contribution")
    c.status, c.challenger, c.challenge_bond = Status.CHALLENGED, ctx.sender, ctx.value
    ledger.put_contribution(cid, c, full=False)
    ctx.emit("Challenged", cid, ctx.sender, ctx.value)


def resolve_challenge(ledger: Ledger, ctx: CallContext, cid: int, upheld: bool) -> int:
    """A curator decides a challenge; not the challenger, and the curator who accepted the
    contribution (whose bond is at stake) only to uphold it.

    Upheld: the challenger gets their bond back plus the contributor's stake; the accepting
    curator's bond goes to the treasury; the contribution is slashed. Dismissed: the
    challenger's bond goes to the contributor and the contribution is accepted again.
    Returns the amount slashed (upheld) or forfeited (dismissed)."""
    _require_no_value(ctx)
    c, _dn = _curated(ledger, ctx, cid, Status.CHALLENGED)
    if ctx.sender == c.challenger:
        raise RuleError("the challenger cannot resolve the challenge")
    if ctx.sender == c.curator and not upheld:
        raise RuleError("the accepting curator may only uphold a challenge")
    if upheld:
        moved = c.stake + c.curator_bond
        ctx.pay(Space.DATANETS, c.challenger, c.challenge_bond + c.stake)
        ctx.pay(Space.DATANETS, slash_recipient(ledger.d), c.curator_bond)
        c.status, c.stake, c.curator_bond = Status.SLASHED, 0, 0
    else:
        moved = c.challenge_bond
        ctx.pay(Space.DATANETS, c.contributor, c.challenge_bond)
        c.status = Status.ACCEPTED
    c.challenger, c.challenge_bond = ZERO_ADDRESS, 0
    ledger.put_contribution(cid, c, full=False)
    ctx.emit("ChallengeResolved", cid, upheld, moved)
    return moved


def release(ledger: Ledger, ctx: CallContext, cid: int) -> None:
    """After the challenge period, anyone returns the stake to the contributor and the bond
    to the accepting curator."""
    _require_no_value(ctx)
    c = ledger.get_contribution(cid)
    if c is None:
        raise RuleError(f"unknown contribution {cid}")
    if c.status != Status.ACCEPTED or (c.stake == 0 and c.curator_bond == 0):
        raise RuleError(f"contribution {cid} has nothing to release")
    if ctx.block_number < c.accepted_at + challenge_period(ledger.d):
        raise RuleError("challenge period not over")
    ctx.pay(Space.DATANETS, c.contributor, c.stake)
    ctx.pay(Space.DATANETS, c.curator, c.curator_bond)
    ctx.emit("StakeReleased", cid, c.contributor, c.stake)
    c.stake, c.curator_bond = 0, 0
    ledger.put_contribution(cid, c, full=False)


def create_version(ledger: Ledger, ctx: CallContext, datanet_id: int) -> int:
    """Snapshot the accepted log: version n holds its first `accepted_count` entries, named
    by the Merkle root over (contribution id, content hash). Owner or curators."""
    _require_no_value(ctx)
    dn = _require_datanet(ledger, datanet_id)
    if not _can_curate(ledger, datanet_id, dn, ctx.sender):
        raise RuleError("caller is not a curator of this datanet")
    root = merkle.root_from_branch(lambda h: ledger.branch_node(datanet_id, h),
                                   dn.accepted_count)
    dn.version_count += 1
    ledger.put_version(datanet_id, dn.version_count, Version(dn.accepted_count, root,
                                                             ctx.block_number))
    ledger.put_datanet(datanet_id, dn, strings=False)
    ctx.emit("VersionCreated", datanet_id, dn.version_count, dn.accepted_count, root)
    return dn.version_count
