"""Read-only execution for `eth_call` and `eth_estimateGas`.

A call runs on the state after a given block, in the context of the block that would follow
it, with a zero base fee (py-evm's costless state), so callers need no funds for gas. Nothing
it does is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import BlockHeaderAPI, ComputationAPI, StateAPI
from eth.exceptions import OutOfGas, Revert
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_utils import ValidationError

from evm_bridge.ledger import Ledger

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
TX_GAS = 21_000


@dataclass(frozen=True)
class CallRequest:
    """The fields of an eth_call / eth_estimateGas call object, decoded."""

    sender: bytes = b"\x00" * 20
    to: bytes = b""  # empty: contract creation
    gas: int | None = None
    value: int = 0
    data: bytes = b""


@dataclass(frozen=True)
class CallResult:
    success: bool
    output: bytes
    gas_used: int
    reverted: bool = False
    error: str = ""


class CallError(Exception):
    """The call could not run at all (bad nonce, insufficient funds for value, ...)."""


def revert_reason(output: bytes) -> str:
    """The human text of revert data: Error(string), Panic(uint256), or empty."""
    try:
        if output[:4] == ERROR_SELECTOR:
            return str(abi_decode(["string"], output[4:])[0])
        if output[:4] == PANIC_SELECTOR:
            return f"panic: 0x{abi_decode(['uint256'], output[4:])[0]:02x}"
    except Exception:  # malformed revert data: report none
        return ""
    return ""


def _execute(state: StateAPI, ledger: Ledger, request: CallRequest, gas: int) -> ComputationAPI:
    vm_class = ledger.chain.get_vm_class_for_block_number(0)  # type: ignore[arg-type]
    unsigned = vm_class.create_unsigned_transaction(
        nonce=state.get_nonce(request.sender),  # type: ignore[arg-type]
        gas_price=0,
        gas=gas,
        to=request.to,  # type: ignore[arg-type]
        value=request.value,
        data=request.data,
    )
    spoofed = SpoofTransaction(unsigned, from_=request.sender)
    try:
        return state.costless_execute_transaction(spoofed)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise CallError(str(exc)) from exc


def call(ledger: Ledger, request: CallRequest, header: BlockHeaderAPI | None = None) -> CallResult:
    """Run `request` on the state after `header` (default: head) and discard the effects."""
    header = header or ledger.head
    gas = request.gas if request.gas is not None else header.gas_limit
    with ledger.chain.get_vm(header).in_costless_state() as state:
        computation = _execute(state, ledger, request, gas)
    return _result(computation, gas)


def _result(computation: ComputationAPI, gas_limit: int) -> CallResult:
    # Gas used by the whole transaction (intrinsic included), before refunds.
    used = gas_limit - computation.get_gas_remaining()
    if computation.is_success:
        return CallResult(True, computation.output, used)
    error = computation.error
    reverted = isinstance(error, Revert)
    output = computation.output if reverted else b""
    message = "execution reverted"
    reason = revert_reason(output)
    if reason:
        message = f"execution reverted: {reason}"
    elif not reverted:
        message = "out of gas" if isinstance(error, OutOfGas) else str(error) or type(error).__name__
    return CallResult(False, output, used, reverted=reverted, error=message)


def estimate_gas(
    ledger: Ledger, request: CallRequest, header: BlockHeaderAPI | None = None
) -> tuple[int, CallResult]:
    """The least gas limit with which `request` succeeds (binary search, geth-style).

    Returns (gas, result of the capped run). When the call fails even at the cap, gas is 0 and
    the result says why.
    """
    header = header or ledger.head
    cap = request.gas if request.gas is not None else header.gas_limit
    with ledger.chain.get_vm(header).in_costless_state() as state:
        snapshot = state.snapshot()
        first = _result(_execute(state, ledger, request, cap), cap)
        state.revert(snapshot)
        if not first.success:
            return 0, first
        if not request.data and request.to and first.gas_used <= TX_GAS:
            return TX_GAS, first  # a plain transfer to an account without code

        def succeeds(gas: int) -> bool:
            snap = state.snapshot()
            try:
                return _execute(state, ledger, request, gas).is_success
            finally:
                state.revert(snap)

        low, high = first.gas_used - 1, cap
        # Most calls need only what they used plus the 1/64 the EVM withholds from calls.
        guess = min(high, (first.gas_used + 2300) * 64 // 63)
        if succeeds(guess):
            high = guess
        else:
            low = guess
        while high - low > 1 and (high - low) * 1000 > high:  # within 0.1%, as geth
            middle = (low + high) // 2
            if succeeds(middle):
                high = middle
            else:
                low = middle
        return high, first
