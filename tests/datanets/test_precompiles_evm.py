"""The precompiles on real py-evm: signed transactions through the node's block builder,
balances, logs, revert reasons, STATICCALL and DELEGATECALL refusal, a Solidity reader, and
the shipped ABIs matching both the Solidity interfaces and the dispatch spec."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from datanets import merkle
from datanets.receipts import sign_receipt
from datanets.types import Receipt
from evm_bridge.execution import revert_reason
from evm_bridge.precompiles import DATANETS_ADDRESS, MODELS_ADDRESS, SETTLEMENT_ADDRESS
from evm_bridge.precompiles.abi import DATANETS, INTERFACES, MODELS, SETTLEMENT, load_abi
from tests.datanets.evm_harness import TREASURY, EvmChain
from tests.datanets.solc import compile_sources, interface_sources

E = 10**18
OWNER, CURATOR, C1, C2, C3, MOWNER, PAYER, WORKER = range(8)


def hexaddr(b: bytes) -> str:
    return "0x" + b.hex()


def gas_cost(chain: EvmChain, receipt: Any) -> int:
    base_fee = chain.ledger.head.base_fee_per_gas
    return receipt.gas_used * (base_fee + 10**9)


def ok(result: tuple[Any, Any]) -> Any:
    receipt, computation = result
    assert computation.is_success, revert_reason(computation.output) or computation.error
    return receipt, computation


def failed(result: tuple[Any, Any]) -> str:
    _receipt, computation = result
    assert computation.is_error
    return revert_reason(computation.output)


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    """Three contributions (two accepted, one rejected), a version, a model, an escrow."""
    chain = EvmChain()
    a = chain.addresses
    ok(chain.transact(OWNER, DATANETS, DATANETS_ADDRESS, "createDatanet", "medical",
                      "ipfs://meta", [hexaddr(a[CURATOR])], E, E // 10, 5000, 0, E // 2))
    start = {i: chain.balance(a[i]) for i in range(8)}
    cids = []
    for i, who in enumerate((C1, C2, C3)):
        receipt, comp = ok(chain.transact(who, DATANETS, DATANETS_ADDRESS, "contribute", 1,
                                          keccak(bytes([i])), 1000 + i, f"ipfs://c{i}",
                                          value=E + E // 10))
        cids.append(abi_decode(["uint256"], comp.output)[0])
        assert chain.balance(a[who]) == start[who] - E - E // 10 - gas_cost(chain, receipt)
    ok(chain.transact(CURATOR, DATANETS, DATANETS_ADDRESS, "accept", cids[0]))
    ok(chain.transact(CURATOR, DATANETS, DATANETS_ADDRESS, "accept", cids[1]))
    before = chain.balance(a[C3])
    ok(chain.transact(CURATOR, DATANETS, DATANETS_ADDRESS, "reject", cids[2]))
    assert chain.balance(a[C3]) == before + E // 2  # half the stake forfeited
    assert chain.balance(TREASURY) == E // 2
    ok(chain.transact(OWNER, DATANETS, DATANETS_ADDRESS, "createVersion", 1))
    ok(chain.transact(MOWNER, MODELS, MODELS_ADDRESS, "registerModel", "smollm2-135m",
                      keccak(b"adapter"), [1], [1], 10**15, 2000))
    ok(chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS, "deposit", value=5 * E))
    ok(chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS, "authorize", hexaddr(a[WORKER]),
                      True))
    return {"chain": chain, "cids": cids}


def receipt_tuple(chain: EvmChain, nonce: int, fee: int, cids: tuple[int, ...],
                  weights: tuple[int, ...] = (6000, 4000), signer: int = PAYER,
                  model: int = 1) -> tuple[Any, ...]:
    a = chain.addresses
    r = sign_receipt(Receipt(model, a[PAYER], a[WORKER], 700, 300, fee, nonce, cids, weights),
                     chain.keys[signer], chain.chain_id)
    return (r.model_id, hexaddr(r.payer), r.input_tokens, r.output_tokens, r.fee, r.nonce,
            list(r.contribution_ids), list(r.weights), r.signature[64], r.signature[:32],
            r.signature[32:64])


def test_records_read_back_through_the_abi(world: dict[str, Any]) -> None:
    chain: EvmChain = world["chain"]
    a = chain.addresses
    owner, name, uri, stake, fee, count, accepted, versions = chain.call(
        DATANETS, DATANETS_ADDRESS, "getDatanet", 1)
    assert (owner.lower(), name, uri, stake, fee) == (hexaddr(a[OWNER]), "medical",
                                                      "ipfs://meta", E, E // 10)
    assert (count, accepted, versions) == (3, 2, 1)
    c = chain.call(DATANETS, DATANETS_ADDRESS, "getContribution", world["cids"][2])
    assert c[1].lower() == hexaddr(a[C3]) and c[4] == 3  # rejected
    assert chain.call(DATANETS, DATANETS_ADDRESS, "datanetContributions", 1, 0, 10) == (
        tuple(world["cids"]),)
    assert chain.call(DATANETS, DATANETS_ADDRESS, "versionContains", 1, 1, world["cids"][0]) == (
        True,)
    assert chain.call(DATANETS, DATANETS_ADDRESS, "versionContains", 1, 1, world["cids"][2]) == (
        False,)
    count, root, _ = chain.call(DATANETS, DATANETS_ADDRESS, "getVersion", 1, 1)
    assert count == 2 and root == merkle.merkle_root(
        [merkle.leaf(world["cids"][i], keccak(bytes([i]))) for i in range(2)])
    model = chain.call(MODELS, MODELS_ADDRESS, "getModel", 1)
    assert model[1] == "smollm2-135m" and model[2] == keccak(b"adapter") and model[6] == (1,)
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "escrowOf", hexaddr(a[PAYER])) == (5 * E,)
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "treasury")[0].lower() == hexaddr(TREASURY)


def test_logs_decode_with_the_event_signatures(world: dict[str, Any]) -> None:
    chain: EvmChain = world["chain"]
    receipt, _ = ok(chain.transact(C1, DATANETS, DATANETS_ADDRESS, "contribute", 1,
                                   keccak(b"log"), 77, "", value=E + E // 10))
    [log] = receipt.logs
    assert log.address == DATANETS_ADDRESS
    sig = "Contributed(uint256,uint256,address,bytes32,uint64,uint256)"
    assert log.topics[0] == int.from_bytes(keccak(sig.encode()), "big")
    assert log.topics[3] == int.from_bytes(chain.addresses[C1], "big")
    assert abi_decode(["bytes32", "uint64", "uint256"], log.data) == (keccak(b"log"), 77, E)


def test_batch_settles_and_every_party_gets_its_share(world: dict[str, Any]) -> None:
    chain: EvmChain = world["chain"]
    a = chain.addresses
    c1, c2 = world["cids"][:2]
    fee = 10**16
    batch = [receipt_tuple(chain, n, fee, (c1, c2)) for n in range(10)]
    receipt, comp = ok(chain.transact(WORKER, SETTLEMENT, SETTLEMENT_ADDRESS, "settle", batch))
    assert abi_decode(["uint256"], comp.output) == (10 * fee,)
    assert len(receipt.logs) == 10
    protocol = fee // 10
    owner = (fee - protocol) * 2000 // 10_000
    pool = fee - protocol - owner
    earnings = {who: chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "earningsOf", hexaddr(a[who]))[0]
                for who in (MOWNER, C1, C2)}
    assert earnings == {MOWNER: 10 * owner, C1: 10 * (pool * 6000 // 10_000),
                        C2: 10 * (pool * 4000 // 10_000)}
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "earningsOf", hexaddr(TREASURY)) == (
        10 * protocol,)
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "receiptUsed", hexaddr(a[PAYER]), 3) == (
        True,)
    before = chain.balance(a[C1])
    receipt, _ = ok(chain.transact(C1, SETTLEMENT, SETTLEMENT_ADDRESS, "withdrawEarnings"))
    assert chain.balance(a[C1]) == before + earnings[C1] - gas_cost(chain, receipt)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda ch, c: [receipt_tuple(ch, 500, 10**15, c, signer=C1)], "bad signature"),
        (lambda ch, c: [receipt_tuple(ch, 0, 10**15, c)], "already settled"),
        (lambda ch, c: [receipt_tuple(ch, 501, 10**15, (c[0], 999))], "unknown contribution 999"),
        (lambda ch, c: [receipt_tuple(ch, 502, 10**15, (c[0], c[2]))], "not in a datanet version"),
        (lambda ch, c: [receipt_tuple(ch, 503, 3 * E, c), receipt_tuple(ch, 504, 3 * E, c)],
         "escrow exhausted"),
    ],
)
def test_bad_receipts_revert_and_move_nothing(world: dict[str, Any], make: Any,
                                              reason: str) -> None:
    chain: EvmChain = world["chain"]
    if reason == "already settled":  # make sure nonce 0 has been settled
        chain.transact(WORKER, SETTLEMENT, SETTLEMENT_ADDRESS, "settle",
                       [receipt_tuple(chain, 0, 10**15, tuple(world["cids"][:2]))])
    a = chain.addresses
    watch = [a[i] for i in range(8)] + [SETTLEMENT_ADDRESS, DATANETS_ADDRESS, TREASURY]
    escrow = chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "escrowOf", hexaddr(a[PAYER]))
    before = {w: chain.balance(w) for w in watch}
    result = chain.transact(WORKER, SETTLEMENT, SETTLEMENT_ADDRESS, "settle",
                            make(chain, tuple(world["cids"][:2]) if "exhausted" in reason or
                                 "signature" in reason or "already" in reason
                                 else world["cids"]))
    assert reason in failed(result)
    assert result[0].logs == ()
    before[a[WORKER]] -= gas_cost(chain, result[0])
    assert {w: chain.balance(w) for w in watch} == before
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "escrowOf", hexaddr(a[PAYER])) == escrow


def test_clear_reasons_for_bad_calls(world: dict[str, Any]) -> None:
    chain: EvmChain = world["chain"]
    assert "not payable" in failed(chain.transact(C1, DATANETS, DATANETS_ADDRESS, "reject", 1,
                                                  value=1))
    assert "stake + fee" in failed(chain.transact(C1, DATANETS, DATANETS_ADDRESS, "contribute",
                                                  1, keccak(b"z"), 1, "", value=1))
    assert "unknown function selector" in failed(
        chain.mine([chain.sign(C1, DATANETS_ADDRESS, b"\xde\xad\xbe\xef")])[0])
    assert "malformed arguments" in failed(
        chain.mine([chain.sign(C1, DATANETS_ADDRESS, DATANETS.function("accept").selector)])[0])
    result = chain.raw_call(DATANETS_ADDRESS, DATANETS.function("getDatanet").encode_call(99))
    assert not result.success and "unknown datanet 99" in result.error
    # Out of gas inside the precompile: the whole call fails, nothing kept.
    _, comp = chain.transact(OWNER, DATANETS, DATANETS_ADDRESS, "createDatanet", "x", "", [], 0,
                             0, 0, 0, 0, gas=30_000)
    assert comp.is_error
    assert chain.call(DATANETS, DATANETS_ADDRESS, "datanetCount") == (1,)


def test_solidity_reads_records_and_static_and_delegate_calls_are_refused(
        world: dict[str, Any]) -> None:
    chain: EvmChain = world["chain"]
    source = (interface_sources() | {
        "DatanetReader.sol": (chain_dir() / "contracts" / "DatanetReader.sol").read_text()})
    out = compile_sources(source)["contracts"]["DatanetReader.sol"]["DatanetReader"]
    ok(chain.mine([chain.sign(OWNER, b"", bytes.fromhex(out["evm"]["bytecode"]["object"]))])[0])
    reader = keccak_create(chain.addresses[OWNER], chain.nonces[OWNER] - 1)
    abi = {f["name"]: f for f in out["abi"]}

    def call(name: str, *args: Any) -> tuple[Any, ...]:
        fn = abi[name]
        types = [i["type"] for i in fn["inputs"]]
        sel = keccak(f"{name}({','.join(types)})".encode())[:4]
        result = chain.raw_call(reader, sel + abi_encode(types, args))
        assert result.success, result.error
        return tuple(abi_decode([o["type"] for o in fn["outputs"]], result.output))

    owner, name, accepted = call("ownerAndName", 1)
    assert (owner.lower(), name, accepted) == (hexaddr(chain.addresses[OWNER]), "medical", 2)
    contributor, content_hash, status = call("contributorOf", world["cids"][0])
    assert contributor.lower() == hexaddr(chain.addresses[C1]) and status == 2
    assert content_hash == keccak(b"\x00")
    assert call("trainingSetSize", 1) == (2,)
    ok_, data = call("writeUnderStaticcall", 1)
    assert not ok_ and "STATICCALL" in revert_reason(data)
    ok_, data = call("viaDelegatecall", 1)
    assert not ok_ and "delegatecall" in revert_reason(data)


def chain_dir() -> Path:
    return Path(__file__).parent


def keccak_create(sender: bytes, nonce: int) -> bytes:
    return keccak(rlp.encode([sender, nonce]))[-20:]


def test_shipped_abis_match_the_spec_and_the_solidity_interfaces() -> None:
    compiled = compile_sources(interface_sources())["contracts"]
    for iface in INTERFACES:
        shipped = load_abi(iface.name)
        assert shipped == json.loads(json.dumps(iface.to_json())), f"regenerate {iface.name}"
        solidity = compiled[f"{iface.name}.sol"][iface.name]["abi"]

        def norm(entries: list[dict[str, Any]]) -> list[Any]:
            def strip(p: dict[str, Any]) -> dict[str, Any]:
                keep = {k: p[k] for k in ("name", "type", "indexed") if k in p}
                if "components" in p:
                    keep["components"] = [strip(c) for c in p["components"]]
                return keep
            return sorted(json.dumps({"type": e["type"], "name": e["name"],
                                      "mutability": e.get("stateMutability"),
                                      "inputs": [strip(p) for p in e.get("inputs", [])],
                                      "outputs": [strip(p) for p in e.get("outputs", [])]},
                                     sort_keys=True) for e in entries)
        assert norm(solidity) == norm(shipped), iface.name


def test_receipt_wire_formats_match_the_abi() -> None:
    from datanets import receipts as codec

    r = sign_receipt(Receipt(3, b"\x01" * 20, b"\x02" * 20, 10, 20, 999, 7, (4, 5),
                             (9000, 1000)), b"\x05" * 32, 1)
    assert codec.from_json(codec.to_json(r)) == r
    assert codec.settle_calldata([r, r]) == SETTLEMENT.function("settle").encode_call(
        [codec.abi_tuple(r), codec.abi_tuple(r)])
    with pytest.raises(ValueError, match="malformed"):
        codec.from_json({"modelId": 1})


def test_escrow_unlock_period_on_chain() -> None:
    chain = EvmChain(params={"datanets.escrow_unlock_blocks": 2})
    a = chain.addresses
    ok(chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS, "deposit", value=E))
    assert "request the withdrawal first" in failed(
        chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS, "withdrawEscrow", E))
    receipt, comp = ok(chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS,
                                      "requestWithdrawal", E))
    unlock = abi_decode(["uint256"], comp.output)[0]
    assert unlock == chain.ledger.head.block_number + 2
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "pendingWithdrawal", hexaddr(a[PAYER])) == (
        E, unlock)
    assert "locked until block" in failed(
        chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS, "withdrawEscrow", E))
    before = chain.balance(a[PAYER])
    receipt, _ = ok(chain.transact(PAYER, SETTLEMENT, SETTLEMENT_ADDRESS, "withdrawEscrow", E))
    assert chain.balance(a[PAYER]) == before + E - gas_cost(chain, receipt)
    assert chain.call(SETTLEMENT, SETTLEMENT_ADDRESS, "escrowUnlockBlocks") == (2,)


def test_ethers_decodes_logs_and_results_with_the_shipped_abi(world: dict[str, Any]) -> None:
    node = shutil.which("node")
    if node is None or not (Path(__file__).parents[1] / "js" / "node_modules" / "ethers").exists():
        pytest.skip("node and tests/js/node_modules/ethers are needed (make setup)")
    chain: EvmChain = world["chain"]
    receipt, _ = ok(chain.transact(C2, DATANETS, DATANETS_ADDRESS, "contribute", 1,
                                   keccak(b"ethers"), 4321, "ipfs://e", value=E + E // 10))
    result = chain.raw_call(DATANETS_ADDRESS, DATANETS.function("getDatanet").encode_call(1))
    request = {
        "abi": str(Path(__file__).parents[2] / "evm_bridge/precompiles/abi/IDatanets.json"),
        "logs": [{"topics": ["0x" + t.to_bytes(32, "big").hex() for t in log.topics],
                  "data": "0x" + log.data.hex()} for log in receipt.logs],
        "result": {"fn": "getDatanet", "data": "0x" + result.output.hex()},
    }
    out = subprocess.run([node, str(Path(__file__).parent / "decode_log.cjs")],
                         input=json.dumps(request), capture_output=True, text=True, check=True,
                         timeout=60)
    decoded = json.loads(out.stdout)
    [log] = decoded["logs"]
    assert log["name"] == "Contributed"
    datanet_id, cid, contributor, content_hash, size, stake = log["args"]
    assert (datanet_id, contributor.lower(), content_hash, size, stake) == (
        "1", hexaddr(chain.addresses[C2]), "0x" + keccak(b"ethers").hex(), "4321", str(E))
    assert decoded["result"][1] == "medical" and decoded["result"][3] == str(E)
    assert int(cid) > 3


def test_forfeited_stake_is_burned_when_the_genesis_says_so() -> None:
    chain = EvmChain(params={"datanets.slash_to": "burn"})
    ok(chain.transact(OWNER, DATANETS, DATANETS_ADDRESS, "createDatanet", "b", "", [], E, 0,
                      10_000, 0, 0))
    ok(chain.transact(C1, DATANETS, DATANETS_ADDRESS, "contribute", 1, keccak(b"b"), 1, "",
                      value=E))
    assert chain.balance(DATANETS_ADDRESS) == E
    before = chain.balance(chain.addresses[C1])
    ok(chain.transact(OWNER, DATANETS, DATANETS_ADDRESS, "reject", 1))
    assert chain.balance(DATANETS_ADDRESS) == 0  # the whole stake left circulation
    assert chain.balance(chain.addresses[C1]) == before and chain.balance(TREASURY) == 0
