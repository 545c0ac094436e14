"""Property tests: no OPEN is created or lost by any sequence of calls, and a receipt never
settles twice."""

from __future__ import annotations

from eth_hash.auto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datanets import datanet_rules as dr
from datanets import model_rules as mr
from datanets import settlement_rules as sr
from datanets.abc import RuleError, Space
from datanets.ledger import CONTRIBUTION_COUNT, addr_int, slot_of
from datanets.receipts import sign_receipt
from datanets.types import Receipt
from tests.datanets.harness import CHAIN_ID, Sim, key_and_address

E = 10**18
KEYS = [key_and_address(i) for i in range(20, 26)]
PEOPLE = [k[1] for k in KEYS]
OWNER = PEOPLE[0]
WORKER = PEOPLE[5]
TREASURY = b"\x99" * 20

OPS = ["contribute", "accept", "reject", "challenge", "resolve", "release", "version",
       "model", "deposit", "settle", "withdraw", "unescrow", "unlock"]


def locked_in_datanets(sim: Sim) -> int:
    total = 0
    for cid in range(1, sim.stores[Space.DATANETS].load(CONTRIBUTION_COUNT) + 1):
        c = sim.ledger.get_contribution(cid)
        assert c is not None
        total += c.stake + c.curator_bond + c.challenge_bond
    return total


def held_in_settlement(sim: Sim) -> int:
    ledger = sim.ledger
    return sum(ledger.escrow(p) + ledger.earnings(p) for p in [*PEOPLE, TREASURY])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_conservation_and_single_settlement(data: st.DataObject) -> None:
    sim = Sim({"datanets.protocol_fee_bps": 700, "datanets.protocol_treasury": "0x" + TREASURY.hex(),
               "datanets.challenge_period_blocks": 3,
               "datanets.escrow_unlock_blocks": data.draw(st.sampled_from([0, 2])),
               "datanets.slash_to": data.draw(st.sampled_from(["treasury", "burn"]))},
              {p: 50 * E for p in PEOPLE})
    start = sim.total()
    dn = sim.call(Space.DATANETS, OWNER, dr.create_datanet, "d", "", [PEOPLE[1]],
                  E, E // 100, 2500, E // 10, E // 5)
    sim.call(Space.SETTLEMENT, PEOPLE[4], sr.authorize, WORKER, True)
    sim.call(Space.SETTLEMENT, PEOPLE[3], sr.authorize, WORKER, True)
    cids = [sim.call(Space.DATANETS, PEOPLE[2 + i], dr.contribute, dn, keccak(bytes([100 + i])),
                     100, "", value=E + E // 100) for i in range(3)]
    for cid in cids[:2]:
        sim.call(Space.DATANETS, PEOPLE[1], dr.accept, cid, value=E // 10)
    version = sim.call(Space.DATANETS, OWNER, dr.create_version, dn)
    models = [sim.call(Space.MODELS, PEOPLE[1], mr.register_model, "base", keccak(b"a"),
                       [(dn, version)], 1000, 3000)]
    for payer in (PEOPLE[3], PEOPLE[4]):
        sim.call(Space.SETTLEMENT, payer, sr.deposit, value=2 * E)
    settled: set[tuple[bytes, int]] = set()
    for _ in range(data.draw(st.integers(5, 30), label="steps")):
        op = data.draw(st.sampled_from(OPS))
        who = data.draw(st.sampled_from(PEOPLE))
        cid = data.draw(st.sampled_from(cids)) if cids else 1
        try:
            if op == "contribute":
                cids.append(sim.call(Space.DATANETS, who, dr.contribute, dn,
                                     keccak(len(cids).to_bytes(2, "big")), 100, "",
                                     value=E + E // 100))
            elif op == "accept":
                sim.call(Space.DATANETS, who, dr.accept, cid, value=E // 10)
            elif op == "reject":
                sim.call(Space.DATANETS, who, dr.reject, cid)
            elif op == "challenge":
                sim.call(Space.DATANETS, who, dr.challenge, cid,
                         value=data.draw(st.sampled_from([E // 5, E // 2])))
            elif op == "resolve":
                sim.call(Space.DATANETS, who, dr.resolve_challenge, cid, data.draw(st.booleans()))
            elif op == "release":
                sim.block_number += data.draw(st.integers(0, 4))
                sim.call(Space.DATANETS, who, dr.release, cid)
            elif op == "version":
                sim.call(Space.DATANETS, who, dr.create_version, dn)
            elif op == "model":
                latest = sim.ledger.get_datanet(dn).version_count  # type: ignore[union-attr]
                models.append(sim.call(Space.MODELS, who, mr.register_model, "base",
                                       keccak(b"a"), [(dn, latest)], 1000,
                                       data.draw(st.integers(0, 10_000))))
            elif op == "deposit":
                sim.call(Space.SETTLEMENT, who, sr.deposit,
                         value=data.draw(st.integers(0, 3 * E)))
            elif op == "settle":
                batch = []
                for _ in range(data.draw(st.integers(1, 3))):
                    payer_index = data.draw(st.sampled_from([3, 4]))
                    pool = cids if data.draw(st.integers(0, 4)) == 0 else cids[:2]
                    n = data.draw(st.integers(1, len(pool)))
                    chosen = data.draw(st.lists(st.sampled_from(pool), min_size=n,
                                                max_size=n, unique=True))
                    weights = [10_000 // len(chosen)] * len(chosen)
                    weights[0] += 10_000 - sum(weights)
                    r = Receipt(data.draw(st.sampled_from(models)),
                                PEOPLE[payer_index], WORKER, 10, 10,
                                data.draw(st.integers(0, E // 2)), data.draw(st.integers(0, 600)),
                                tuple(chosen), tuple(weights))
                    batch.append(sign_receipt(r, KEYS[payer_index][0], CHAIN_ID))
                try:
                    sim.call(Space.SETTLEMENT, WORKER, sr.settle, batch)
                except RuleError:
                    pass
                else:
                    keys = [(r.payer, r.nonce) for r in batch]
                    assert len(set(keys)) == len(keys)
                    assert not settled & set(keys), "a receipt settled twice"
                    settled.update(keys)
                for payer, nonce in settled:
                    assert sim.ledger.receipt_used(payer, nonce)
            elif op == "withdraw":
                sim.call(Space.SETTLEMENT, who, sr.withdraw_earnings)
            elif op == "unlock":
                sim.call(Space.SETTLEMENT, who, sr.request_withdrawal,
                         data.draw(st.integers(1, 2 * E)))
            elif op == "unescrow":
                sim.call(Space.SETTLEMENT, who, sr.withdraw_escrow,
                         data.draw(st.integers(1, 2 * E)))
        except RuleError:
            pass
        except ValueError as exc:  # the harness refuses calls beyond the sender's balance
            assert "insufficient funds" in str(exc)
        assert sim.total() == start, "OPEN created or lost"
        assert sim.account[Space.DATANETS] == locked_in_datanets(sim)
        assert sim.account[Space.SETTLEMENT] == held_in_settlement(sim)
        assert sim.account[Space.MODELS] == 0
    for payer, nonce in settled:
        assert sim.stores[Space.SETTLEMENT].load(
            slot_of(b"nonces", addr_int(payer), nonce >> 8)) >> (nonce & 0xFF) & 1
