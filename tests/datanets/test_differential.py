"""Differential test: the EVM precompiles do exactly what the pure rules do.

The same random call sequence runs on the in-memory rules (`harness.Sim`) and as signed
transactions on a real py-evm chain; after every call both agree on success or the revert
reason, on the events, on every storage word the rules wrote and on the OPEN each
precompile account holds.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_hash.auto import keccak
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from datanets import datanet_rules as dr
from datanets import model_rules as mr
from datanets import settlement_rules as sr
from datanets.abc import SPACE_ADDRESSES, RuleError, Space
from datanets.receipts import abi_tuple, sign_receipt
from datanets.types import Receipt
from evm_bridge.execution import revert_reason
from evm_bridge.precompiles.abi import DATANETS, MODELS, SETTLEMENT, Interface
from tests.datanets.evm_harness import PARAMS, EvmChain
from tests.datanets.harness import Sim

pytestmark = pytest.mark.slow

E = 10**18
IFACE: dict[Space, Interface] = {Space.DATANETS: DATANETS, Space.MODELS: MODELS,
                                 Space.SETTLEMENT: SETTLEMENT}


def hexaddr(b: bytes) -> str:
    return "0x" + b.hex()


class Pair:
    def __init__(self) -> None:
        self.chain = EvmChain(accounts=6)
        self.sim = Sim(PARAMS, {a: 10**22 for a in self.chain.addresses}, self.chain.chain_id)
        self.people = self.chain.addresses

    def both(self, who: int, space: Space, rule: Any, rule_args: tuple[Any, ...], fn: str,
             abi_args: tuple[Any, ...], value: int = 0) -> Any:
        sim, chain = self.sim, self.chain
        sim.block_number = chain.ledger.head.block_number + 1
        events_before = len(sim.events)
        try:
            result, sim_error = sim.call(space, self.people[who], rule, *rule_args,
                                         value=value), None
        except RuleError as exc:
            result, sim_error = None, str(exc)
        receipt, comp = chain.transact(who, IFACE[space], SPACE_ADDRESSES[space], fn,
                                       *abi_args, value=value)
        if sim_error is None:
            assert comp.is_success, revert_reason(comp.output) or comp.error
            names = [e.name for e in sim.events[events_before:]]
            topics = [log.topics[0] for log in receipt.logs]
            iface = IFACE[space]
            assert topics == [iface.event(n).topic0 for n in names]
        else:
            # The adapter may name the function before the rule's reason (value checks).
            assert comp.is_error and revert_reason(comp.output).endswith(sim_error)
        state = chain.ledger.state_at()
        for s in Space:
            address = SPACE_ADDRESSES[s]
            assert state.get_balance(address) == sim.account[s]
            for slot, word in sim.stores[s].words.items():
                assert state.get_storage(address, slot) == word
        return result


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking chains is slow
@given(st.data())
def test_precompiles_match_the_rules(data: st.DataObject) -> None:
    p = Pair()
    people = p.people
    p.both(0, Space.DATANETS, dr.create_datanet,
           ("d", "u", [people[1]], E, E // 10, 3000, E // 20, E // 5),
           "createDatanet", ("d", "u", [hexaddr(people[1])], E, E // 10, 3000, E // 20, E // 5))
    cids: list[int] = [1, 2, 3]
    for i in range(3):
        p.both(2 + i, Space.DATANETS, dr.contribute, (1, keccak(bytes([i])), 10 + i, ""),
               "contribute", (1, keccak(bytes([i])), 10 + i, ""), value=E + E // 10)
    p.both(1, Space.SETTLEMENT, sr.deposit, (), "deposit", (), value=5 * E)
    p.both(1, Space.SETTLEMENT, sr.authorize, (people[5], True), "authorize",
           (hexaddr(people[5]), True))
    for cid in (1, 2):
        p.both(1, Space.DATANETS, dr.accept, (cid,), "accept", (cid,), value=E // 20)
    p.both(0, Space.DATANETS, dr.create_version, (1,), "createVersion", (1,))
    p.both(3, Space.MODELS, mr.register_model, ("base", keccak(b"a"), [(1, 1)], 1000, 2500),
           "registerModel", ("base", keccak(b"a"), [1], [1], 1000, 2500))
    nonce = 0
    for _ in range(data.draw(st.integers(4, 12), label="steps")):
        op = data.draw(st.sampled_from(["accept", "reject", "challenge", "resolve", "release",
                                        "version", "model", "settle", "withdraw", "value"]))
        who = data.draw(st.sampled_from([0, 1, 0, 1, 2, 3, 4, 5]))  # curators more often
        cid = data.draw(st.sampled_from(cids))
        if op == "accept":
            p.both(who, Space.DATANETS, dr.accept, (cid,), "accept", (cid,), value=E // 20)
        elif op == "reject":
            p.both(who, Space.DATANETS, dr.reject, (cid,), "reject", (cid,))
        elif op == "challenge":
            p.both(who, Space.DATANETS, dr.challenge, (cid,), "challenge", (cid,), value=E // 4)
        elif op == "resolve":
            upheld = data.draw(st.booleans())
            p.both(who, Space.DATANETS, dr.resolve_challenge, (cid, upheld), "resolveChallenge",
                   (cid, upheld))
        elif op == "release":
            p.both(who, Space.DATANETS, dr.release, (cid,), "releaseStake", (cid,))
        elif op == "version":
            p.both(who, Space.DATANETS, dr.create_version, (1,), "createVersion", (1,))
        elif op == "model":
            version = data.draw(st.integers(1, 2))
            p.both(who, Space.MODELS, mr.register_model,
                   ("base", keccak(b"a"), [(1, version)], 1000, 2500), "registerModel",
                   ("base", keccak(b"a"), [1], [version], 1000, 2500))
        elif op == "settle":
            pool = cids if data.draw(st.integers(0, 9)) == 0 else [1, 2]
            chosen = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2,
                                        unique=True))
            weights = (10_000,) if len(chosen) == 1 else (6000, 4000)
            receipts = []
            for _ in range(data.draw(st.integers(1, 2))):
                receipts.append(sign_receipt(Receipt(
                    data.draw(st.sampled_from([1] * 9 + [2])), people[1], people[5], 50, 50, 10**15,
                    nonce if data.draw(st.integers(0, 9)) else max(0, nonce - 1),
                    tuple(chosen), weights), p.chain.keys[1], p.chain.chain_id))
                nonce += 1
            p.both(5, Space.SETTLEMENT, sr.settle, (receipts,), "settle",
                   ([abi_tuple(r) for r in receipts],))
        elif op == "withdraw":
            who = data.draw(st.sampled_from([2, 3, 4, 5]))  # contributors and the model owner
            p.both(who, Space.SETTLEMENT, sr.withdraw_earnings, (), "withdrawEarnings", ())
        else:  # value sent to a non-payable function
            p.both(who, Space.DATANETS, dr.create_version, (1,), "createVersion", (1,), value=1)
