"""End to end on a real devnet process, through the `openledger` CLI and JSON-RPC.

Three contributors add files to a datanet, a curator accepts two and rejects one, a model is
registered on that version, a payer deposits and authorises a worker, the worker settles a
batch of signed receipts, and every party's balance moves by exactly the expected amounts; a
forged or replayed receipt, an unknown contribution and an exhausted escrow each revert with
a clear reason and move nothing.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from datanets.receipts import sign_receipt
from datanets.types import Receipt
from evm_bridge.precompiles import DATANETS_ADDRESS, SETTLEMENT_ADDRESS
from evm_bridge.precompiles.abi import DATANETS, SETTLEMENT
from genesis.presets import dev_accounts, devnet_genesis
from openledger_node import cli
from openledger_node.commands.datanet import ChainClient, CliError
from tests.utils.processes import REPO, NodeProcess, devnet_process

pytestmark = pytest.mark.e2e

E = 10**18
OWNER, CURATOR, C1, C2, C3, MOWNER, PAYER, WORKER = range(8)
TREASURY = dev_accounts(1)[0].address  # the devnet preset's protocol treasury (= OWNER)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = devnet_process(tmp_path_factory.mktemp("dn") / "devnet").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The first eight dev accounts imported into a keystore, one through the real console."""
    base = tmp_path_factory.mktemp("keys")
    password = base / "password"
    password.write_text("correct horse battery staple\n")
    accounts = dev_accounts(8)
    for i, acct in enumerate(accounts):
        key_file = base / f"key{i}"
        key_file.write_text(acct.private_key.hex())
        argv = ["keys", "import", "--private-key-file", str(key_file), "--password-file",
                str(password), "--keystore-dir", str(base / "ks"), "--light-kdf", "--json"]
        if i == 0:  # once as a real process: the console entry point, no password echoed
            out = subprocess.run([sys.executable, "-m", "openledger_node.cli", *argv],
                                 cwd=REPO, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert "horse" not in out.stdout + out.stderr
            assert json.loads(out.stdout)["address"] == acct.address
        else:
            assert cli.main(argv) == 0
    return {"dir": str(base / "ks"), "password": str(password),
            "addresses": [a.address for a in accounts], "keys": [a.private_key for a in accounts]}


def run(capsys: pytest.CaptureFixture[str], node: NodeProcess, ks: dict[str, Any], who: int,
        *argv: str) -> Any:
    """`openledger ... --json` signed by dev account `who`; its parsed output."""
    code = cli.main([*argv, "--from", ks["addresses"][who], "--keystore-dir", ks["dir"],
                     "--password-file", ks["password"], "--rpc", node.url, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def failing(capsys: pytest.CaptureFixture[str], node: NodeProcess, ks: dict[str, Any], who: int,
            *argv: str) -> str:
    code = cli.main([*argv, "--from", ks["addresses"][who], "--keystore-dir", ks["dir"],
                     "--password-file", ks["password"], "--rpc", node.url])
    err = capsys.readouterr().err
    assert code == 1
    return err


def test_datanet_to_settlement_on_a_devnet(node: NodeProcess, keystore: dict[str, Any],
                                           capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    client = ChainClient(node.url)
    addr = keystore["addresses"]

    def balance(i: int | str) -> int:
        return int(client.rpc("eth_getBalance", [addr[i] if isinstance(i, int) else i,
                                                 "latest"]), 16)

    def gas_paid(tx: str) -> int:
        r = client.rpc("eth_getTransactionReceipt", [tx])
        return int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)

    start = {i: balance(i) for i in range(8)}
    paid = dict.fromkeys(range(8), 0)
    created = run(capsys, node, keystore, OWNER, "datanet", "create", "--name", "clinical-notes",
                  "--metadata-uri", "ipfs://notes", "--curator", addr[CURATOR], "--stake", "1",
                  "--fee", "0.1", "--reject-forfeit-bps", "5000")
    datanet = created["id"]
    paid[OWNER] += gas_paid(created["tx"])

    cids = []
    for i, who in enumerate((C1, C2, C3)):
        f = tmp_path / f"contribution{i}.txt"
        f.write_text(f"note {i}: patient presented with symptom {i}\n" * 50)
        out = run(capsys, node, keystore, who, "datanet", "contribute", str(datanet), str(f))
        cids.append(out["id"])
        paid[who] += gas_paid(out["tx"])
        assert client.rpc("openledger_getContent", [out["contentHash"]]) == "0x" + f.read_bytes().hex()

    # A curator reviews a contribution's content before deciding.
    review = tmp_path / "review.txt"
    assert cli.main(["datanet", "content", str(cids[2]), "--out", str(review),
                     "--rpc", node.url]) == 0
    assert review.read_bytes() == (tmp_path / "contribution2.txt").read_bytes()
    for cid, action in zip(cids, ("accept", "accept", "reject"), strict=True):
        out = run(capsys, node, keystore, CURATOR, "datanet", action, str(datanet), str(cid))
        assert out["status"] == action + "ed"
        paid[CURATOR] += gas_paid(out["tx"])
    assert "not a curator" in failing(capsys, node, keystore, C1, "datanet", "accept",
                                      str(datanet), str(cids[2]))
    # The owner adds and removes a curator, and updates the rules for later contributions.
    for action in ("add-curator", "remove-curator"):
        out = run(capsys, node, keystore, OWNER, "datanet", action, str(datanet), addr[C3])
        paid[OWNER] += gas_paid(out["tx"])
    out = run(capsys, node, keystore, OWNER, "datanet", "update", str(datanet),
              "--metadata-uri", "ipfs://notes-v2", "--fee", "0.2")
    paid[OWNER] += gas_paid(out["tx"])
    assert "only the datanet owner" in failing(capsys, node, keystore, C1, "datanet", "update",
                                               str(datanet), "--fee", "0")
    dn = client.rpc("openledger_getDatanet", [datanet])
    assert (dn["metadataUri"], dn["fee"], dn["stake"]) == ("ipfs://notes-v2", str(E // 5), str(E))
    version = run(capsys, node, keystore, OWNER, "datanet", "version", str(datanet))
    paid[OWNER] += gas_paid(version["tx"])

    shown = json.loads(_plain(capsys, ["datanet", "show", str(datanet), "--rpc", node.url,
                                       "--json"]))
    assert [(c["contributor"], c["status"]) for c in shown["contributions"]] == [
        (addr[C1], "accepted"), (addr[C2], "accepted"), (addr[C3], "rejected")]
    assert all(c["contentHash"].startswith("0x") for c in shown["contributions"])

    model = run(capsys, node, keystore, MOWNER, "model", "register", "--base-model",
                "SmolLM2-135M", "--adapter-hash", "0x" + "ab" * 32, "--datanet",
                f"{datanet}:{version['version']}", "--price", "0.001", "--owner-share-bps", "2000")
    paid[MOWNER] += gas_paid(model["tx"])
    got = client.rpc("openledger_getModel", [model["id"]])
    assert got["adapterHash"] == "0x" + "ab" * 32 and got["trainedOn"] == [
        {"datanetId": datanet, "version": version["version"]}]

    # The node attributes a model output over the contributions of its datanet version.
    answer = client.rpc("openledger_attribute", [model["id"],
                                                 "As noted: note 1: patient presented with symptom 1"])
    assert answer["weights"] == {str(cids[1]): 10_000} and answer["missing"] == []
    assert answer["spans"][0]["length"] >= 4
    assert client.rpc("openledger_attribute", [model["id"], "nothing in common"])["weights"] == {}

    dep = run(capsys, node, keystore, PAYER, "escrow", "deposit", "0.5")
    auth = run(capsys, node, keystore, PAYER, "escrow", "authorize", addr[WORKER])
    paid[PAYER] += gas_paid(dep["tx"]) + gas_paid(auth["tx"])

    # The worker settles a batch of receipts the payer signed.
    chain_id = int(client.rpc("eth_chainId"), 16)
    payer_key, worker_key = keystore["keys"][PAYER], keystore["keys"][WORKER]

    def signed(nonce: int, fee: int, contributions: tuple[int, ...], key: bytes = payer_key,
               weights: tuple[int, ...] = (7500, 2500)) -> tuple[Any, ...]:
        r = sign_receipt(Receipt(model["id"], bytes.fromhex(addr[PAYER][2:]),
                                 bytes.fromhex(addr[WORKER][2:]), 600, 400, fee, nonce,
                                 contributions, weights), key, chain_id)
        return (r.model_id, addr[PAYER], 600, 400, fee, nonce, list(contributions),
                list(weights), r.signature[64], r.signature[:32], r.signature[32:64])

    fee = 10**16  # 0.01 OPEN, above the price (0.001 OPEN per 1k tokens)
    batch = [signed(n, fee, (cids[0], cids[1])) for n in range(20)]
    settle = SETTLEMENT.function("settle")
    receipt = client.transact(worker_key, SETTLEMENT_ADDRESS, settle.encode_call(batch))
    paid[WORKER] += gas_paid(receipt["transactionHash"])
    assert len(receipt["logs"]) == 20

    # 5% protocol (devnet default), 20% of the rest to the model owner, the rest 75/25.
    protocol = fee * 500 // 10_000
    owner = (fee - protocol) * 2000 // 10_000
    pool = fee - protocol - owner
    expected = {MOWNER: 20 * owner, C1: 20 * (pool * 7500 // 10_000),
                C2: 20 * (pool * 2500 // 10_000)}
    for who, amount in expected.items():
        assert client.rpc("openledger_getAccount", [addr[who]])["earnings"] == str(amount)
    assert client.rpc("openledger_getAccount", [TREASURY])["earnings"] == str(20 * protocol)
    assert client.rpc("openledger_getAccount", [addr[PAYER]])["escrow"] == str(E // 2 - 20 * fee)

    # Bad batches revert with a clear reason and move nothing.
    def refused(items: list[tuple[Any, ...]], reason: str) -> None:
        """Refused at estimation (nothing sent); then mined anyway: it reverts on chain with
        the same reason and moves nothing but the worker's gas."""
        before = {i: balance(i) for i in range(8)}
        account = client.rpc("openledger_getAccount", [addr[PAYER]])
        data = settle.encode_call(items)
        with pytest.raises(CliError, match=reason):
            client.transact(worker_key, SETTLEMENT_ADDRESS, data)
        assert {i: balance(i) for i in range(8)} == before
        tx = Account.sign_transaction({
            "type": 2, "chainId": chain_id, "to": "0x" + SETTLEMENT_ADDRESS.hex(), "data": data,
            "value": 0, "gas": 2_000_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
            "nonce": int(client.rpc("eth_getTransactionCount", [addr[WORKER], "pending"]), 16),
        }, worker_key)
        tx_hash = client.rpc("eth_sendRawTransaction", ["0x" + bytes(tx.raw_transaction).hex()])
        mined, deadline = None, time.monotonic() + 60
        while mined is None and time.monotonic() < deadline:
            mined = client.rpc("eth_getTransactionReceipt", [tx_hash])
            time.sleep(0.05)
        assert mined is not None and mined["status"] == "0x0" and mined["logs"] == []
        before[WORKER] -= gas_paid(tx_hash)
        paid[WORKER] += gas_paid(tx_hash)
        assert {i: balance(i) for i in range(8)} == before
        assert client.rpc("openledger_getAccount", [addr[PAYER]]) == account

    refused([signed(100, fee, (cids[0], cids[1]), key=keystore["keys"][C3])], "bad signature")
    refused([signed(3, fee, (cids[0], cids[1]))], "already settled")
    refused([signed(101, fee, (cids[0], 9999))], "unknown contribution 9999")
    refused([signed(102, fee, (cids[0], cids[2]))], "not in a datanet version")
    refused([signed(103 + n, 10**17, (cids[0], cids[1])) for n in range(4)], "escrow exhausted")
    protocol_total = 20 * protocol

    # The same through the CLI: the payer signs two receipts, the worker settles the file.
    receipts_file = tmp_path / "receipts.jsonl"
    for nonce in (20, 21):
        out = run(capsys, node, keystore, PAYER, "escrow", "sign", "--worker", addr[WORKER],
                  "--model", str(model["id"]), "--input-tokens", "600", "--output-tokens", "400",
                  "--nonce", str(nonce), "--attribution", f"{cids[0]}:7500",
                  "--attribution", f"{cids[1]}:2500", "--fee", "10000000000000000wei",
                  "--out", str(receipts_file))
        assert out["fee"] == str(fee) and out["nonce"] == str(nonce)
    settled = run(capsys, node, keystore, WORKER, "escrow", "settle", str(receipts_file))
    assert settled == {"settled": 2, "totalFees": str(2 * fee), "tx": settled["tx"]}
    paid[WORKER] += gas_paid(settled["tx"])
    expected = {who: amount * 22 // 20 for who, amount in expected.items()}
    protocol_total = 22 * protocol
    assert "already settled" in failing(capsys, node, keystore, WORKER, "escrow", "settle",
                                        str(receipts_file))

    # Contributors and the model owner withdraw exactly what they earned.
    for who in (C1, C2, MOWNER):
        out = run(capsys, node, keystore, who, "escrow", "claim")
        assert out["claimed"] == str(expected[who])
        paid[who] += gas_paid(out["tx"])
    withdrawn = run(capsys, node, keystore, PAYER, "escrow", "withdraw", "0.1")
    paid[PAYER] += gas_paid(withdrawn["tx"])

    stake, fee_each = E, E // 10
    final = {
        # OWNER is also the devnet's treasury: C3's forfeited half lands there.
        OWNER: start[OWNER] - paid[OWNER] + 3 * fee_each + stake // 2,
        CURATOR: start[CURATOR] - paid[CURATOR],
        C1: start[C1] - paid[C1] - stake - fee_each + expected[C1],
        C2: start[C2] - paid[C2] - stake - fee_each + expected[C2],
        C3: start[C3] - paid[C3] - stake - fee_each + stake // 2,
        MOWNER: start[MOWNER] - paid[MOWNER] + expected[MOWNER],
        PAYER: start[PAYER] - paid[PAYER] - E // 2 + E // 10,  # escrow left: 0.18 OPEN
        WORKER: start[WORKER] - paid[WORKER],
    }
    assert {i: balance(i) for i in range(8)} == final
    assert balance("0x" + DATANETS_ADDRESS.hex()) == 2 * stake  # accepted stakes stay locked
    total_held = E // 2 - 22 * fee + protocol_total - E // 10
    assert balance("0x" + SETTLEMENT_ADDRESS.hex()) == total_held
    assert client.call(DATANETS, DATANETS_ADDRESS, "getVersion", datanet, 1)[0] == 2


def _plain(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def test_content_store_limits_over_rpc(node: NodeProcess) -> None:
    client = ChainClient(node.url)
    # Over 5 MB: refused by the store (or, hex-encoded, already by the server's body limit).
    with pytest.raises(CliError, match=r"limit|too large"):
        client.rpc("openledger_putContent", ["0x" + "00" * (5 * 1024 * 1024 + 1)])
    big = bytes(range(256)) * (2 * 1024 * 4)  # 2 MiB
    stored = client.rpc("openledger_putContent", ["0x" + big.hex()])
    assert stored["size"] == len(big)
    assert client.rpc("openledger_getContent", [stored["hash"]]) == "0x" + big.hex()
    with pytest.raises(CliError, match="empty"):
        client.rpc("openledger_putContent", ["0x"])
    with pytest.raises(CliError, match="not found"):
        client.rpc("openledger_getContent", ["0x" + "11" * 32])
    info = client.rpc("openledger_protocolInfo")
    assert info["datanets"].lower() == "0x" + DATANETS_ADDRESS.hex()


def test_escrow_withdrawal_with_an_unlock_period(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 keystore: dict[str, Any]) -> None:
    """A devnet whose genesis sets `datanets.escrow_unlock_blocks`: withdrawing takes two runs."""
    home = tmp_path / "locked"
    home.mkdir()
    genesis = devnet_genesis(accounts=8, timestamp=int(time.time()))
    genesis = dataclasses.replace(genesis, params={**genesis.params,
                                                   "datanets.escrow_unlock_blocks": 2})
    genesis.save(home / "genesis.json")
    proc = devnet_process(home).start()
    try:
        run(capsys, proc, keystore, PAYER, "escrow", "deposit", "1")
        first = run(capsys, proc, keystore, PAYER, "escrow", "withdraw", "0.4")
        assert first["requested"] == str(4 * E // 10)
        assert "locked until block" in failing(capsys, proc, keystore, PAYER, "escrow",
                                               "withdraw", "0.4")
        run(capsys, proc, keystore, PAYER, "escrow", "deposit", "0.1")  # one more block
        done = run(capsys, proc, keystore, PAYER, "escrow", "withdraw", "0.4")
        assert done["withdrawn"] == str(4 * E // 10) and done["escrow"] == str(7 * E // 10)
    finally:
        proc.stop()
