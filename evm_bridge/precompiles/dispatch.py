"""The flow every native precompile call follows, around its own handlers.

Refuses delegatecall/callcode (they would let a contract act with its caller's identity and
value that never arrived) and state-changing calls under STATICCALL; charges the base gas;
decodes the ABI arguments; runs the handler over the rules; pays out OPEN, emits logs and
encodes the return data. A broken rule reverts with Solidity's Error(string), so every client
shows its reason; nothing the call did is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from eth.abc import ComputationAPI
from eth.exceptions import Revert
from eth_abi import encode as abi_encode
from eth_typing import Address

from datanets.abc import SPACE_ADDRESSES, RuleError, Space
from datanets.ledger import Ledger
from datanets.types import BURN, CallContext
from evm_bridge.precompiles import gas
from evm_bridge.precompiles.abi import Event, Interface, error_data
from evm_bridge.precompiles.storage import stores_for

# A handler gets the ledger, the call context and the decoded arguments; it returns the
# function's outputs: a tuple, one value, or None for none.
Handler = Callable[[Ledger, CallContext, tuple[Any, ...]], Any]
# Gas a call costs beyond metered storage, logs and payouts, known from its arguments and
# the state before it runs (charged up front, as opcodes charge before they act).
ExtraGas = Callable[[Ledger, str, tuple[Any, ...]], int]


def revert(computation: ComputationAPI, reason: str) -> NoReturn:
    computation.output = error_data(reason)
    raise Revert(computation.output)


def run_call(
    computation: ComputationAPI,
    space: Space,
    interface: Interface,
    handlers: dict[str, Handler],
    extra_gas: ExtraGas | None = None,
) -> ComputationAPI:
    msg = computation.msg
    own = SPACE_ADDRESSES[space]
    # GAS
    computation.consume_gas(gas.CALL_BASE, f"{interface.name} call")
    # OPERATION
    if msg.storage_address != own:
        revert(computation, f"{interface.name}: delegatecall and callcode are not supported")
    data = bytes(msg.data)
    function = _by_selector(interface).get(data[:4])
    if function is None:
        revert(computation, f"{interface.name}: unknown function selector 0x{data[:4].hex()}")
    if msg.is_static and function.mutability != "view":
        revert(computation, f"{interface.name}.{function.name}: state change under STATICCALL")
    if msg.value and function.mutability != "payable":
        revert(computation, f"{interface.name}.{function.name}: function is not payable")
    try:
        args = function.decode(data[4:])
    except Exception:
        revert(computation, f"{interface.name}.{function.name}: malformed arguments")
    ledger = Ledger(stores_for(computation, space))
    if extra_gas is not None:
        computation.consume_gas(extra_gas(ledger, function.name, args), f"{function.name} work")
    ctx = CallContext(
        sender=bytes(msg.sender),
        value=msg.value,
        block_number=computation.state.block_number,
        chain_id=computation.state.execution_context.chain_id,
    )
    try:
        outputs = handlers[function.name](ledger, ctx, args)
    except RuleError as exc:
        revert(computation, str(exc))
    if outputs is None:
        outputs = ()
    elif not isinstance(outputs, tuple):
        outputs = (outputs,)
    _pay(computation, ctx)
    _emit(computation, own, interface, ctx)
    computation.output = function.encode_output(outputs)
    return computation


_selectors: dict[str, dict[bytes, Any]] = {}


def _by_selector(interface: Interface) -> dict[bytes, Any]:
    if interface.name not in _selectors:
        _selectors[interface.name] = {f.selector: f for f in interface.functions}
    return _selectors[interface.name]


def _pay(computation: ComputationAPI, ctx: CallContext) -> None:
    state = computation.state
    for transfer in ctx.transfers:
        burn = transfer.to == BURN
        # GAS
        cost = gas.VALUE_TRANSFER
        if not burn and state.account_is_empty(Address(transfer.to)):
            cost += gas.NEW_ACCOUNT
        computation.consume_gas(cost, "precompile payout")
        # OPERATION
        source = Address(SPACE_ADDRESSES[transfer.source])
        if state.get_balance(source) < transfer.amount:
            # Broken invariant (the account must hold every liability): refuse the call rather
            # than halt the chain.
            revert(computation, "internal error: precompile account underfunded")
        state.delta_balance(source, -transfer.amount)
        if not burn:
            state.delta_balance(Address(transfer.to), transfer.amount)


def _word(solidity_type: str, value: Any) -> bytes | None:
    """A static value's 32-byte ABI word, without eth-abi's generic machinery (logs are on
    the settlement hot path: one per receipt); None for types left to eth-abi."""
    if solidity_type.startswith("uint") and isinstance(value, int) and 0 <= value < 1 << 256:
        return value.to_bytes(32, "big")
    if solidity_type == "address" and isinstance(value, bytes) and len(value) == 20:
        return value.rjust(32, b"\x00")
    if solidity_type == "bytes32" and isinstance(value, bytes) and len(value) == 32:
        return value
    if solidity_type == "bool" and isinstance(value, bool):
        return int(value).to_bytes(32, "big")
    return None


def _emit(computation: ComputationAPI, own: bytes, interface: Interface,
          ctx: CallContext) -> None:
    events: dict[str, Event] = {e.name: e for e in interface.events}
    for item in ctx.events:
        spec = events[item.name]
        topics = [spec.topic0]
        data_types, data_values, words = [], [], []
        for (solidity_type, _name, indexed), value in zip(spec.params, item.args, strict=True):
            word = _word(solidity_type, value)
            if indexed:
                topics.append(int.from_bytes(
                    word if word is not None else abi_encode([solidity_type], [value]), "big"))
            else:
                data_types.append(solidity_type)
                data_values.append(value)
                words.append(word)
        if all(w is not None for w in words):
            data = b"".join(w for w in words if w is not None)
        else:
            data = abi_encode(data_types, data_values)
        computation.consume_gas(gas.log_cost(len(topics), len(data)), f"{item.name} log")
        computation.add_log_entry(Address(own), tuple(topics), data)
