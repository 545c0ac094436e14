"""Four validators on loopback (real processes, libp2p, Tendermint consensus): finality latency,
block interval, transfer throughput as a ratio to the single-validator devnet measured in the
same run, and block-sync speed of a fresh full node.

Usage: .venv/bin/python bench/bench_network.py [--n 1000] [--latency-samples 30]
Targets (issue 4): finality p50 < 1.5 s with a 1 s block target; 4-validator throughput
>= 0.7 x devnet.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_devnet import send_all, wait_included  # noqa: E402

from genesis.presets import dev_accounts  # noqa: E402
from tests.utils.processes import devnet_process, make_testnet, rpc_result  # noqa: E402

NETWORK_CHAIN_ID = 3_301_731
DEVNET_CHAIN_ID = 3_301_730


def transfers(n: int, senders: int, chain_id: int, first_nonce: int = 0) -> list[bytes]:
    accounts = dev_accounts(senders + 1)[1:]
    out = []
    for k in range(n):
        acct = accounts[k % senders]
        tx = {"to": "0x" + "42" * 20, "value": 1 + k, "gas": 21000,
              "nonce": first_nonce + k // senders, "maxFeePerGas": 50 * 10**9,
              "maxPriorityFeePerGas": 10**9, "chainId": chain_id}
        out.append(bytes(Account.sign_transaction(tx, acct.private_key).raw_transaction))
    return out


def throughput(url: str, port: int, raws: list[bytes], senders: int, per_sender: int) -> float:
    accounts = dev_accounts(senders + 1)[1:]
    started = time.perf_counter()
    send_all(port, raws, 4, 50)
    wait_included(url, {a.address: per_sender for a in accounts}, timeout=900)
    return len(raws) / (time.perf_counter() - started)


def finality(urls: list[str], samples: int, senders: int, nonce: int) -> list[float]:
    """Seconds from eth_sendRawTransaction to a receipt on the node it was sent to."""
    account = dev_accounts(senders + 2)[senders + 1]  # an account the throughput run left alone
    latencies = []
    rng = random.Random(7)
    for i in range(samples):
        url = urls[i % len(urls)]
        tx = {"to": "0x" + "43" * 20, "value": 1, "gas": 21000, "nonce": nonce + i,
              "maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9,
              "chainId": NETWORK_CHAIN_ID}
        raw = "0x" + bytes(Account.sign_transaction(tx, account.private_key).raw_transaction).hex()
        sent = time.perf_counter()
        tx_hash = rpc_result(url, "eth_sendRawTransaction", [raw])
        while not rpc_result(url, "eth_getTransactionReceipt", [tx_hash]):
            time.sleep(0.01)
        latencies.append(time.perf_counter() - sent)
        # A random pause, so submissions land at every point of the block interval: a fixed
        # pause phase-locks them to the block schedule and measures one phase only.
        time.sleep(rng.uniform(0.0, 1.0))
    return latencies


def block_interval(url: str, blocks: int) -> float:
    head = int(rpc_result(url, "eth_blockNumber"), 16)
    first = rpc_result(url, "eth_getBlockByNumber", [hex(head - blocks), False])
    last = rpc_result(url, "eth_getBlockByNumber", [hex(head), False])
    return (int(last["timestamp"], 16) - int(first["timestamp"], 16)) / blocks


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--latency-samples", type=int, default=30)
    args = parser.parse_args()
    per_sender = args.n // args.senders
    with tempfile.TemporaryDirectory() as tmp:
        # The single-validator devnet, same workload.
        devnet = devnet_process(Path(tmp) / "devnet", "--accounts", str(args.senders + 2)).start()
        try:
            devnet_rate = throughput(devnet.url, devnet.port,
                                     transfers(args.n, args.senders, DEVNET_CHAIN_ID),
                                     args.senders, per_sender)
        finally:
            devnet.stop()

        fund = tuple(f"{a.address}=1000000" for a in dev_accounts(args.senders + 2))
        nodes = make_testnet(Path(tmp) / "net", validators=4, full_nodes=1, fund=fund)
        for node in nodes[:4]:
            node.start()
        try:
            url = nodes[0].url
            while int(rpc_result(url, "eth_blockNumber"), 16) < 3:
                time.sleep(0.2)
            latencies = finality([n.url for n in nodes[:4]], args.latency_samples,
                                 args.senders, 0)
            interval = block_interval(url, 20)
            network_rate = throughput(url, nodes[0].port,
                                      transfers(args.n, args.senders, NETWORK_CHAIN_ID),
                                      args.senders, per_sender)
            target = int(rpc_result(url, "eth_blockNumber"), 16)
            full = nodes[4]
            full.start()  # returns once its RPC answers; block sync starts with it
            started = time.perf_counter()
            synced_from = int(rpc_result(full.url, "eth_blockNumber"), 16)
            while int(rpc_result(full.url, "eth_blockNumber"), 16) < target:
                time.sleep(0.05)
            sync_seconds = time.perf_counter() - started
            synced_txs = sum(
                len(rpc_result(url, "eth_getBlockByNumber", [hex(h), False])["transactions"])
                for h in range(synced_from + 1, target + 1))
        finally:
            for node in nodes:
                node.stop()
    print(f"4 validators + 1 full node on 127.0.0.1, 1 s block target, {args.n} transfers")
    print(f"finality (submit -> receipt), {len(latencies)} samples: "
          f"p50 {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 95):.2f} s, "
          f"max {max(latencies):.2f} s")
    print(f"block interval over 20 blocks: {interval:.2f} s")
    print(f"throughput: devnet {devnet_rate:.0f} tx/s, 4 validators {network_rate:.0f} tx/s, "
          f"ratio {network_rate / devnet_rate:.2f}")
    blocks = target - synced_from
    print(f"sync of a fresh full node (from RPC up): {blocks} blocks, {synced_txs} transfers in "
          f"{sync_seconds:.1f} s = {blocks / sync_seconds:.1f} blocks/s, "
          f"{synced_txs / sync_seconds:.0f} transfers/s")


if __name__ == "__main__":
    main()
