"""The pure rules end to end in memory: datanets, registry, escrow and settlement."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak

from datanets import datanet_rules as dr
from datanets import model_rules as mr
from datanets import settlement_rules as sr
from datanets.abc import RuleError, Space
from datanets.merkle import leaf, merkle_root
from datanets.receipts import recover_signer, sign_receipt, signing_digest, typed_data
from datanets.types import Receipt, Status
from tests.datanets.harness import CHAIN_ID, Sim, key_and_address

E = 10**18
OWNER, CURATOR, C1, C2, C3, PAYER, WORKER, CHALLENGER, MOWNER = (
    key_and_address(i) for i in range(1, 10)
)
TREASURY = b"\x77" * 20
D, M, S = Space.DATANETS, Space.MODELS, Space.SETTLEMENT


def addr(k: tuple[bytes, bytes]) -> bytes:
    return k[1]


def fresh() -> Sim:
    balances = {k[1]: 100 * E for k in (OWNER, CURATOR, C1, C2, C3, PAYER, WORKER, CHALLENGER,
                                       MOWNER)}
    return Sim({"datanets.protocol_fee_bps": 1000, "datanets.protocol_treasury": "0x" + TREASURY.hex(),
                "datanets.challenge_period_blocks": 10}, balances)


def setup_world(sim: Sim) -> dict[str, int]:
    """A datanet with three contributions (two accepted, one rejected), a version, a model
    on it, an escrow of 10 OPEN and the worker authorised."""
    dn = sim.call(D, addr(OWNER), dr.create_datanet, "medical", "ipfs://m", [addr(CURATOR)],
                  E, E // 10, 5000, 0, E // 2)
    cids = [sim.call(D, addr(c), dr.contribute, dn, keccak(bytes([i])), 1000, f"u{i}",
                     value=E + E // 10) for i, c in enumerate((C1, C2, C3))]
    sim.call(D, addr(CURATOR), dr.accept, cids[0])
    sim.call(D, addr(CURATOR), dr.accept, cids[1])
    sim.call(D, addr(CURATOR), dr.reject, cids[2])
    version = sim.call(D, addr(OWNER), dr.create_version, dn)
    model = sim.call(M, addr(MOWNER), mr.register_model, "smollm2-135m", keccak(b"adapter"),
                     [(dn, version)], 10**15, 2000)
    sim.call(S, addr(PAYER), sr.deposit, value=10 * E)
    sim.call(S, addr(PAYER), sr.authorize, addr(WORKER), True)
    return {"datanet": dn, "c1": cids[0], "c2": cids[1], "c3": cids[2], "version": version,
            "model": model}


def receipt(w: dict[str, int], nonce: int, fee: int = 10**16,
            cids: tuple[int, ...] | None = None, weights: tuple[int, ...] = (7000, 3000),
            payer_key: bytes = PAYER[0], model: int | None = None) -> Receipt:
    r = Receipt(model or w["model"], addr(PAYER), addr(WORKER), 600, 400, fee, nonce,
                cids or (w["c1"], w["c2"]), weights)
    return sign_receipt(r, payer_key, CHAIN_ID)


def test_contribution_flow_moves_stakes_and_fees() -> None:
    sim = fresh()
    total = sim.total()
    w = setup_world(sim)
    # fees (0.1 each) to the owner; c3's stake half forfeited to the treasury, half returned.
    assert sim.balances[addr(OWNER)] == 100 * E + 3 * E // 10
    assert sim.balances[addr(C3)] == 100 * E - E - E // 10 + E // 2
    assert sim.balances[TREASURY] == E // 2
    assert sim.account[D] == 2 * E  # the two accepted stakes stay locked
    ledger = sim.ledger
    assert ledger.get_contribution(w["c1"]).status == Status.ACCEPTED  # type: ignore[union-attr]
    assert ledger.get_contribution(w["c3"]).status == Status.REJECTED  # type: ignore[union-attr]
    version = ledger.get_version(w["datanet"], w["version"])
    assert version is not None and version.accepted_count == 2
    assert version.root == merkle_root([leaf(w["c1"], keccak(b"\x00")),
                                        leaf(w["c2"], keccak(b"\x01"))])
    assert sim.total() == total


def test_settlement_splits_each_fee_exactly() -> None:
    sim = fresh()
    w = setup_world(sim)
    fee = 10**16
    got = sim.call(S, addr(WORKER), sr.settle, [receipt(w, n, fee) for n in range(3)])
    assert got == 3 * fee
    ledger = sim.ledger
    protocol = fee // 10  # 10% protocol
    owner = (fee - protocol) * 2000 // 10_000
    pool = fee - protocol - owner
    assert ledger.escrow(addr(PAYER)) == 10 * E - 3 * fee
    assert ledger.earnings(TREASURY) == 3 * protocol
    assert ledger.earnings(addr(MOWNER)) == 3 * owner
    assert ledger.earnings(addr(C1)) == 3 * (pool * 7000 // 10_000)
    assert ledger.earnings(addr(C2)) == 3 * (pool * 3000 // 10_000)
    before = sim.balances[addr(C1)]
    sim.call(S, addr(C1), sr.withdraw_earnings)
    assert sim.balances[addr(C1)] == before + 3 * (pool * 7000 // 10_000)
    assert ledger.earnings(addr(C1)) == 0
    names = [e.name for e in sim.events]
    assert names.count("ReceiptSettled") == 3 and "EarningsWithdrawn" in names


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda w: [receipt(w, 1, payer_key=C1[0])], "bad signature"),
        (lambda w: [receipt(w, 1), receipt(w, 1)], "receipt 1: receipt already settled"),
        (lambda w: [receipt(w, 1, cids=(w["c1"], 999))], "unknown contribution 999"),
        (lambda w: [receipt(w, 1, cids=(w["c1"], w["c3"]))], "not in a datanet version"),
        (lambda w: [receipt(w, 1, fee=6 * E), receipt(w, 2, fee=6 * E)], "escrow exhausted"),
        (lambda w: [receipt(w, 1, weights=(5000, 4000))], "sum to 10000"),
        (lambda w: [receipt(w, 1, fee=10)], "below the model's price"),
        (lambda w: [receipt(w, 1, model=42)], "unknown model 42"),
    ],
)
def test_bad_batches_revert_whole(make, reason) -> None:  # type: ignore[no-untyped-def]
    sim = fresh()
    w = setup_world(sim)
    words = {s: dict(st.words) for s, st in sim.stores.items()}
    with pytest.raises(RuleError, match=reason):
        sim.call(S, addr(WORKER), sr.settle, make(w))
    assert {s: st.words for s, st in sim.stores.items()} == words


def test_a_receipt_never_settles_twice_across_batches() -> None:
    sim = fresh()
    w = setup_world(sim)
    sim.call(S, addr(WORKER), sr.settle, [receipt(w, 5)])
    assert sim.ledger.receipt_used(addr(PAYER), 5)
    with pytest.raises(RuleError, match="already settled"):
        sim.call(S, addr(WORKER), sr.settle, [receipt(w, 6), receipt(w, 5)])
    assert not sim.ledger.receipt_used(addr(PAYER), 6)


def test_unauthorized_worker_and_other_workers_receipt() -> None:
    sim = fresh()
    w = setup_world(sim)
    sim.call(S, addr(PAYER), sr.authorize, addr(WORKER), False)
    with pytest.raises(RuleError, match="not authorized"):
        sim.call(S, addr(WORKER), sr.settle, [receipt(w, 1)])
    with pytest.raises(RuleError, match="another worker"):
        sim.call(S, addr(C1), sr.settle, [receipt(w, 1)])


def test_contribution_accepted_after_the_version_is_not_payable() -> None:
    sim = fresh()
    w = setup_world(sim)
    late = sim.call(D, addr(C1), dr.contribute, w["datanet"], keccak(b"late"), 10, "",
                    value=E + E // 10)
    sim.call(D, addr(OWNER), dr.accept, late)  # the owner curates too
    with pytest.raises(RuleError, match="not in a datanet version"):
        sim.call(S, addr(WORKER), sr.settle, [receipt(w, 1, cids=(w["c1"], late))])


def test_challenge_upheld_slashes_contributor_and_curator() -> None:
    sim = fresh()
    sim_total = sim.total()
    w = setup_world(sim)
    sim.call(D, addr(CHALLENGER), dr.challenge, w["c1"], value=E // 2)
    with pytest.raises(RuleError, match="may only uphold"):
        sim.call(D, addr(CURATOR), dr.resolve_challenge, w["c1"], False)  # accepted it
    with pytest.raises(RuleError, match="not a curator"):
        sim.call(D, addr(CHALLENGER), dr.resolve_challenge, w["c1"], True)
    before = sim.balances[addr(CHALLENGER)]
    sim.call(D, addr(OWNER), dr.resolve_challenge, w["c1"], True)
    assert sim.balances[addr(CHALLENGER)] == before + E // 2 + E
    assert sim.ledger.get_contribution(w["c1"]).status == Status.SLASHED  # type: ignore[union-attr]
    # A slashed contribution's share of later fees goes to the protocol treasury.
    sim.call(S, addr(WORKER), sr.settle, [receipt(w, 1)])
    fee = 10**16
    pool = fee - fee // 10 - (fee - fee // 10) * 2000 // 10_000
    assert sim.ledger.earnings(addr(C1)) == 0
    assert sim.ledger.earnings(TREASURY) == fee // 10 + pool * 7000 // 10_000
    assert sim.total() == sim_total


def test_challenge_dismissed_pays_contributor_and_release_after_period() -> None:
    sim = fresh()
    w = setup_world(sim)
    with pytest.raises(RuleError, match="at least"):
        sim.call(D, addr(CHALLENGER), dr.challenge, w["c2"], value=1)
    sim.call(D, addr(CHALLENGER), dr.challenge, w["c2"], value=E)
    before = sim.balances[addr(C2)]
    sim.call(D, addr(OWNER), dr.resolve_challenge, w["c2"], False)
    assert sim.balances[addr(C2)] == before + E
    with pytest.raises(RuleError, match="challenge period not over"):
        sim.call(D, addr(C2), dr.release, w["c2"])
    sim.block_number += 10
    sim.call(D, addr(C2), dr.release, w["c2"])
    assert sim.balances[addr(C2)] == before + 2 * E
    with pytest.raises(RuleError, match="period is over"):
        sim.call(D, addr(CHALLENGER), dr.challenge, w["c2"], value=E)


def test_permissions_and_bad_input() -> None:
    sim = fresh()
    w = setup_world(sim)
    pending = sim.call(D, addr(C1), dr.contribute, w["datanet"], keccak(b"x"), 5, "",
                       value=E + E // 10)
    with pytest.raises(RuleError, match="not a curator"):
        sim.call(D, addr(C2), dr.accept, pending)
    with pytest.raises(RuleError, match="stake \\+ fee"):
        sim.call(D, addr(C1), dr.contribute, w["datanet"], keccak(b"y"), 5, "", value=E)
    with pytest.raises(RuleError, match="size"):
        sim.call(D, addr(C1), dr.contribute, w["datanet"], keccak(b"y"), 6 * 2**20, "",
                 value=E + E // 10)
    with pytest.raises(RuleError, match="unknown version"):
        sim.call(M, addr(MOWNER), mr.register_model, "b", keccak(b"a"), [(w["datanet"], 9)],
                 1, 0)
    with pytest.raises(RuleError, match="only the model owner"):
        sim.call(M, addr(C1), mr.set_price, w["model"], 1)
    sim.call(M, addr(MOWNER), mr.retire, w["model"])
    with pytest.raises(RuleError, match="retired"):
        sim.call(S, addr(WORKER), sr.settle, [receipt(w, 1)])
    sim.call(D, addr(OWNER), dr.set_curator, w["datanet"], addr(C2), True)
    sim.call(D, addr(C2), dr.accept, pending)
    with pytest.raises(RuleError, match="only the datanet owner"):
        sim.call(D, addr(C2), dr.set_curator, w["datanet"], addr(C3), True)
    with pytest.raises(RuleError, match="amount must be within"):
        sim.call(S, addr(PAYER), sr.withdraw_escrow, 11 * E)
    before = sim.balances[addr(PAYER)]
    sim.call(S, addr(PAYER), sr.withdraw_escrow, 4 * E)
    assert sim.balances[addr(PAYER)] == before + 4 * E


def test_split_fee_conserves_every_wei() -> None:
    split = sr.split_fee(999_999, 333, 1234, [(b"a", 3333), (b"b", 3333), (b"c", 3334)])
    assert split.protocol + split.owner + sum(a for _, a in split.contributors) == 999_999


def test_escrow_unlock_period_lets_workers_settle_first() -> None:
    balances = {k[1]: 100 * E for k in (OWNER, CURATOR, C1, C2, C3, PAYER, WORKER, CHALLENGER,
                                       MOWNER)}
    sim = Sim({"datanets.protocol_fee_bps": 1000, "datanets.escrow_unlock_blocks": 5}, balances)
    w = setup_world(sim)
    with pytest.raises(RuleError, match="request the withdrawal first"):
        sim.call(S, addr(PAYER), sr.withdraw_escrow, E)
    assert sim.call(S, addr(PAYER), sr.request_withdrawal, 10 * E) == sim.block_number + 5
    sim.call(S, addr(WORKER), sr.settle, [receipt(w, 1)])  # the escrow still pays meanwhile
    with pytest.raises(RuleError, match="locked until block"):
        sim.call(S, addr(PAYER), sr.withdraw_escrow, E)
    sim.block_number += 5
    with pytest.raises(RuleError, match="amount must be within"):
        sim.call(S, addr(PAYER), sr.withdraw_escrow, 10 * E)  # a receipt was paid since
    before = sim.balances[addr(PAYER)]
    sim.call(S, addr(PAYER), sr.withdraw_escrow, 4 * E)
    assert sim.balances[addr(PAYER)] == before + 4 * E
    assert sim.ledger.pending_withdrawal(addr(PAYER)) == (6 * E, sim.block_number)


def test_forfeits_and_slashes_can_be_burned() -> None:
    balances = {k[1]: 100 * E for k in (OWNER, CURATOR, C1, C2, C3, PAYER, WORKER, CHALLENGER,
                                       MOWNER)}
    sim = Sim({"datanets.protocol_treasury": "0x" + TREASURY.hex(), "datanets.slash_to": "burn"},
              balances)
    total = sim.total()
    setup_world(sim)  # rejects c3: half its stake forfeited
    assert sim.burned == E // 2 and sim.balances.get(TREASURY, 0) == 0
    assert sim.total() == total
    with pytest.raises(ValueError, match="slash_to"):
        Sim({"datanets.slash_to": "pool"})
    with pytest.raises(ValueError, match="unknown genesis parameter"):
        Sim({"datanets.protocol_fee": 5})
    with pytest.raises(ValueError, match="protocol_fee_bps"):
        Sim({"datanets.protocol_fee_bps": 10_001})


def test_receipts_are_standard_eip712_typed_data() -> None:
    """A wallet signing `typed_data()` (eth_signTypedData_v4) makes the same signature."""
    r = Receipt(3, addr(PAYER), addr(WORKER), 100, 50, 12345, 7, (1, 2, 9), (5000, 3000, 2000))
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(r, CHAIN_ID)),
                                  PAYER[0])
    assert bytes(signed.message_hash) == signing_digest(r, CHAIN_ID)
    ours = sign_receipt(r, PAYER[0], CHAIN_ID)
    assert ours.signature == bytes(signed.signature)
    assert recover_signer(ours, CHAIN_ID) == addr(PAYER)
    assert recover_signer(ours, CHAIN_ID + 1) != addr(PAYER)  # bound to the chain
    # A malleable high-s copy of the same signature is refused.
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(ours.signature[32:64], "big")
    flipped = ours.signature[:32] + (n - s).to_bytes(32, "big") + bytes([ours.signature[64] ^ 1])
    assert recover_signer(dataclasses.replace(ours, signature=flipped), CHAIN_ID) is None
