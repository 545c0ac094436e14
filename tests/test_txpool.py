"""Transaction pool: nonce order, pending vs queued, replacement, limits, selection."""

from __future__ import annotations

import pytest
from eth_account import Account

from evm_bridge.vm import OpenLedgerVM
from genesis.presets import dev_accounts
from openledger_node.txpool import AccountView, TxPool, TxPoolConfig, TxRejected

CHAIN = 3_301_730
ACCOUNTS = dev_accounts(3)


def raw(index: int, nonce: int, tip: int = 10**9, fee: int = 5 * 10**9, **extra: object) -> bytes:
    tx = {"to": ACCOUNTS[2].address, "value": 1, "gas": 21000, "nonce": nonce,
          "maxFeePerGas": fee, "maxPriorityFeePerGas": tip, "chainId": CHAIN, **extra}
    return bytes(Account.sign_transaction(tx, ACCOUNTS[index].private_key).raw_transaction)


def make_pool(nonces: dict[int, int] | None = None, **config: int) -> TxPool:
    chain_nonces = {bytes.fromhex(ACCOUNTS[i].address[2:]): n for i, n in (nonces or {}).items()}

    def read(address: bytes) -> AccountView:
        return AccountView(chain_nonces.get(address, 0), 10**22)

    pool = TxPool(CHAIN, OpenLedgerVM.get_transaction_builder(), read, TxPoolConfig(**config))
    pool.base_fee = 10**9
    return pool


def test_pending_and_queued() -> None:
    pool = make_pool()
    pool.add_raw(raw(0, 0))
    pool.add_raw(raw(0, 2))  # gap at 1: queued
    assert pool.counts() == (1, 1)
    assert pool.next_nonce(bytes.fromhex(ACCOUNTS[0].address[2:])) == 1
    pool.add_raw(raw(0, 1))
    assert pool.counts() == (3, 0)
    assert [tx.nonce for tx in pool.select(30_000_000)] == [0, 1, 2]


def test_selection_orders_by_tip_and_keeps_nonce_order() -> None:
    pool = make_pool()
    pool.add_raw(raw(0, 0, tip=1))
    pool.add_raw(raw(0, 1, tip=3 * 10**9))
    pool.add_raw(raw(1, 0, tip=2 * 10**9))
    chosen = pool.select(30_000_000)
    order = [(bytes(tx.sender), tx.nonce) for tx in chosen]
    a0, a1 = (bytes.fromhex(a.address[2:]) for a in ACCOUNTS[:2])
    assert order == [(a1, 0), (a0, 0), (a0, 1)]
    assert len(pool.select(21000 * 2)) == 2


def test_replacement_needs_a_bump() -> None:
    pool = make_pool(price_bump_percent=10)
    pool.add_raw(raw(0, 0, tip=10**9, fee=5 * 10**9))
    with pytest.raises(TxRejected, match="replacement transaction underpriced"):
        pool.add_raw(raw(0, 0, tip=10**9 + 1, fee=5 * 10**9 + 1, value=2))
    pool.add_raw(raw(0, 0, tip=11 * 10**8, fee=55 * 10**8, value=3))
    assert len(pool) == 1 and pool.select(30_000_000)[0].value == 3


@pytest.mark.parametrize(("payload", "message"), [
    (lambda: raw(0, 0, chainId=1), "invalid chain id"),
    (lambda: raw(0, 0, fee=1, tip=1), "less than block base fee"),
    (lambda: raw(0, 0, gas=20000), "intrinsic gas too low"),
    (lambda: raw(0, 0, value=10**30), "insufficient funds"),
    (lambda: raw(0, 0, tip=6 * 10**9), "max priority fee per gas higher than max fee per gas"),
    (lambda: b"\x02\xc0", "invalid transaction encoding"),
])
def test_rejections_carry_geth_messages(payload: object, message: str) -> None:
    pool = make_pool()
    with pytest.raises(TxRejected, match=message):
        pool.add_raw(payload())  # type: ignore[operator]
    assert len(pool) == 0


def test_nonce_too_low_and_stale_removal() -> None:
    pool = make_pool({0: 3})
    with pytest.raises(TxRejected, match="nonce too low"):
        pool.add_raw(raw(0, 2))
    pool.add_raw(raw(0, 3))
    pool.add_raw(raw(0, 4))
    with pytest.raises(TxRejected, match="already known"):
        pool.add_raw(raw(0, 4))


def test_limits() -> None:
    pool = make_pool(max_per_sender=2, max_transactions=3)
    pool.add_raw(raw(0, 0))
    pool.add_raw(raw(0, 1))
    with pytest.raises(TxRejected, match="txpool is full"):
        pool.add_raw(raw(0, 2))
    pool.add_raw(raw(1, 0))
    with pytest.raises(TxRejected, match="txpool is full"):
        pool.add_raw(raw(1, 1))
    small = make_pool(max_tx_bytes=100)
    with pytest.raises(TxRejected, match="oversized"):
        small.add_raw(raw(0, 0, data=b"\x00" * 200, gas=100_000))
