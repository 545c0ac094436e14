"""Typed records laid out over the word stores of the three precompile accounts.

Every record sits at a keccak-derived base slot (`keccak(tag, key...)`), its fields at
consecutive slots from there; strings keep their length at their slot and their bytes from
`keccak(slot)`, as Solidity does. Slots below 16 hold counters and genesis parameters
(`datanets.params`). Packing small fields into one word keeps the gas of a write down.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_hash.auto import keccak

from datanets.abc import Space, WordStoreAPI
from datanets.types import Contribution, Datanet, Model, Status, Version

ADDRESS_MASK = (1 << 160) - 1
U64 = (1 << 64) - 1
U128 = (1 << 128) - 1

# Counter slots (parameter slots are in datanets.params).
DATANET_COUNT = 0  # in Space.DATANETS
CONTRIBUTION_COUNT = 1  # in Space.DATANETS
MODEL_COUNT = 0  # in Space.MODELS


def slot_of(tag: bytes, *keys: int) -> int:
    """The base slot of a record: keccak of a tag and its 32-byte keys."""
    return int.from_bytes(keccak(tag + b"".join(k.to_bytes(32, "big") for k in keys)), "big")


def addr_int(address: bytes) -> int:
    return int.from_bytes(address, "big")


def int_addr(value: int) -> bytes:
    return (value & ADDRESS_MASK).to_bytes(20, "big")


class Ledger:
    """Typed get/put of every record over one word store per space."""

    def __init__(self, stores: Mapping[Space, WordStoreAPI]) -> None:
        self.d = stores[Space.DATANETS]
        self.m = stores[Space.MODELS]
        self.s = stores[Space.SETTLEMENT]

    # -- strings -- #
    @staticmethod
    def _get_str(store: WordStoreAPI, slot: int) -> str:
        length = store.load(slot)
        if not length:
            return ""
        data_slot = int.from_bytes(keccak(slot.to_bytes(32, "big")), "big")
        words = (length + 31) // 32
        raw = b"".join(store.load(data_slot + i).to_bytes(32, "big") for i in range(words))
        return raw[:length].decode("utf-8", errors="replace")

    @staticmethod
    def _put_str(store: WordStoreAPI, slot: int, text: str) -> None:
        raw = text.encode("utf-8")
        old_words = (store.load(slot) + 31) // 32
        store.store(slot, len(raw))
        data_slot = int.from_bytes(keccak(slot.to_bytes(32, "big")), "big")
        padded = raw + b"\x00" * (-len(raw) % 32)
        new_words = len(padded) // 32
        for i in range(new_words):
            store.store(data_slot + i, int.from_bytes(padded[32 * i : 32 * i + 32], "big"))
        for i in range(new_words, old_words):
            store.store(data_slot + i, 0)

    # -- counters -- #
    def next_id(self, store: WordStoreAPI, slot: int) -> int:
        """Ids start at 1, so 0 always means 'none'."""
        value = store.load(slot) + 1
        store.store(slot, value)
        return value

    # -- datanets -- #
    def get_datanet(self, datanet_id: int) -> Datanet | None:
        base = slot_of(b"datanet", datanet_id)
        w0 = self.d.load(base)
        if not w0:
            return None
        counts = self.d.load(base + 6)
        return Datanet(
            owner=int_addr(w0),
            reject_forfeit_bps=(w0 >> 160) & 0xFFFF,
            name=self._get_str(self.d, base + 1),
            metadata_uri=self._get_str(self.d, base + 2),
            stake=self.d.load(base + 3),
            fee=self.d.load(base + 4),
            curator_bond=self.d.load(base + 5) & U128,
            challenge_bond=self.d.load(base + 5) >> 128,
            contribution_count=counts & U64,
            accepted_count=(counts >> 64) & U64,
            version_count=(counts >> 128) & U64,
        )

    def put_datanet(self, datanet_id: int, dn: Datanet, *, strings: bool = True) -> None:
        base = slot_of(b"datanet", datanet_id)
        self.d.store(base, addr_int(dn.owner) | (dn.reject_forfeit_bps << 160) | (1 << 176))
        if strings:
            self._put_str(self.d, base + 1, dn.name)
            self._put_str(self.d, base + 2, dn.metadata_uri)
        self.d.store(base + 3, dn.stake)
        self.d.store(base + 4, dn.fee)
        self.d.store(base + 5, dn.curator_bond | (dn.challenge_bond << 128))
        self.d.store(
            base + 6,
            dn.contribution_count | (dn.accepted_count << 64) | (dn.version_count << 128),
        )

    def is_curator(self, datanet_id: int, who: bytes) -> bool:
        return bool(self.d.load(slot_of(b"curator", datanet_id, addr_int(who))))

    def set_curator(self, datanet_id: int, who: bytes, on: bool) -> None:
        self.d.store(slot_of(b"curator", datanet_id, addr_int(who)), int(on))

    def datanet_contribution(self, datanet_id: int, index: int) -> int:
        return self.d.load(slot_of(b"dn_contribution", datanet_id, index))

    def set_datanet_contribution(self, datanet_id: int, index: int, cid: int) -> None:
        self.d.store(slot_of(b"dn_contribution", datanet_id, index), cid)

    def accepted_entry(self, datanet_id: int, index: int) -> int:
        return self.d.load(slot_of(b"accepted", datanet_id, index))

    def set_accepted_entry(self, datanet_id: int, index: int, cid: int) -> None:
        self.d.store(slot_of(b"accepted", datanet_id, index), cid)

    def branch_node(self, datanet_id: int, height: int) -> bytes:
        """A node of the datanet's incremental Merkle branch (datanets.merkle)."""
        return self.d.load(slot_of(b"branch", datanet_id) + height).to_bytes(32, "big")

    def set_branch_node(self, datanet_id: int, height: int, node: bytes) -> None:
        self.d.store(slot_of(b"branch", datanet_id) + height, int.from_bytes(node, "big"))

    def get_version(self, datanet_id: int, version: int) -> Version | None:
        base = slot_of(b"version", datanet_id, version)
        w0 = self.d.load(base)
        if not w0:
            return None
        return Version(
            accepted_count=w0 & U128,
            block_number=(w0 >> 128) & U64,
            root=self.d.load(base + 1).to_bytes(32, "big"),
        )

    def put_version(self, datanet_id: int, version: int, v: Version) -> None:
        base = slot_of(b"version", datanet_id, version)
        # Bit 192 marks existence, so an empty version (no accepted entries) still reads back.
        self.d.store(base, v.accepted_count | (v.block_number << 128) | (1 << 192))
        self.d.store(base + 1, int.from_bytes(v.root, "big"))

    # -- contributions -- #
    def get_contribution(self, cid: int) -> Contribution | None:
        base = slot_of(b"contribution", cid)
        w0 = self.d.load(base)
        if not w0:
            return None
        w4 = self.d.load(base + 4)
        return Contribution(
            contributor=int_addr(w0),
            status=Status((w0 >> 160) & 0xFF),
            size=(w0 >> 168) & U64,
            datanet_id=self.d.load(base + 1),
            content_hash=self.d.load(base + 2).to_bytes(32, "big"),
            stake=self.d.load(base + 3),
            curator=int_addr(w4),
            accepted_at=(w4 >> 160) & U64,
            curator_bond=self.d.load(base + 5),
            accept_index=self.d.load(base + 6),
            challenger=int_addr(self.d.load(base + 7)),
            challenge_bond=self.d.load(base + 8),
            metadata_uri=self._get_str(self.d, base + 9),
        )

    def contribution_core(self, cid: int) -> tuple[int, Status, int, bytes] | None:
        """(datanet id, status, accept index, contributor): what settlement needs, 3 reads."""
        base = slot_of(b"contribution", cid)
        w0 = self.d.load(base)
        if not w0:
            return None
        status = Status((w0 >> 160) & 0xFF)
        return self.d.load(base + 1), status, self.d.load(base + 6), int_addr(w0)

    def put_contribution(self, cid: int, c: Contribution, *, full: bool = True) -> None:
        base = slot_of(b"contribution", cid)
        self.d.store(base, addr_int(c.contributor) | (int(c.status) << 160) | (c.size << 168))
        self.d.store(base + 3, c.stake)
        self.d.store(base + 4, addr_int(c.curator) | (c.accepted_at << 160))
        self.d.store(base + 5, c.curator_bond)
        self.d.store(base + 6, c.accept_index)
        self.d.store(base + 7, addr_int(c.challenger))
        self.d.store(base + 8, c.challenge_bond)
        if full:
            self.d.store(base + 1, c.datanet_id)
            self.d.store(base + 2, int.from_bytes(c.content_hash, "big"))
            self._put_str(self.d, base + 9, c.metadata_uri)

    # -- models -- #
    def get_model(self, model_id: int) -> Model | None:
        base = slot_of(b"model", model_id)
        w0 = self.m.load(base)
        if not w0:
            return None
        n = self.m.load(base + 4)
        list_slot = slot_of(b"model_versions", model_id)
        pairs = [self.m.load(list_slot + i) for i in range(n)]
        return Model(
            owner=int_addr(w0),
            owner_share_bps=(w0 >> 160) & 0xFFFF,
            retired=bool((w0 >> 176) & 1),
            base_model=self._get_str(self.m, base + 1),
            adapter_hash=self.m.load(base + 2).to_bytes(32, "big"),
            price_per_1k=self.m.load(base + 3),
            trained_on=[(p >> 128, p & U128) for p in pairs],
        )

    def put_model(self, model_id: int, model: Model, *, full: bool = True) -> None:
        base = slot_of(b"model", model_id)
        flags = (int(model.retired) << 176) | (1 << 177)
        self.m.store(base, addr_int(model.owner) | (model.owner_share_bps << 160) | flags)
        self.m.store(base + 3, model.price_per_1k)
        if full:
            self._put_str(self.m, base + 1, model.base_model)
            self.m.store(base + 2, int.from_bytes(model.adapter_hash, "big"))
            self.m.store(base + 4, len(model.trained_on))
            list_slot = slot_of(b"model_versions", model_id)
            for i, (datanet_id, version) in enumerate(model.trained_on):
                self.m.store(list_slot + i, (datanet_id << 128) | version)

    # -- settlement -- #
    def escrow(self, payer: bytes) -> int:
        return self.s.load(slot_of(b"escrow", addr_int(payer)))

    def set_escrow(self, payer: bytes, amount: int) -> None:
        self.s.store(slot_of(b"escrow", addr_int(payer)), amount)

    def earnings(self, who: bytes) -> int:
        return self.s.load(slot_of(b"earnings", addr_int(who)))

    def set_earnings(self, who: bytes, amount: int) -> None:
        self.s.store(slot_of(b"earnings", addr_int(who)), amount)

    def pending_withdrawal(self, payer: bytes) -> tuple[int, int]:
        """(amount, unlock block) of the payer's escrow withdrawal request; (0, 0) if none."""
        word = self.s.load(slot_of(b"unlock", addr_int(payer)))
        return word & U128, word >> 128

    def set_pending_withdrawal(self, payer: bytes, amount: int, unlock_block: int) -> None:
        self.s.store(slot_of(b"unlock", addr_int(payer)), amount | (unlock_block << 128))

    def authorized(self, payer: bytes, worker: bytes) -> bool:
        return bool(self.s.load(slot_of(b"auth", addr_int(payer), addr_int(worker))))

    def set_authorized(self, payer: bytes, worker: bytes, on: bool) -> None:
        self.s.store(slot_of(b"auth", addr_int(payer), addr_int(worker)), int(on))

    def nonce_word(self, payer: bytes, nonce: int) -> tuple[int, int]:
        """(slot, word) of the used-nonce bitmap holding `nonce` (256 nonces per word)."""
        slot = slot_of(b"nonces", addr_int(payer), nonce >> 8)
        return slot, self.s.load(slot)

    def receipt_used(self, payer: bytes, nonce: int) -> bool:
        _, word = self.nonce_word(payer, nonce)
        return bool((word >> (nonce & 0xFF)) & 1)
