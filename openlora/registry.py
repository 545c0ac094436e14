"""Chain registry clients: the JSON-RPC one a worker uses beside a node, and a static one.

The worker asks its node for a model's record with the JSON-RPC method `GET_MODEL_METHOD`
(``openledger_getModel``, params ``[model_id]``: a JSON number for the chain's numeric model
ids, else the string), which answers null for an unknown model or an
object with at least ``adapterHash`` (0x-hex); ``pricePer1kTokens`` (a quantity, hex or decimal),
``owner`` and ``retired`` are read when present. With `ATTRIBUTE_METHOD`
(``openledger_attribute``, params ``[model_id, text]``) the worker asks the node which datanet
contributions an output reuses: ``{"weights": {"<contribution id>": bps, ...}, ...}``.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from openlora.abc import RegisteredModel

GET_MODEL_METHOD = "openledger_getModel"
ATTRIBUTE_METHOD = "openledger_attribute"
BPS = 10_000


class RegistryError(RuntimeError):
    """The node could not be asked, or answered with an error."""


def _quantity(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 16) if text.startswith(("0x", "0X")) else int(text)


def parse_model(model_id: str, result: Any) -> RegisteredModel | None:
    """Map a ``openledger_getModel`` result onto `RegisteredModel` (None when absent)."""
    if result is None:
        return None
    if not isinstance(result, dict):
        raise RegistryError(f"{GET_MODEL_METHOD} returned {type(result).__name__}, not an object")
    adapter_hash = result.get("adapterHash") or result.get("adapter_hash")
    if not isinstance(adapter_hash, str):
        raise RegistryError(f"{GET_MODEL_METHOD} result for {model_id!r} lacks adapterHash")
    return RegisteredModel(
        model_id=model_id,
        adapter_hash=adapter_hash.lower(),
        price_per_1k_tokens=_quantity(result.get("pricePer1kTokens", result.get("price"))),
        owner=result.get("owner"),
        retired=bool(result.get("retired", False)),
        raw=result,
    )


def parse_weights(model_id: str, result: Any) -> dict[int, int]:
    """Map an ``openledger_attribute`` result onto contribution id -> basis points.

    The weights must be positive and sum to 10,000 (or be empty: the output reuses nothing);
    anything else is refused, so a malformed answer never reaches a receipt."""
    weights = result.get("weights") if isinstance(result, dict) else None
    if not isinstance(weights, dict):
        raise RegistryError(f"{ATTRIBUTE_METHOD} for {model_id!r} returned no weights object")
    try:
        out = {int(cid): int(bps) for cid, bps in weights.items()}
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{ATTRIBUTE_METHOD} for {model_id!r}: bad weights: {exc}") from exc
    if out and (min(out.values()) <= 0 or min(out) < 0 or sum(out.values()) != BPS):
        raise RegistryError(f"{ATTRIBUTE_METHOD} for {model_id!r}: weights must be positive "
                            f"and sum to {BPS}, got {weights}")
    return dict(sorted(out.items()))


class JsonRpcRegistryClient:
    """Asks a node over HTTP JSON-RPC; a synchronous client (registration is rare)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            reply = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RegistryError(f"cannot reach the node at {self.url}: {exc}") from exc
        if not isinstance(reply, dict):
            raise RegistryError(f"{method}: malformed JSON-RPC reply")
        if reply.get("error"):
            error = reply["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise RegistryError(f"{method} failed: {message}")
        return reply.get("result")

    def get_model(self, model_id: str) -> RegisteredModel | None:
        param: int | str = int(model_id) if model_id.isdigit() else model_id
        return parse_model(model_id, self.call(GET_MODEL_METHOD, [param]))

    def attribute(self, model_id: str, text: str) -> dict[int, int]:
        """The node's attribution weights of ``text`` (an output of chain model ``model_id``)
        over the contributions of the datanet versions the model was trained on."""
        if not model_id.isdigit():
            raise RegistryError(f"model id {model_id!r} is not a chain registry id")
        return parse_weights(model_id, self.call(ATTRIBUTE_METHOD, [int(model_id), text]))

    def close(self) -> None:
        self._client.close()


class StaticRegistryClient:
    """A registry held in memory: a test double, and for workers run without a node."""

    def __init__(self, models: dict[str, RegisteredModel] | None = None) -> None:
        self.models = dict(models or {})
        self.calls: list[str] = []

    def get_model(self, model_id: str) -> RegisteredModel | None:
        self.calls.append(model_id)
        return self.models.get(model_id)
