"""Devnet throughput: N signed transfers (and N ERC-20 transfers) sent over JSON-RPC to a real
`openledger devnet` process, timed until all are in blocks, beside py-evm's raw block-building
rate (`MiningChain.mine_all`, blocks of 1,000) for the same transactions, in the same run.

Usage: .venv/bin/python bench/bench_devnet.py [--n 2000] [--senders 10] [--clients 4]
Target (issue 3): node rate >= 0.8 x raw rate.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from eth._utils.address import generate_contract_address
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evm_bridge.ledger import genesis_header_params, genesis_state  # noqa: E402
from genesis.presets import DEVNET_CHAIN_ID, dev_accounts, devnet_genesis  # noqa: E402
from tests.utils.processes import devnet_process, rpc_result  # noqa: E402
from tests.utils.solidity import compile_solidity  # noqa: E402

TOKEN = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract BenchToken {
    mapping(address => uint256) public balanceOf;
    event Transfer(address indexed from, address indexed to, uint256 value);
    constructor() { balanceOf[msg.sender] = 1e30; }
    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value; balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}
"""
TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")
FEE = {"maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": DEVNET_CHAIN_ID}


def sign(key: bytes, **fields: Any) -> bytes:
    return bytes(Account.sign_transaction({**FEE, **fields}, key).raw_transaction)


def workload(n: int, senders: int, token_code: bytes) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(setup, transfers, erc20 transfers): raw signed transactions, nonces consecutive."""
    accounts = dev_accounts(senders + 1)
    owner = accounts[0]
    token_address = generate_contract_address(bytes.fromhex(owner.address[2:]), 0)
    setup = [sign(owner.private_key, nonce=0, data=token_code, gas=2_000_000)]
    for i, acct in enumerate(accounts[1:], start=1):
        payload = TRANSFER + abi_encode(["address", "uint256"], [acct.address, 10**24])
        setup.append(sign(owner.private_key, nonce=i, to=token_address, data=payload, gas=100_000))
    nonces = {a.address: 0 for a in accounts[1:]}
    transfers, tokens = [], []
    recipient = "0x" + "42" * 20
    for k in range(n):
        acct = accounts[1 + k % senders]
        transfers.append(sign(acct.private_key, nonce=nonces[acct.address], to=recipient,
                              value=1 + k, gas=21_000))
        nonces[acct.address] += 1
    for k in range(n):
        acct = accounts[1 + k % senders]
        payload = TRANSFER + abi_encode(["address", "uint256"], [recipient, 1 + k])
        tokens.append(sign(acct.private_key, nonce=nonces[acct.address], to=token_address,
                           data=payload, gas=60_000))
        nonces[acct.address] += 1
    return setup, transfers, tokens


# -- raw py-evm ------------------------------------------------------------------------------
def raw_rates(setup: list[bytes], phases: list[list[bytes]], block_size: int) -> list[float]:
    genesis = devnet_genesis(accounts=len(dev_accounts(11)))
    chain_class = MiningChain.configure(vm_configuration=((0, PragueVM),), chain_id=DEVNET_CHAIN_ID)
    chain = chain_class.from_genesis(AtomicDB(), genesis_header_params(genesis),
                                     genesis_state(genesis))
    builder = PragueVM.get_transaction_builder()
    timestamp = [int(time.time())]

    def mine(raws: list[bytes]) -> None:
        txs = [builder.decode(r) for r in raws]
        start = 0
        while start < len(txs):
            # Blocks of up to `block_size` transactions whose gas limits fit the block.
            end, gas = start, 0
            while end < len(txs) and end - start < block_size and \
                    gas + txs[end].gas <= genesis.gas_limit:
                gas += txs[end].gas
                end += 1
            timestamp[0] += 1
            _, receipts, _ = chain.mine_all(txs[start:end], timestamp=timestamp[0],
                                            gas_limit=genesis.gas_limit)
            assert all(r.state_root == b"\x01" for r in receipts), "raw chain tx failed"
            start = end

    mine(setup)
    rates = []
    for raws in phases:
        started = time.perf_counter()
        mine(raws)
        rates.append(len(raws) / (time.perf_counter() - started))
    return rates


# -- the node over RPC -----------------------------------------------------------------------
def send_all(port: int, raws: list[bytes], clients: int, batch: int) -> None:
    """Send raw transactions over keep-alive HTTP connections, `batch` per JSON-RPC batch."""
    by_client: list[list[bytes]] = [[] for _ in range(clients)]
    for i, raw in enumerate(raws):
        by_client[i % clients].append(raw)
    errors: list[str] = []

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for start in range(0, len(mine), batch):
            body = json.dumps([
                {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                 "params": ["0x" + raw.hex()]}
                for i, raw in enumerate(mine[start:start + batch])
            ])
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            for item in json.loads(conn.getresponse().read()):
                if "error" in item:
                    errors.append(item["error"]["message"])
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in by_client]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} rejected, e.g. {errors[:3]}")


def wait_included(url: str, expected: dict[str, int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(expected)
    while pending:
        for address, nonce in list(pending.items()):
            if int(rpc_result(url, "eth_getTransactionCount", [address, "latest"]), 16) >= nonce:
                del pending[address]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not included: {pending}")
        time.sleep(0.02)


# A probe in its own process (so the load clients' GIL does not bias it): eth_blockNumber on a
# keep-alive connection every 10 ms until stdin closes; prints the latencies in ms as JSON.
PROBE = """
import http.client, json, sys, threading, time
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
out = []
while not stop.is_set():
    t = time.perf_counter()
    conn.request("POST", "/", body, {"Content-Type": "application/json"})
    conn.getresponse().read()
    out.append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
print(json.dumps(out))
"""


def start_probe(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", PROBE, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def stop_probe(probe: subprocess.Popen[str]) -> list[float]:
    out, _ = probe.communicate("", timeout=60)
    return sorted(json.loads(out))


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


LATENCIES: dict[str, list[float]] = {}


def node_rates(setup: list[bytes], phases: list[list[bytes]], senders: int, clients: int,
               batch: int) -> list[float]:
    accounts = dev_accounts(senders + 1)
    with tempfile.TemporaryDirectory() as tmp:
        node = devnet_process(Path(tmp) / "devnet", "--accounts", str(senders + 1)).start()
        try:
            send_all(node.port, setup, 1, batch)
            wait_included(node.url, {accounts[0].address: len(setup)})
            probe = start_probe(node.port)
            time.sleep(2)
            LATENCIES["idle"] = stop_probe(probe)
            rates = []
            sent_per_sender = 0
            probe = start_probe(node.port)
            for raws in phases:
                sent_per_sender += len(raws) // senders
                started = time.perf_counter()
                send_all(node.port, raws, clients, batch)
                wait_included(node.url, {a.address: sent_per_sender for a in accounts[1:]})
                rates.append(len(raws) / (time.perf_counter() - started))
            LATENCIES["loaded"] = stop_probe(probe)
            return rates
        finally:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="transactions per kind")
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--batch", type=int, default=50, help="transactions per JSON-RPC batch")
    args = parser.parse_args()
    if args.n % args.senders:
        parser.error("--n must be a multiple of --senders")
    token = compile_solidity({"BenchToken.sol": TOKEN})["BenchToken"]
    setup, transfers, tokens = workload(args.n, args.senders, token.bytecode)
    raw = raw_rates(setup, [transfers, tokens], 1000)
    node = node_rates(setup, [transfers, tokens], args.senders, args.clients, args.batch)
    print(f"{args.n} transactions per kind, {args.senders} senders, {args.clients} RPC clients, "
          f"batches of {args.batch}")
    print(f"{'workload':<18}{'py-evm raw tx/s':>18}{'node over RPC tx/s':>22}{'ratio':>8}")
    for name, r, n in zip(("transfers", "ERC-20 transfers"), raw, node, strict=True):
        print(f"{name:<18}{r:>18.0f}{n:>22.0f}{n / r:>8.2f}")
    # How responsive RPC stays while blocks of thousands of transactions execute (they run in
    # slices of 100 with event-loop checkpoints between them).
    for name, values in LATENCIES.items():
        print(f"eth_blockNumber latency, {name} ({len(values)} probes): p50 {pct(values, 50):.1f} ms,"
              f" p99 {pct(values, 99):.1f} ms, max {values[-1]:.1f} ms")


if __name__ == "__main__":
    main()
