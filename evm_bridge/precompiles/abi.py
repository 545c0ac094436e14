"""The ABI of the native precompiles: functions, events, structs, in Solidity's words.

One spec drives call dispatch (selectors, argument decoding, return encoding), logs (topics
from the event signatures), the JSON ABI files under `abi/` and the checks against the Solidity interfaces under
`solidity/`, so clients (ethers, viem, web3.py, Solidity) decode everything with them.
Regenerate the files with
`python -c "from evm_bridge.precompiles.abi import write_abi_files; write_abi_files()"`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

ABI_DIR = Path(__file__).with_name("abi")
ERROR_SELECTOR = bytes.fromhex("08c379a0")

# Structs referred to by name in signatures.
STRUCTS: dict[str, list[tuple[str, str]]] = {
    "Receipt": [
        ("uint256", "modelId"), ("address", "payer"), ("uint64", "inputTokens"),
        ("uint64", "outputTokens"), ("uint256", "fee"), ("uint256", "nonce"),
        ("uint256[]", "contributionIds"), ("uint16[]", "weights"), ("uint8", "v"),
        ("bytes32", "r"), ("bytes32", "s"),
    ],
}


def _params(text: str) -> list[tuple[str, str, bool]]:
    """'uint256 indexed id, string name' -> [(type, name, indexed)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        words = part.split()
        out.append((words[0], words[-1] if len(words) > 1 else "", "indexed" in words[1:-1]))
    return out


def canonical(solidity_type: str) -> str:
    """The ABI type string, structs expanded: 'Receipt[]' -> '(uint256,...)[]'."""
    base, suffix = re.fullmatch(r"(\w+)((?:\[\d*\])*)", solidity_type).groups()  # type: ignore[union-attr]
    if base in STRUCTS:
        return "(" + ",".join(canonical(t) for t, _ in STRUCTS[base]) + ")" + suffix
    return solidity_type


def _json_param(solidity_type: str, name: str) -> dict[str, Any]:
    base, suffix = re.fullmatch(r"(\w+)((?:\[\d*\])*)", solidity_type).groups()  # type: ignore[union-attr]
    if base in STRUCTS:
        return {
            "name": name, "type": "tuple" + suffix, "internalType": f"struct {solidity_type}",
            "components": [_json_param(t, n) for t, n in STRUCTS[base]],
        }
    return {"name": name, "type": solidity_type, "internalType": solidity_type}


@dataclass(frozen=True)
class Function:
    name: str
    inputs: list[tuple[str, str, bool]]
    outputs: list[tuple[str, str, bool]]
    mutability: str  # view | nonpayable | payable

    @property
    def input_types(self) -> list[str]:
        return [canonical(t) for t, _, _ in self.inputs]

    @property
    def output_types(self) -> list[str]:
        return [canonical(t) for t, _, _ in self.outputs]

    @property
    def selector(self) -> bytes:
        return keccak(f"{self.name}({','.join(self.input_types)})".encode())[:4]

    def decode(self, data: bytes) -> tuple[Any, ...]:
        return tuple(abi_decode(self.input_types, data))

    def encode_output(self, values: tuple[Any, ...]) -> bytes:
        return abi_encode(self.output_types, values)

    def decode_output(self, data: bytes) -> tuple[Any, ...]:
        return tuple(abi_decode(self.output_types, data))

    def encode_call(self, *args: Any) -> bytes:
        return self.selector + abi_encode(self.input_types, args)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "function", "name": self.name, "stateMutability": self.mutability,
            "inputs": [_json_param(t, n) for t, n, _ in self.inputs],
            "outputs": [_json_param(t, n) for t, n, _ in self.outputs],
        }


@dataclass(frozen=True)
class Event:
    name: str
    params: list[tuple[str, str, bool]]

    @property
    def topic0(self) -> int:
        sig = f"{self.name}({','.join(canonical(t) for t, _, _ in self.params)})"
        return int.from_bytes(keccak(sig.encode()), "big")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "event", "name": self.name, "anonymous": False,
            "inputs": [{**_json_param(t, n), "indexed": ix} for t, n, ix in self.params],
        }


def function(signature: str, mutability: str = "nonpayable") -> Function:
    m = re.fullmatch(r"(\w+)\((.*?)\)(?:\s*returns\s*\((.*)\))?", signature.strip())
    if m is None:
        raise ValueError(f"bad signature {signature!r}")
    return Function(m[1], _params(m[2]), _params(m[3] or ""), mutability)


def event(signature: str) -> Event:
    m = re.fullmatch(r"(\w+)\((.*)\)", signature.strip())
    if m is None:
        raise ValueError(f"bad event {signature!r}")
    return Event(m[1], _params(m[2]))


@dataclass(frozen=True)
class Interface:
    """One precompile's ABI."""

    name: str
    functions: list[Function]
    events: list[Event]

    def function(self, name: str) -> Function:
        return next(f for f in self.functions if f.name == name)

    def event(self, name: str) -> Event:
        return next(e for e in self.events if e.name == name)

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.functions] + [e.to_json() for e in self.events]


V, P = "view", "payable"

DATANETS = Interface("IDatanets", [
    function("createDatanet(string name, string metadataUri, address[] curators, "
             "uint256 stake, uint256 fee, uint16 rejectForfeitBps, uint256 curatorBond, "
             "uint256 challengeBond) returns (uint256 datanetId)"),
    function("updateDatanet(uint256 datanetId, string metadataUri, uint256 stake, uint256 fee, "
             "uint16 rejectForfeitBps, uint256 curatorBond, uint256 challengeBond)"),
    function("addCurator(uint256 datanetId, address curator)"),
    function("removeCurator(uint256 datanetId, address curator)"),
    function("contribute(uint256 datanetId, bytes32 contentHash, uint64 size, "
             "string metadataUri) returns (uint256 contributionId)", P),
    function("accept(uint256 contributionId) returns (uint256 acceptIndex)", P),
    function("reject(uint256 contributionId) returns (uint256 forfeited)"),
    function("challenge(uint256 contributionId)", P),
    function("resolveChallenge(uint256 contributionId, bool upheld) returns (uint256 moved)"),
    function("releaseStake(uint256 contributionId)"),
    function("createVersion(uint256 datanetId) returns (uint256 version)"),
    function("datanetCount() returns (uint256 count)", V),
    function("contributionCount() returns (uint256 count)", V),
    function("getDatanet(uint256 datanetId) returns (address owner, string name, "
             "string metadataUri, uint256 stake, uint256 fee, uint256 contributionCount, "
             "uint256 acceptedCount, uint256 versionCount)", V),
    function("getDatanetRules(uint256 datanetId) returns (uint16 rejectForfeitBps, "
             "uint256 curatorBond, uint256 challengeBond)", V),
    function("isCurator(uint256 datanetId, address account) returns (bool curator)", V),
    function("getContribution(uint256 contributionId) returns (uint256 datanetId, "
             "address contributor, bytes32 contentHash, uint64 size, uint8 status, "
             "uint256 stake, address curator, uint256 acceptIndex)", V),
    function("getContributionMetadataUri(uint256 contributionId) returns (string uri)", V),
    function("datanetContributions(uint256 datanetId, uint256 offset, uint256 limit) "
             "returns (uint256[] contributionIds)", V),
    function("getVersion(uint256 datanetId, uint256 version) returns (uint256 acceptedCount, "
             "bytes32 root, uint256 blockNumber)", V),
    function("versionContains(uint256 datanetId, uint256 version, uint256 contributionId) "
             "returns (bool contained)", V),
], [
    event("DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, "
          "string metadataUri)"),
    event("DatanetUpdated(uint256 indexed datanetId)"),
    event("CuratorAdded(uint256 indexed datanetId, address indexed curator)"),
    event("CuratorRemoved(uint256 indexed datanetId, address indexed curator)"),
    event("Contributed(uint256 indexed datanetId, uint256 indexed contributionId, "
          "address indexed contributor, bytes32 contentHash, uint64 size, uint256 stake)"),
    event("Accepted(uint256 indexed datanetId, uint256 indexed contributionId, "
          "address indexed curator, uint256 acceptIndex)"),
    event("Rejected(uint256 indexed datanetId, uint256 indexed contributionId, "
          "address indexed curator, uint256 forfeited)"),
    event("Challenged(uint256 indexed contributionId, address indexed challenger, "
          "uint256 bond)"),
    event("ChallengeResolved(uint256 indexed contributionId, bool upheld, uint256 moved)"),
    event("StakeReleased(uint256 indexed contributionId, address indexed contributor, "
          "uint256 stake)"),
    event("VersionCreated(uint256 indexed datanetId, uint256 indexed version, "
          "uint256 acceptedCount, bytes32 root)"),
])

MODELS = Interface("IModelRegistry", [
    function("registerModel(string baseModel, bytes32 adapterHash, uint256[] datanetIds, "
             "uint256[] versions, uint256 pricePer1kTokens, uint16 ownerShareBps) "
             "returns (uint256 modelId)"),
    function("setPrice(uint256 modelId, uint256 pricePer1kTokens)"),
    function("retireModel(uint256 modelId)"),
    function("modelCount() returns (uint256 count)", V),
    function("getModel(uint256 modelId) returns (address owner, string baseModel, "
             "bytes32 adapterHash, uint256 pricePer1kTokens, uint16 ownerShareBps, "
             "bool retired, uint256[] datanetIds, uint256[] versions)", V),
], [
    event("ModelRegistered(uint256 indexed modelId, address indexed owner, "
          "bytes32 adapterHash)"),
    event("ModelPriceUpdated(uint256 indexed modelId, uint256 pricePer1kTokens)"),
    event("ModelRetired(uint256 indexed modelId)"),
])

SETTLEMENT = Interface("IAttribution", [
    function("deposit() returns (uint256 escrow)", P),
    function("requestWithdrawal(uint256 amount) returns (uint256 unlockBlock)"),
    function("withdrawEscrow(uint256 amount)"),
    function("authorize(address worker, bool allowed)"),
    function("settle(Receipt[] receipts) returns (uint256 totalFees)"),
    function("withdrawEarnings() returns (uint256 amount)"),
    function("escrowOf(address payer) returns (uint256 amount)", V),
    function("earningsOf(address account) returns (uint256 amount)", V),
    function("pendingWithdrawal(address payer) returns (uint256 amount, uint256 unlockBlock)", V),
    function("isAuthorized(address payer, address worker) returns (bool allowed)", V),
    function("receiptUsed(address payer, uint256 nonce) returns (bool used)", V),
    function("protocolFeeBps() returns (uint256 bps)", V),
    function("treasury() returns (address account)", V),
    function("escrowUnlockBlocks() returns (uint256 blocks)", V),
], [
    event("Deposited(address indexed payer, uint256 amount)"),
    event("WithdrawalRequested(address indexed payer, uint256 amount, uint256 unlockBlock)"),
    event("EscrowWithdrawn(address indexed payer, uint256 amount)"),
    event("WorkerAuthorized(address indexed payer, address indexed worker, bool allowed)"),
    event("ReceiptSettled(address indexed payer, uint256 indexed modelId, "
          "uint256 indexed nonce, address worker, uint256 fee)"),
    event("EarningsWithdrawn(address indexed account, uint256 amount)"),
])

INTERFACES = (DATANETS, MODELS, SETTLEMENT)


def error_data(reason: str) -> bytes:
    """Revert data of Solidity's Error(string)."""
    return ERROR_SELECTOR + abi_encode(["string"], [reason])


def load_abi(name: str) -> list[dict[str, Any]]:
    """A shipped ABI file (`IDatanets`, `IModelRegistry`, `IAttribution`)."""
    return json.loads((ABI_DIR / f"{name}.json").read_text())  # type: ignore[no-any-return]


def write_abi_files() -> None:
    ABI_DIR.mkdir(exist_ok=True)
    for iface in INTERFACES:
        (ABI_DIR / f"{iface.name}.json").write_text(json.dumps(iface.to_json(), indent=2) + "\n")
