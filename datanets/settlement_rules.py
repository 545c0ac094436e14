"""Inference escrow and batched attribution settlement.

A payer deposits OPEN into escrow and authorises workers; a worker settles a batch of receipts
the payer signed. The whole batch settles or none of it does (any bad receipt reverts the call
with its index and reason). Each fee is split at once: the protocol's share (genesis
parameter), then the model owner's share, then the rest among contributors by weight (rounding
dust to the owner), so every wei of the fee lands somewhere.

Shares accrue in the settlement account and are withdrawn with `withdraw_earnings`, rather
than moved straight to each party: a contributor is paid by thousands of tiny fees, and one
accrual word per party per batch (updated in place, batch after batch) costs far less gas than
a balance transfer per party per receipt, while one withdrawal collects them all.

Used receipts are a bitmap per payer (256 nonces a word), so a batch of consecutive nonces
marks them with one storage write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datanets.abc import RuleError, Space
from datanets.ledger import Ledger
from datanets.params import escrow_unlock_blocks, protocol_fee_bps, settlement_treasury
from datanets.receipts import recover_signer
from datanets.types import BPS, CallContext, Receipt, Status

MAX_BATCH = 2_000
MAX_ATTRIBUTIONS = 64  # contributions named by one receipt
PAYABLE_STATUSES = (Status.ACCEPTED, Status.CHALLENGED)


@dataclass
class Split:
    protocol: int
    owner: int
    contributors: list[tuple[bytes, int]]


def split_fee(fee: int, fee_bps: int, owner_share_bps: int,
              weighted: Sequence[tuple[bytes, int]]) -> Split:
    """Protocol first, owner next, contributors by weight; dust to the owner."""
    protocol = fee * fee_bps // BPS
    rest = fee - protocol
    owner = rest * owner_share_bps // BPS
    pool = rest - owner
    shares = [(who, pool * w // BPS) for who, w in weighted]
    owner += pool - sum(a for _, a in shares)
    return Split(protocol, owner, shares)


def deposit(ledger: Ledger, ctx: CallContext) -> int:
    if ctx.value <= 0:
        raise RuleError("deposit needs a value")
    total = ledger.escrow(ctx.sender) + ctx.value
    ledger.set_escrow(ctx.sender, total)
    ctx.emit("Deposited", ctx.sender, ctx.value)
    return total


def request_withdrawal(ledger: Ledger, ctx: CallContext, amount: int) -> int:
    """Start the unlock period for `amount` of the caller's escrow (replacing any earlier
    request); returns the block from which `withdraw_escrow` may take it. Until then the
    escrow still pays for receipts, so a worker holding receipts can settle them first."""
    if ctx.value:
        raise RuleError("function is not payable")
    held = ledger.escrow(ctx.sender)
    if amount <= 0 or amount > held or amount >= 1 << 128:
        raise RuleError(f"amount must be within 1..{held} (the escrow)")
    unlock_block = ctx.block_number + escrow_unlock_blocks(ledger.s)
    ledger.set_pending_withdrawal(ctx.sender, amount, unlock_block)
    ctx.emit("WithdrawalRequested", ctx.sender, amount, unlock_block)
    return unlock_block


def withdraw_escrow(ledger: Ledger, ctx: CallContext, amount: int) -> None:
    """Take escrow back: at once where the network has no unlock period, otherwise up to an
    unlocked request's amount."""
    if ctx.value:
        raise RuleError("function is not payable")
    held = ledger.escrow(ctx.sender)
    if amount <= 0 or amount > held:
        raise RuleError(f"amount must be within 1..{held} (the escrow)")
    if escrow_unlock_blocks(ledger.s):
        requested, unlock_block = ledger.pending_withdrawal(ctx.sender)
        if amount > requested:
            raise RuleError(f"request the withdrawal first (requested: {requested})")
        if ctx.block_number < unlock_block:
            raise RuleError(f"escrow locked until block {unlock_block}")
        left = requested - amount
        ledger.set_pending_withdrawal(ctx.sender, left, unlock_block if left else 0)
    ledger.set_escrow(ctx.sender, held - amount)
    ctx.pay(Space.SETTLEMENT, ctx.sender, amount)
    ctx.emit("EscrowWithdrawn", ctx.sender, amount)


def authorize(ledger: Ledger, ctx: CallContext, worker: bytes, allowed: bool) -> None:
    if ctx.value:
        raise RuleError("function is not payable")
    if worker == b"\x00" * 20:
        raise RuleError("worker is the zero address")
    ledger.set_authorized(ctx.sender, worker, allowed)
    ctx.emit("WorkerAuthorized", ctx.sender, worker, allowed)


def withdraw_earnings(ledger: Ledger, ctx: CallContext) -> int:
    if ctx.value:
        raise RuleError("function is not payable")
    amount = ledger.earnings(ctx.sender)
    if not amount:
        raise RuleError("no earnings to withdraw")
    ledger.set_earnings(ctx.sender, 0)
    ctx.pay(Space.SETTLEMENT, ctx.sender, amount)
    ctx.emit("EarningsWithdrawn", ctx.sender, amount)
    return amount


class _Batch:
    """Per-call caches, so a batch reads each model, contribution, escrow and bitmap word
    once and writes each once at the end."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.models: dict[int, tuple[bytes, int, int, dict[int, int]]] = {}
        self.contributions: dict[int, tuple[int, Status, int, bytes] | None] = {}
        self.escrows: dict[bytes, int] = {}
        self.authorized: dict[bytes, bool] = {}
        self.nonce_words: dict[tuple[bytes, int], tuple[int, int, int]] = {}
        self.credits: dict[bytes, int] = {}

    def model(self, model_id: int) -> tuple[bytes, int, int, dict[int, int]]:
        """(owner, price per 1k, owner share, {datanet id: accepted entries in its version})."""
        if model_id not in self.models:
            model = self.ledger.get_model(model_id)
            if model is None:
                raise RuleError(f"unknown model {model_id}")
            if model.retired:
                raise RuleError(f"model {model_id} is retired")
            allowed = {}
            for datanet_id, number in model.trained_on:
                version = self.ledger.get_version(datanet_id, number)
                allowed[datanet_id] = version.accepted_count if version else 0
            self.models[model_id] = (model.owner, model.price_per_1k, model.owner_share_bps,
                                     allowed)
        return self.models[model_id]

    def contribution(self, cid: int) -> tuple[int, Status, int, bytes] | None:
        if cid not in self.contributions:
            self.contributions[cid] = self.ledger.contribution_core(cid)
        return self.contributions[cid]

    def escrow(self, payer: bytes) -> int:
        if payer not in self.escrows:
            self.escrows[payer] = self.ledger.escrow(payer)
        return self.escrows[payer]

    def is_authorized(self, payer: bytes, worker: bytes) -> bool:
        if payer not in self.authorized:
            self.authorized[payer] = self.ledger.authorized(payer, worker)
        return self.authorized[payer]

    def use_nonce(self, payer: bytes, nonce: int) -> bool:
        """Mark the nonce used; False if it already was."""
        key = (payer, nonce >> 8)
        if key not in self.nonce_words:
            slot, word = self.ledger.nonce_word(payer, nonce)
            self.nonce_words[key] = (slot, word, word)
        slot, original, word = self.nonce_words[key]
        bit = 1 << (nonce & 0xFF)
        if word & bit:
            return False
        self.nonce_words[key] = (slot, original, word | bit)
        return True

    def credit(self, who: bytes, amount: int) -> None:
        if amount:
            self.credits[who] = self.credits.get(who, 0) + amount

    def commit(self) -> None:
        ledger = self.ledger
        for payer, left in self.escrows.items():
            ledger.set_escrow(payer, left)
        for slot, original, word in self.nonce_words.values():
            if word != original:
                ledger.s.store(slot, word)
        for who, amount in self.credits.items():
            ledger.set_earnings(who, ledger.earnings(who) + amount)


def settle(ledger: Ledger, ctx: CallContext, receipts: Sequence[Receipt]) -> int:
    """Settle a batch signed by payers for the calling worker; returns the total of fees."""
    if ctx.value:
        raise RuleError("function is not payable")
    if not receipts:
        raise RuleError("no receipts")
    if len(receipts) > MAX_BATCH:
        raise RuleError(f"more than {MAX_BATCH} receipts in one batch")
    worker = ctx.sender
    fee_bps = protocol_fee_bps(ledger.s)
    treasury = settlement_treasury(ledger.s)
    batch = _Batch(ledger)
    total = 0
    for i, r in enumerate(receipts):
        try:
            total += _settle_one(batch, ctx, r, worker, fee_bps, treasury)
        except RuleError as exc:
            raise RuleError(f"receipt {i}: {exc}") from None
    batch.commit()
    return total


def _settle_one(batch: _Batch, ctx: CallContext, r: Receipt, worker: bytes, fee_bps: int,
                treasury: bytes) -> int:
    if r.worker != worker:
        raise RuleError("receipt names another worker")
    n = len(r.contribution_ids)
    if n == 0 or n != len(r.weights):
        raise RuleError("contribution ids and weights must be non-empty and of equal length")
    if n > MAX_ATTRIBUTIONS:
        raise RuleError(f"more than {MAX_ATTRIBUTIONS} attributions")
    if any(w <= 0 for w in r.weights) or sum(r.weights) != BPS:
        raise RuleError("weights must be positive and sum to 10000")
    if len(set(r.contribution_ids)) != n:
        raise RuleError("a contribution is named twice")
    if recover_signer(r, ctx.chain_id) != r.payer:
        raise RuleError("bad signature: it does not recover to the payer")
    if not batch.is_authorized(r.payer, worker):
        raise RuleError("worker not authorized by the payer")
    owner, price, owner_share, allowed = batch.model(r.model_id)
    minimum = price * (r.input_tokens + r.output_tokens) // 1000
    if r.fee < minimum:
        raise RuleError(f"fee {r.fee} below the model's price ({minimum})")
    escrow = batch.escrow(r.payer)
    if r.fee > escrow:
        raise RuleError(f"escrow exhausted: {escrow} left, fee {r.fee}")
    weighted: list[tuple[bytes, int]] = []
    slashed_weight = 0
    for cid, weight in zip(r.contribution_ids, r.weights, strict=True):
        core = batch.contribution(cid)
        if core is None:
            raise RuleError(f"unknown contribution {cid}")
        datanet_id, status, index, contributor = core
        if status not in (*PAYABLE_STATUSES, Status.SLASHED) or index >= allowed.get(
            datanet_id, 0
        ):
            raise RuleError(
                f"contribution {cid} is not in a datanet version model {r.model_id} was "
                "trained on"
            )
        if status == Status.SLASHED:
            slashed_weight += weight  # a slashed contribution's share goes to the protocol
        else:
            weighted.append((contributor, weight))
    if not batch.use_nonce(r.payer, r.nonce):
        raise RuleError(f"receipt already settled (payer nonce {r.nonce})")
    if slashed_weight:
        weighted.append((treasury, slashed_weight))
    split = split_fee(r.fee, fee_bps, owner_share, weighted)
    batch.escrows[r.payer] = escrow - r.fee
    batch.credit(treasury, split.protocol)
    batch.credit(owner, split.owner)
    for who, amount in split.contributors:
        batch.credit(who, amount)
    ctx.emit("ReceiptSettled", r.payer, r.model_id, r.nonce, worker, r.fee)
    return r.fee
