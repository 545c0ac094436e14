"""The datanets precompile (0x...0900): datanets, contributions, curation, versions."""

from __future__ import annotations

from typing import Any

from eth.abc import ComputationAPI

from datanets import datanet_rules as rules
from datanets import merkle
from datanets.abc import RuleError, Space
from datanets.ledger import CONTRIBUTION_COUNT, DATANET_COUNT, Ledger
from datanets.types import CallContext, Contribution, Datanet
from evm_bridge.precompiles import gas
from evm_bridge.precompiles.abi import DATANETS
from evm_bridge.precompiles.dispatch import Handler, run_call

MAX_PAGE = 500  # contribution ids per datanetContributions call


def _addr(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _datanet(ledger: Ledger, datanet_id: int) -> Datanet:
    dn = ledger.get_datanet(datanet_id)
    if dn is None:
        raise RuleError(f"unknown datanet {datanet_id}")
    return dn


def _contribution(ledger: Ledger, cid: int) -> Contribution:
    c = ledger.get_contribution(cid)
    if c is None:
        raise RuleError(f"unknown contribution {cid}")
    return c


def _get_datanet(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    dn = _datanet(ledger, a[0])
    return (dn.owner, dn.name, dn.metadata_uri, dn.stake, dn.fee, dn.contribution_count,
            dn.accepted_count, dn.version_count)


def _get_rules(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    dn = _datanet(ledger, a[0])
    return dn.reject_forfeit_bps, dn.curator_bond, dn.challenge_bond


def _get_contribution(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    c = _contribution(ledger, a[0])
    return (c.datanet_id, c.contributor, c.content_hash, c.size, int(c.status), c.stake,
            c.curator, c.accept_index)


def _contributions(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    dn = _datanet(ledger, a[0])
    start, limit = a[1], min(a[2], MAX_PAGE)
    end = min(dn.contribution_count, start + limit)
    return ([ledger.datanet_contribution(a[0], i) for i in range(start, end)],)


def _get_version(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    v = ledger.get_version(a[0], a[1])
    if v is None:
        raise RuleError(f"unknown version {a[1]} of datanet {a[0]}")
    return v.accepted_count, v.root, v.block_number


def _version_contains(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    v = ledger.get_version(a[0], a[1])
    core = ledger.contribution_core(a[2])
    if v is None or core is None:
        return (False,)
    datanet_id, status, index, _ = core
    accepted = status in (rules.Status.ACCEPTED, rules.Status.CHALLENGED, rules.Status.SLASHED)
    return (datanet_id == a[0] and accepted and index < v.accepted_count,)


HANDLERS: dict[str, Handler] = {
    "createDatanet": lambda g, c, a: rules.create_datanet(
        g, c, a[0], a[1], [_addr(x) for x in a[2]], a[3], a[4], a[5], a[6], a[7]),
    "updateDatanet": lambda g, c, a: rules.update_datanet(g, c, *a),
    "addCurator": lambda g, c, a: rules.set_curator(g, c, a[0], _addr(a[1]), True),
    "removeCurator": lambda g, c, a: rules.set_curator(g, c, a[0], _addr(a[1]), False),
    "contribute": lambda g, c, a: rules.contribute(g, c, *a),
    "accept": lambda g, c, a: rules.accept(g, c, a[0]),
    "reject": lambda g, c, a: rules.reject(g, c, a[0]),
    "challenge": lambda g, c, a: rules.challenge(g, c, a[0]),
    "resolveChallenge": lambda g, c, a: rules.resolve_challenge(g, c, a[0], a[1]),
    "releaseStake": lambda g, c, a: rules.release(g, c, a[0]),
    "createVersion": lambda g, c, a: rules.create_version(g, c, a[0]),
    "datanetCount": lambda g, c, a: g.d.load(DATANET_COUNT),
    "contributionCount": lambda g, c, a: g.d.load(CONTRIBUTION_COUNT),
    "getDatanet": _get_datanet,
    "getDatanetRules": _get_rules,
    "isCurator": lambda g, c, a: g.is_curator(a[0], _addr(a[1])),
    "getContribution": _get_contribution,
    "getContributionMetadataUri": lambda g, c, a: _contribution(g, a[0]).metadata_uri,
    "datanetContributions": _contributions,
    "getVersion": _get_version,
    "versionContains": _version_contains,
}


def _extra_gas(_ledger: Ledger, name: str, _args: tuple[Any, ...]) -> int:
    # An acceptance inserts a leaf into the datanet's depth-32 incremental Merkle tree and a
    # version computes its root: at most DEPTH node hashes each (their branch reads and
    # writes are metered as storage).
    if name in ("accept", "createVersion"):
        return gas.KECCAK_64 * (merkle.DEPTH + 1)
    return 0


def datanets_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Entry point registered at 0x...0900."""
    # GAS: base, storage, logs and payouts are metered by run_call; acceptances and versions
    # also pay their Merkle hashing (_extra_gas).
    # OPERATION
    return run_call(computation, Space.DATANETS, DATANETS, HANDLERS, _extra_gas)
