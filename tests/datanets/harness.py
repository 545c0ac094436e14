"""An in-memory run of the pure rules: word stores, external balances, value in and out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import coincurve
from eth_hash.auto import keccak

from datanets.abc import DictWordStore, Space
from datanets.ledger import Ledger
from datanets.params import genesis_words
from datanets.types import BURN, CallContext

CHAIN_ID = 1_337_000


def key_and_address(seed: int) -> tuple[bytes, bytes]:
    private = keccak(b"datanets-test-key" + seed.to_bytes(4, "big"))
    public = coincurve.PrivateKey(private).public_key.format(compressed=False)[1:]
    return private, keccak(public)[-20:]


class Sim:
    """Every call either applies whole or changes nothing, as an EVM transaction would."""

    def __init__(self, params: dict[str, Any] | None = None,
                 balances: dict[bytes, int] | None = None, chain_id: int = CHAIN_ID) -> None:
        self.chain_id = chain_id
        self.stores = {space: DictWordStore() for space in Space}
        for space, words in genesis_words(params or {}).items():
            for slot, value in words.items():
                self.stores[space].store(slot, value)
        self.balances: dict[bytes, int] = dict(balances or {})
        self.account: dict[Space, int] = {space: 0 for space in Space}
        self.block_number = 1
        self.events: list[Any] = []
        self.burned = 0

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.stores)

    def total(self) -> int:
        return sum(self.balances.values()) + sum(self.account.values()) + self.burned

    def call(self, space: Space, sender: bytes, fn: Callable[..., Any], *args: Any,
             value: int = 0) -> Any:
        if self.balances.get(sender, 0) < value:
            raise ValueError("insufficient funds")
        snapshot = {s: dict(st.words) for s, st in self.stores.items()}
        ctx = CallContext(sender, value, self.block_number, self.chain_id)
        try:
            result = fn(self.ledger, ctx, *args)
        except Exception:
            for s, words in snapshot.items():
                self.stores[s].words = words
            raise
        self.balances[sender] = self.balances.get(sender, 0) - value
        self.account[space] += value
        for t in ctx.transfers:
            assert self.account[t.source] >= t.amount, "paid out more than the account holds"
            self.account[t.source] -= t.amount
            if t.to == BURN:
                self.burned += t.amount
            else:
                self.balances[t.to] = self.balances.get(t.to, 0) + t.amount
        self.events.extend(ctx.events)
        return result
