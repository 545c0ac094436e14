"""The economy of intelligence end to end: data in, a model registered on it, inference served,
contributors paid by attribution.

A real devnet process starts the OpenLoRA worker beside it (`--with-lora`, a tiny random Llama,
no downloads). Three contributors add files to a datanet, the curator accepts them and cuts a
version, a model owner registers a tiny PEFT adapter on that version under its content hash
(`openledger lora hash`), the worker loads it (checked against the registry) and serves two
completions through the OpenAI API. Each receipt's attribution weights come from the node's
`openledger_attribute`; the payer deposits escrow, authorises the worker and signs the receipts
(EIP-712); the worker settles both in one transaction; model owner, contributors and treasury
earn exactly the fee split by those weights, collect it to the wei, and a replayed batch is
refused and moves nothing.

The contributions hold pieces of what the adapter will answer (computed here with peft, greedy),
so the node finds reuse in the worker's real outputs: the first answer's halves are in the first
and second contribution, the second answer's halves in the second and third.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from datanets.attribution import AttributionIndex
from datanets.receipts import sign_receipt
from datanets.receipts import to_json as receipt_to_json
from genesis.presets import dev_accounts
from openledger_node import cli
from openledger_node.commands.datanet import ChainClient
from openledger_node.config import NodeConfig
from openlora.attribution import CONTRIBUTIONS_FILE, ContributionsFileAttributor, NodeAttributor
from openlora.receipts import InferenceReceipt
from openlora.registry import JsonRpcRegistryClient, RegistryError, parse_weights
from tests.openlora.factories import byte_tokenizer, make_adapter, save_base, tiny_llama
from tests.utils.processes import NodeProcess, devnet_process, free_port

E = 10**18
TREASURY, OWNER, C1, C2, C3, MOWNER, PAYER, WORKER = range(8)  # dev account 0: the treasury
PROMPTS = ("Summarise the clinical notes:", "What does the datanet say?")
MAX_TOKENS = 32
PRICE = 10**15  # wei of OPEN per 1,000 tokens (0.001 OPEN)
OWNER_SHARE_BPS = 2000
PROTOCOL_FEE_BPS = 500  # the devnet's genesis parameter
_TOKEN = re.compile(r"\w+|[^\w\s]")  # the attribution engine's tokens


def _greedy(base: Path, adapter: Path, prompt: str) -> str:
    """What the adapter answers ``prompt`` (greedy, EOS ignored), through peft alone."""
    from peft import PeftModel
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(base)
    model = PeftModel.from_pretrained(tiny_llama(0), adapter).eval()
    ids = list(tokenizer(prompt).input_ids)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(MAX_TOKENS):
            out.append(int(model(torch.tensor([ids + out])).logits[0, -1].argmax()))
    return str(tokenizer.decode(out, skip_special_tokens=True))


def _halves(text: str) -> tuple[str, str]:
    """Split at the start of the middle engine token, so each half keeps whole tokens."""
    starts = [m.start() for m in _TOKEN.finditer(text)]
    assert len(starts) >= 10, f"too short an answer to attribute: {text!r}"
    cut = starts[len(starts) // 2]
    return text[:cut], text[cut:]


@pytest.fixture
def keystore(tmp_path: Path) -> dict[str, Any]:
    base = tmp_path / "keys"
    base.mkdir()
    password = base / "password"
    password.write_text("correct horse battery staple\n")
    accounts = dev_accounts(8)
    for i, acct in enumerate(accounts):
        key_file = base / f"key{i}"
        key_file.write_text(acct.private_key.hex())
        assert cli.main(["keys", "import", "--private-key-file", str(key_file), "--password-file",
                         str(password), "--keystore-dir", str(base / "ks"), "--light-kdf",
                         "--json"]) == 0
    return {"dir": str(base / "ks"), "password": str(password),
            "addresses": [a.address for a in accounts], "keys": [a.private_key for a in accounts]}


@pytest.fixture
def node_with_worker(tmp_path: Path) -> Iterator[tuple[NodeProcess, str, Path]]:
    """A devnet whose OpenLoRA worker (tiny base model) starts beside it, checking adapters
    and attributing outputs over the node's JSON-RPC."""
    base = save_base(tmp_path / "tiny-llama")
    home = tmp_path / "devnet"
    lora_port = free_port()
    NodeConfig(home=home, lora_base_model=str(base), lora_port=lora_port,
               lora_args=("--threads", "1", "--max-rank", "8")).save()
    node = devnet_process(home, "--with-lora").start()
    try:
        yield node, f"http://127.0.0.1:{lora_port}", base
    finally:
        node.stop()


def _wait_for_worker(url: str, node: NodeProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.25)
    raise TimeoutError(f"no worker at {url}:\n{node.log()}")


@pytest.mark.e2e
@pytest.mark.slow
def test_inference_settles_to_contributors(node_with_worker: tuple[NodeProcess, str, Path],
                                           keystore: dict[str, Any], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    node, worker_url, base = node_with_worker
    client = ChainClient(node.url)
    addr = keystore["addresses"]

    def run(who: int, *argv: str) -> Any:
        code = cli.main([*argv, "--from", addr[who], "--keystore-dir", keystore["dir"],
                         "--password-file", keystore["password"], "--rpc", node.url, "--json"])
        out = capsys.readouterr()
        assert code == 0, out.err
        return json.loads(out.out)

    def balance(who: int) -> int:
        return int(client.rpc("eth_getBalance", [addr[who], "latest"]), 16)

    def gas_paid(tx: str) -> int:
        r = client.rpc("eth_getTransactionReceipt", [tx])
        return int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)

    def earnings(who: int) -> int:
        return int(client.rpc("openledger_getAccount", [addr[who]])["earnings"])

    # The adapter, and what it will answer (so the data can hold pieces of its answers).
    adapter = make_adapter(tiny_llama(0), tmp_path / "build" / "clinical-lora", seed=7, rank=4)
    first, second = (_halves(_greedy(base, adapter, p)) for p in PROMPTS)
    texts = [f"Ward round notes.\n{first[0]}\n",
             f"Discharge summary.\n{first[1]}\nFollow-up.\n{second[0]}\n",
             f"Lab results.\n{second[1]}\n"]

    # Data: a datanet, three contributors, all accepted, a version.
    datanet = run(OWNER, "datanet", "create", "--name", "clinical-notes", "--metadata-uri",
                  "ipfs://notes", "--stake", "0.5", "--fee", "0.01")["id"]
    cids = []
    for i, who in enumerate((C1, C2, C3)):
        f = tmp_path / f"contribution{i}.txt"
        f.write_text(texts[i])
        cids.append(run(who, "datanet", "contribute", str(datanet), str(f))["id"])
    for cid in cids:
        assert run(OWNER, "datanet", "accept", str(datanet), str(cid))["status"] == "accepted"
    version = run(OWNER, "datanet", "version", str(datanet))["version"]

    # The model: the adapter's content hash, registered on that version.
    assert cli.main(["lora", "hash", str(adapter)]) == 0
    adapter_hash = capsys.readouterr().out.strip()
    model = run(MOWNER, "model", "register", "--base-model", "tiny-llama", "--adapter-hash",
                adapter_hash, "--datanet", f"{datanet}:{version}", "--price", f"{PRICE}wei",
                "--owner-share-bps", str(OWNER_SHARE_BPS))
    model_id = model["id"]
    assert client.rpc("openledger_getModel", [model_id])["adapterHash"] == adapter_hash

    # The worker beside the node loads the adapter under its chain model id (hash checked).
    _wait_for_worker(worker_url, node)
    adapters_dir = node.home / "adapters"
    shutil.copytree(adapter, adapters_dir / "clinical-lora")
    http = httpx.Client(base_url=worker_url, timeout=60)
    loaded = http.post("/v1/load_lora_adapter",
                       json={"lora_name": "clinical-lora", "model_id": str(model_id)})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["content_hash"] == adapter_hash
    shutil.copytree(adapter, adapters_dir / "tampered")  # same weights, an edited config
    with open(adapters_dir / "tampered" / "adapter_config.json", "a") as fh:
        fh.write("\n")
    refused = http.post("/v1/load_lora_adapter",
                        json={"lora_name": "tampered", "model_id": str(model_id)})
    assert refused.status_code >= 400 and "differs" in refused.text

    # Inference through the OpenAI client, naming the adapter.
    from openai import OpenAI

    openai = OpenAI(base_url=worker_url + "/v1", api_key="unused", timeout=60)
    receipts: list[InferenceReceipt] = []
    index = AttributionIndex(dict(zip(cids, texts, strict=True)))
    for prompt in PROMPTS:
        out = openai.completions.create(model="clinical-lora", prompt=prompt,
                                        max_tokens=MAX_TOKENS, temperature=0,
                                        extra_body={"ignore_eos": True})
        receipt = InferenceReceipt.from_dict((out.model_extra or {})["openledger_receipt"])
        text = out.choices[0].text
        assert receipt.model_id == str(model_id) and receipt.adapter_hash == adapter_hash
        assert receipt.fee == (receipt.prompt_tokens + receipt.completion_tokens) * PRICE // 1000
        assert receipt.fee > 0 and receipt.completion_tokens == MAX_TOKENS
        # The node's weights: the engine over the version's contents, reproducible here.
        weights = {int(c): w for c, w in receipt.attribution.items()}
        assert weights == index.attribute(text).weights
        assert weights == parse_weights(str(model_id), client.rpc(
            "openledger_attribute", [model_id, text]))
        receipts.append(receipt)
    assert set(receipts[0].attribution) == {str(cids[0]), str(cids[1])}
    assert set(receipts[1].attribution) == {str(cids[1]), str(cids[2])}
    listed = http.get("/v1/receipts").json()
    assert {r["receipt_id"] for r in listed["data"]} >= {r.receipt_id for r in receipts}
    on_disk = (node.home / "inference_receipts.jsonl").read_text().splitlines()
    assert {InferenceReceipt.from_json(line).receipt_id for line in on_disk} >= {
        r.receipt_id for r in receipts}
    http.close()

    # The payer funds an escrow, authorises the worker and signs the receipts (EIP-712).
    run(PAYER, "escrow", "deposit", "0.01")
    run(PAYER, "escrow", "authorize", addr[WORKER])
    chain_id = int(client.rpc("eth_chainId"), 16)
    payer, worker = (bytes.fromhex(addr[i][2:]) for i in (PAYER, WORKER))
    signed = [sign_receipt(r.to_chain_receipt(payer, worker), keystore["keys"][PAYER], chain_id)
              for r in receipts]
    batch = tmp_path / "signed.jsonl"
    batch.write_text("".join(json.dumps(receipt_to_json(r)) + "\n" for r in signed))

    # Expected: protocol first, the owner's share of the rest, contributors by weight, dust to
    # the owner (datanets.settlement_rules.split_fee), summed over the batch.
    contributor_of = dict(zip(cids, (C1, C2, C3), strict=True))
    expected = dict.fromkeys((TREASURY, MOWNER, C1, C2, C3), 0)
    for r in signed:
        protocol = r.fee * PROTOCOL_FEE_BPS // 10_000
        owner = (r.fee - protocol) * OWNER_SHARE_BPS // 10_000
        pool = r.fee - protocol - owner
        shares = {cid: pool * w // 10_000 for cid, w in zip(r.contribution_ids, r.weights,
                                                             strict=True)}
        expected[TREASURY] += protocol
        expected[MOWNER] += owner + pool - sum(shares.values())
        for cid, amount in shares.items():
            expected[contributor_of[cid]] += amount
    assert all(expected[who] > 0 for who in (C1, C2, C3))
    assert sum(expected.values()) == sum(r.fee for r in signed)

    # The worker settles the batch in one transaction.
    before = {who: earnings(who) for who in expected}
    escrow_before = int(client.rpc("openledger_getAccount", [addr[PAYER]])["escrow"])
    worker_balance = balance(WORKER)
    settled = run(WORKER, "escrow", "settle", str(batch))
    assert settled["settled"] == 2 and int(settled["totalFees"]) == sum(r.fee for r in signed)
    tx = client.rpc("eth_getTransactionReceipt", [settled["tx"]])
    assert tx["status"] == "0x1" and len(tx["logs"]) == 2
    assert {who: earnings(who) - before[who] for who in expected} == expected
    assert int(client.rpc("openledger_getAccount", [addr[PAYER]])["escrow"]) == (
        escrow_before - sum(r.fee for r in signed))
    assert balance(WORKER) == worker_balance - gas_paid(settled["tx"])

    # A replayed batch is refused and moves nothing.
    state = {who: earnings(who) for who in expected}
    code = cli.main(["escrow", "settle", str(batch), "--from", addr[WORKER], "--keystore-dir",
                     keystore["dir"], "--password-file", keystore["password"], "--rpc", node.url])
    assert code == 1 and "already settled" in capsys.readouterr().err
    assert {who: earnings(who) for who in expected} == state

    # Model owner and contributors collect exactly what they earned.
    for who in (MOWNER, C1, C2, C3):
        start = balance(who)
        claimed = run(who, "escrow", "claim")
        assert int(claimed["claimed"]) == state[who]
        assert balance(who) == start + state[who] - gas_paid(claimed["tx"])
        assert earnings(who) == 0


def test_node_attribution_falls_back_to_the_adapter_file(tmp_path: Path) -> None:
    """Without a reachable node the worker uses the adapter's contributions.jsonl; malformed
    weights from a node are refused rather than put in a receipt."""
    from tests.openlora.helpers import tiny_worker

    root = tmp_path / "adapters"
    make_adapter(tiny_llama(0), root / "7", seed=3, rank=4)
    (root / "7" / CONTRIBUTIONS_FILE).write_text(
        json.dumps({"id": 5, "text": "the quick brown fox jumps over the lazy dog"}) + "\n")
    store = tiny_worker(byte_tokenizer(), root).engine.store
    dead = JsonRpcRegistryClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    attributor = NodeAttributor(store, dead, ContributionsFileAttributor(store))
    assert attributor.weights("7", "so the quick brown fox jumps") == {5: 10_000}
    with pytest.raises(RegistryError):
        dead.attribute("7", "text")
    assert parse_weights("7", {"weights": {"3": 7500, "9": 2500}}) == {3: 7500, 9: 2500}
    assert parse_weights("7", {"weights": {}}) == {}
    for bad in ({"weights": {"3": 7000}}, {"weights": {"3": 0, "4": 10_000}}, {"no": 1}, None):
        with pytest.raises(RegistryError):
            parse_weights("7", bad)
    # A receipt whose output reused nothing cannot become a settlement receipt.
    empty = InferenceReceipt(receipt_id="0x" + "11" * 32, model="7", model_id="7",
                             adapter_hash=None, base_model="tiny-llama", prompt_hash="0x",
                             output_hash="0x", prompt_tokens=3, completion_tokens=4,
                             price_per_1k_tokens=1000, fee=7, finish_reason="length", created=0)
    with pytest.raises(ValueError, match="no attribution"):
        empty.to_chain_receipt(b"\x01" * 20, b"\x02" * 20)
    with pytest.raises(ValueError, match="sum to 9000"):
        InferenceReceipt.from_dict({**empty.to_dict(), "attribution": {"5": 9000}}
                                   ).to_chain_receipt(b"\x01" * 20, b"\x02" * 20)
