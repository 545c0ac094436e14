"""Gas and wall time to settle batches of 1, 100 and 1,000 inference receipts.

Runs on the node's own block builder over an in-memory OpenLedger chain (py-evm, the native
precompiles): a datanet of 20 accepted contributions, a model on its version, 10 payers with
escrow who authorised one worker. Each batch is one `settle` transaction of receipts signed
by the payers (EIP-712, 3 attributions each); block execution time is the time to build the
block holding it (execution, tries, state root). Targets (issue 5): >= 1,000 receipts per
second of block execution, and gas per receipt in a batch of 100 under a fifth of a lone
receipt's.

    .venv/bin/python bench/bench_settlement.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datanets.receipts import sign_receipt
from datanets.types import Receipt
from evm_bridge.ledger import Ledger
from evm_bridge.precompiles import DATANETS_ADDRESS, MODELS_ADDRESS, SETTLEMENT_ADDRESS
from evm_bridge.precompiles.abi import DATANETS, MODELS, SETTLEMENT
from genesis.presets import dev_accounts, devnet_genesis

E = 10**18
PAYERS = 10
CONTRIBUTIONS = 20


class Bench:
    def __init__(self) -> None:
        genesis = devnet_genesis(accounts=PAYERS + 3)
        self.ledger = Ledger.open(None, dataclasses.replace(genesis, gas_limit=60_000_000))
        self.chain_id = genesis.chain_id
        accts = dev_accounts(PAYERS + 3)
        self.keys = [a.private_key for a in accts]
        self.addrs = [bytes.fromhex(a.address[2:]) for a in accts]
        self.nonces = [0] * len(accts)
        self.time = genesis.timestamp
        self.receipt_nonce = 0

    def tx(self, who: int, to: bytes, data: bytes, value: int = 0, gas: int = 50_000_000) -> Any:
        raw = Account.sign_transaction({
            "type": 2, "chainId": self.chain_id, "nonce": self.nonces[who], "to": to,
            "value": value, "data": data, "gas": gas, "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9}, self.keys[who]).raw_transaction
        self.nonces[who] += 1
        return self.ledger.chain.get_vm().get_transaction_builder().decode(bytes(raw))

    def block(self, txs: list[Any]) -> tuple[float, list[Any], list[Any]]:
        self.time += 1
        t0 = time.perf_counter()
        built = self.ledger.start_block(txs, timestamp=self.time).finish()
        elapsed = time.perf_counter() - t0
        self.ledger.commit(built)
        assert not built.skipped, built.skipped
        for c in built.computations:
            assert c.is_success, c.output
        return elapsed, list(built.receipts), list(built.computations)

    def setup(self) -> None:
        owner, worker = 0, 1
        self.worker = worker
        self.block([self.tx(owner, DATANETS_ADDRESS, DATANETS.function("createDatanet")
                            .encode_call("bench", "", [], 0, 0, 0, 0, 0))])
        self.block([self.tx(owner, DATANETS_ADDRESS, DATANETS.function("contribute")
                            .encode_call(1, keccak(i.to_bytes(4, "big")), 1000, ""))
                    for i in range(CONTRIBUTIONS)])
        self.block([self.tx(owner, DATANETS_ADDRESS, DATANETS.function("accept").encode_call(i))
                    for i in range(1, CONTRIBUTIONS + 1)])
        self.block([self.tx(owner, DATANETS_ADDRESS,
                            DATANETS.function("createVersion").encode_call(1))])
        self.block([self.tx(owner, MODELS_ADDRESS, MODELS.function("registerModel").encode_call(
            "base", keccak(b"adapter"), [1], [1], 10**12, 2000))])
        txs = []
        for p in range(2, 2 + PAYERS):
            txs.append(self.tx(p, SETTLEMENT_ADDRESS, SETTLEMENT.function("deposit").encode_call(),
                               value=1000 * E))
            txs.append(self.tx(p, SETTLEMENT_ADDRESS, SETTLEMENT.function("authorize")
                               .encode_call("0x" + self.addrs[worker].hex(), True)))
        self.block(txs)

    def receipts(self, n: int, rng: random.Random) -> list[tuple[Any, ...]]:
        out = []
        for i in range(n):
            payer = 2 + i % PAYERS
            cids = tuple(rng.sample(range(1, CONTRIBUTIONS + 1), 3))
            weights = (5000, 3000, 2000)
            r = sign_receipt(Receipt(1, self.addrs[payer], self.addrs[self.worker], 400, 200,
                                     10**15, self.receipt_nonce, cids, weights),
                             self.keys[payer], self.chain_id)
            self.receipt_nonce += 1
            out.append((r.model_id, "0x" + r.payer.hex(), r.input_tokens, r.output_tokens,
                        r.fee, r.nonce, list(cids), list(weights), r.signature[64],
                        r.signature[:32], r.signature[32:64]))
        return out

    def settle(self, n: int, rng: random.Random) -> tuple[float, int, int]:
        data = SETTLEMENT.function("settle").encode_call(self.receipts(n, rng))
        tx = self.tx(self.worker, SETTLEMENT_ADDRESS, data)
        elapsed, receipts, _ = self.block([tx])
        return elapsed, receipts[0].gas_used, len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per batch size (median)")
    args = parser.parse_args()
    bench = Bench()
    bench.setup()
    rng = random.Random(7)
    bench.settle(10, rng)  # warm-up
    results = {}
    for n in (1, 100, 1000):
        runs = [bench.settle(n, rng) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        results[n] = (wall, runs[0][1], runs[0][2])
    lone_gas = results[1][1]
    print(f"{'batch':>6} {'gas':>11} {'gas/receipt':>12} {'calldata B':>11} "
          f"{'block ms':>9} {'receipts/s':>11}")
    for n, (wall, gas_used, size) in results.items():
        print(f"{n:>6} {gas_used:>11,} {gas_used // n:>12,} {size:>11,} {wall * 1000:>9.1f} "
              f"{n / wall:>11,.0f}")
    per_100 = results[100][1] / 100
    rate = 1000 / results[1000][0]
    print(f"gas per receipt, batch of 100 / lone receipt: {per_100 / lone_gas:.3f} (target < 0.2)")
    print(f"receipts settled per second of block execution (batch of 1000): {rate:,.0f} "
          f"(target >= 1,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
