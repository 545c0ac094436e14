"""Ethereum JSON-RPC encodings: quantities, data, addresses, block tags, and objects.

Follows ethereum/execution-apis: quantities are 0x-prefixed hex without leading zeros ("0x0"
for zero), data is 0x-prefixed hex of whole bytes, addresses are 20-byte data.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils import to_checksum_address

from openledger_node.rpc.errors import invalid_params

ZERO_ADDRESS = b"\x00" * 20


def quantity(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def address(value: bytes) -> str:
    return to_checksum_address(bytes(value))


def parse_quantity(value: Any, name: str = "quantity") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise invalid_params(f"invalid argument {name}: hex string without 0x prefix")
    digits = value[2:]
    if not digits:
        raise invalid_params(f"invalid argument {name}: hex string \"0x\"")
    try:
        return int(digits, 16)
    except ValueError:
        raise invalid_params(f"invalid argument {name}: invalid hex string") from None


def parse_data(value: Any, name: str = "data") -> bytes:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise invalid_params(f"invalid argument {name}: hex string without 0x prefix")
    digits = value[2:]
    if len(digits) % 2:
        raise invalid_params(f"invalid argument {name}: hex string of odd length")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise invalid_params(f"invalid argument {name}: invalid hex string") from None


def parse_address(value: Any, name: str = "address") -> bytes:
    raw = parse_data(value, name)
    if len(raw) != 20:
        raise invalid_params(f"invalid argument {name}: an address is 20 bytes")
    return raw


def parse_hash(value: Any, name: str = "hash") -> bytes:
    raw = parse_data(value, name)
    if len(raw) != 32:
        raise invalid_params(f"invalid argument {name}: a hash is 32 bytes")
    return raw


# -- objects ---------------------------------------------------------------------------------
def tx_type(tx: SignedTransactionAPI) -> int:
    type_id = getattr(tx, "type_id", None)
    return 0 if type_id is None else int(type_id)


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)


def format_transaction(
    tx: SignedTransactionAPI,
    header: Any = None,
    index: int | None = None,
) -> dict[str, Any]:
    """A transaction object; block fields are null while it is pending."""
    kind = tx_type(tx)
    out: dict[str, Any] = {
        "type": quantity(kind),
        "hash": data(tx.hash),
        "nonce": quantity(tx.nonce),
        "blockHash": data(header.hash) if header else None,
        "blockNumber": quantity(header.block_number) if header else None,
        "transactionIndex": quantity(index) if index is not None else None,
        "from": address(tx.sender),
        "to": address(tx.to) if tx.to else None,
        "value": quantity(tx.value),
        "gas": quantity(tx.gas),
        "input": data(tx.data),
        "v": quantity(tx.v if kind == 0 else tx.y_parity),  # type: ignore[attr-defined]
        "r": quantity(tx.r),
        "s": quantity(tx.s),
    }
    if tx.chain_id is not None:
        out["chainId"] = quantity(tx.chain_id)
    if kind == 0:
        out["gasPrice"] = quantity(tx.gas_price)
    else:
        out["yParity"] = quantity(tx.y_parity)
        out["accessList"] = [
            {"address": address(a), "storageKeys": [data(k.to_bytes(32, "big")) for k in keys]}
            for a, keys in tx.access_list
        ]
        if kind == 1:
            out["gasPrice"] = quantity(tx.gas_price)
        else:
            out["maxFeePerGas"] = quantity(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = quantity(tx.max_priority_fee_per_gas)
            base_fee = getattr(header, "base_fee_per_gas", None) if header else None
            out["gasPrice"] = quantity(
                effective_gas_price(tx, base_fee) if base_fee is not None else tx.max_fee_per_gas
            )
    return out


def format_block(block: BlockAPI, full_transactions: bool) -> dict[str, Any]:
    header: Any = block.header
    txs: list[Any]
    if full_transactions:
        txs = [format_transaction(tx, header, i) for i, tx in enumerate(block.transactions)]
    else:
        txs = [data(tx.hash) for tx in block.transactions]
    out: dict[str, Any] = {
        "number": quantity(header.block_number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": data(header.transaction_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipt_root),
        "miner": address(header.coinbase),
        "difficulty": quantity(header.difficulty),
        "totalDifficulty": quantity(0),
        "extraData": data(header.extra_data),
        "size": quantity(len(rlp.encode(block))),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp),
        "mixHash": data(header.mix_hash),
        "baseFeePerGas": quantity(header.base_fee_per_gas),
        "withdrawalsRoot": data(header.withdrawals_root),
        "withdrawals": [],
        "blobGasUsed": quantity(header.blob_gas_used),
        "excessBlobGas": quantity(header.excess_blob_gas),
        "parentBeaconBlockRoot": data(header.parent_beacon_block_root),
        "transactions": txs,
        "uncles": [],
    }
    requests_hash = getattr(header, "requests_hash", None)
    if requests_hash is not None:
        out["requestsHash"] = data(requests_hash)
    return out


def format_log(
    log: Any,
    header: Any,
    tx: SignedTransactionAPI,
    tx_index: int,
    log_index: int,
    removed: bool = False,
) -> dict[str, Any]:
    return {
        "address": address(log.address),
        "topics": [data(topic.to_bytes(32, "big")) for topic in log.topics],
        "data": data(log.data),
        "blockNumber": quantity(header.block_number),
        "blockHash": data(header.hash),
        "blockTimestamp": quantity(header.timestamp),
        "transactionHash": data(tx.hash),
        "transactionIndex": quantity(tx_index),
        "logIndex": quantity(log_index),
        "removed": removed,
    }


def format_receipt(block: BlockAPI, receipts: tuple[ReceiptAPI, ...], index: int) -> dict[str, Any]:
    """The receipt object of transaction `index` of `block`.

    Only this transaction's sender is recovered (blocks read back from the database carry no
    cached senders, and recovery is the costly part); earlier receipts give the block-wide log
    index and the gas this transaction used.
    """
    header: Any = block.header
    tx = block.transactions[index]
    receipt = receipts[index]
    first_log = sum(len(r.logs) for r in receipts[:index])
    previous_cumulative = receipts[index - 1].gas_used if index else 0
    contract = None
    if not tx.to:
        contract = address(generate_contract_address(tx.sender, tx.nonce))
    return {
        "type": quantity(tx_type(tx)),
        "transactionHash": data(tx.hash),
        "transactionIndex": quantity(index),
        "blockHash": data(header.hash),
        "blockNumber": quantity(header.block_number),
        "from": address(tx.sender),
        "to": address(tx.to) if tx.to else None,
        "cumulativeGasUsed": quantity(receipt.gas_used),
        "gasUsed": quantity(receipt.gas_used - previous_cumulative),
        "effectiveGasPrice": quantity(effective_gas_price(tx, header.base_fee_per_gas)),
        "contractAddress": contract,
        "logs": [format_log(log, header, tx, index, first_log + n)
                 for n, log in enumerate(receipt.logs)],
        "logsBloom": data(receipt.bloom.to_bytes(256, "big")),
        "status": quantity(1 if receipt.state_root == b"\x01" else 0),
    }


def format_block_receipts(
    block: BlockAPI, receipts: tuple[ReceiptAPI, ...]
) -> list[dict[str, Any]]:
    """Receipt objects of every transaction in `block`."""
    return [format_receipt(block, receipts, i) for i in range(len(block.transactions))]
