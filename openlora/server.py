"""The OpenAI-style HTTP API of a worker (Starlette on Hypercorn's trio worker).

Endpoints: ``POST /v1/completions``, ``POST /v1/chat/completions`` (both with ``stream`` for
server-sent events), ``GET /v1/models``, ``POST /v1/load_lora_adapter`` and
``POST /v1/unload_lora_adapter`` (vLLM's names and bodies), ``GET /v1/adapters``,
``GET /v1/receipts``, ``GET /metrics`` (Prometheus) and ``GET /health``. Errors use OpenAI's
shape ``{"error": {"message", "type", "param", "code"}}``. The engine runs on its own thread;
its events reach each request's handler through a trio memory channel.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from openlora.attribution import AttributorAPI, default_attributor
from openlora.engine import EngineClosed, EngineFull, Event, Request, RequestTooLong
from openlora.metrics import CONTENT_TYPE, Metrics
from openlora.receipts import InferenceReceipt, make_receipt
from openlora.sampling import InvalidParams, SamplingParams
from openlora.store import AdapterError, AdapterNotFound
from openlora.worker import Worker

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = (
            status, message, kind, param, code)

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "1"} if self.status in (429, 503) else None
        return JSONResponse({"error": {"message": self.message, "type": self.kind,
                                       "param": self.param, "code": self.code}},
                            status_code=self.status, headers=headers)


def _error_from(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AdapterNotFound):
        return ApiError(404, str(exc), "invalid_request_error", "model", "model_not_found")
    if isinstance(exc, EngineFull):
        return ApiError(429, str(exc), "rate_limit_error", None, "server_busy")
    if isinstance(exc, EngineClosed):
        return ApiError(503, str(exc), "server_error", None, "unavailable")
    if isinstance(exc, AdapterError):
        return ApiError(exc.status, str(exc), "invalid_request_error", None, type(exc).__name__)
    if isinstance(exc, InvalidParams | RequestTooLong):
        return ApiError(400, str(exc), "invalid_request_error")
    raise exc


class Api:
    """Request handlers over one `Worker`."""

    def __init__(
        self,
        worker: Worker,
        *,
        adapters_root: Path | None = None,
        allow_any_adapter_path: bool = False,
        receipts_path: Path | None = None,
        keep_receipts: int = 10_000,
        attributor: AttributorAPI | None = None,
    ) -> None:
        self.worker = worker
        self.engine = worker.engine
        self.store = worker.engine.store
        self.tokenizer = worker.tokenizer
        self.base_name = worker.base_name
        self.adapters_root = adapters_root.resolve() if adapters_root else None
        self.allow_any_adapter_path = allow_any_adapter_path
        self.receipts_path = receipts_path
        self.receipts: deque[InferenceReceipt] = deque(maxlen=keep_receipts)
        self.metrics = Metrics(self.engine)
        self.attributor = attributor or default_attributor(self.store)
        self.created = int(time.time())

    # -- helpers ----------------------------------------------------------------------------

    async def _json(self, request: HttpRequest) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "the JSON body must be an object")
        return data

    def _adapter_for(self, model: Any) -> str | None:
        if not isinstance(model, str) or not model:
            raise ApiError(400, "'model' is required: the base model or an adapter name",
                           param="model")
        if model == self.base_name:
            return None
        if model not in self.store:
            raise ApiError(404, f"The model '{model}' does not exist", param="model",
                           code="model_not_found")
        return model

    @staticmethod
    def _params(body: dict[str, Any], default_max: int) -> SamplingParams:
        if body.get("n") not in (None, 1):
            raise ApiError(400, "only n=1 is supported", param="n")
        if body.get("logprobs") or body.get("echo") or body.get("best_of") not in (None, 1):
            raise ApiError(400, "logprobs, echo and best_of are not supported")
        stop = body.get("stop")
        stops: tuple[str, ...] = ()
        if isinstance(stop, str):
            stops = (stop,)
        elif isinstance(stop, list):
            stops = tuple(stop)
        elif stop is not None:
            raise ApiError(400, "stop must be a string or a list of strings", param="stop")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        try:
            temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0)
            top_p = float(body.get("top_p", 1.0) if body.get("top_p") is not None else 1.0)
            return SamplingParams(
                max_tokens=default_max if max_tokens is None else max_tokens,
                temperature=temperature,
                top_p=top_p,
                stop=stops,
                seed=body.get("seed"),
                ignore_eos=bool(body.get("ignore_eos", False)),
            )
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc

    def _receipt(self, adapter: str | None, prompt: str, final: Event) -> InferenceReceipt:
        record = self.store.get(adapter) if adapter is not None and adapter in self.store else None
        attribution: dict[int, int] = {}
        if record is not None:
            try:
                attribution = self.attributor.weights(record.name, final.text)
            except Exception:  # attribution must never cost the client its answer
                log.exception("attribution failed for %s", record.name)
        receipt = make_receipt(
            attribution=attribution,
            model=adapter or self.base_name,
            model_id=record.model_id if record else None,
            adapter_hash=record.spec.content_hash if record else None,
            base_model=self.base_name,
            prompt=prompt,
            output=final.text,
            prompt_tokens=final.prompt_tokens,
            completion_tokens=final.completion_tokens,
            price_per_1k_tokens=(record.price_per_1k_tokens if record
                                 else self.worker.config.price_per_1k_tokens),
            finish_reason=final.finish_reason or "stop",
        )
        self.receipts.append(receipt)
        if self.receipts_path is not None:
            with open(self.receipts_path, "a") as fh:
                fh.write(receipt.to_json() + "\n")
        return receipt

    def _submit(self, adapter: str | None, prompt_ids: list[int], params: SamplingParams
                ) -> tuple[str, trio.MemoryReceiveChannel[Event]]:
        send, receive = trio.open_memory_channel[Event](math.inf)
        token = trio.lowlevel.current_trio_token()

        def deliver(event: Event) -> None:
            try:
                send.send_nowait(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        def on_event(event: Event) -> None:  # engine thread
            try:
                token.run_sync_soon(deliver, event)
            except trio.RunFinishedError:
                pass

        try:
            request_id = self.engine.submit(Request(adapter, prompt_ids, params, on_event))
        except Exception as exc:
            error = _error_from(exc)
            self.metrics.rejected.labels(error.code or str(error.status)).inc()
            raise error from exc
        return request_id, receive

    # -- completions ------------------------------------------------------------------------

    def _chat_prompt(self, messages: Any) -> str:
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list", param="messages")
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(
                    m.get("content"), str):
                raise ApiError(400, "each message needs a string 'role' and 'content'",
                               param="messages")
        clean = [{"role": m["role"], "content": m["content"]} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(clean, tokenize=False,
                                                          add_generation_prompt=True))
        return "".join(f"{m['role']}: {m['content']}\n" for m in clean) + "assistant:"

    async def completions(self, request: HttpRequest) -> Response:
        return await self._complete(request, chat=False)

    async def chat_completions(self, request: HttpRequest) -> Response:
        return await self._complete(request, chat=True)

    async def _complete(self, request: HttpRequest, chat: bool) -> Response:
        try:
            body = await self._json(request)
            adapter = self._adapter_for(body.get("model"))
            params = self._params(body, default_max=256 if chat else 16)
            if chat:
                prompt = self._chat_prompt(body.get("messages"))
                prompt_ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
            else:
                raw = body.get("prompt")
                if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
                    raw = raw[0]
                if not isinstance(raw, str) or not raw:
                    raise ApiError(400, "'prompt' must be a non-empty string", param="prompt")
                prompt = raw
                prompt_ids = self.tokenizer(prompt).input_ids
            request_id, events = self._submit(adapter, list(prompt_ids), params)
        except Exception as exc:
            return _error_from(exc).response()
        self.metrics.requests.labels("chat" if chat else "completions").inc()
        model = body["model"]
        kind = "chat.completion" if chat else "text_completion"
        cid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(events, request_id, cid, model, chat, adapter, prompt,
                             include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        final = None
        try:
            async for event in events:
                if event.finished:
                    final = event
                    break
        finally:
            if final is None:
                self.engine.cancel(request_id)
        if final is None or final.finish_reason == "error":
            return ApiError(500, final.error if final and final.error else "generation failed",
                            "server_error").response()
        # attribution is pure-Python work (and may build an index): keep it off the event loop
        receipt = await trio.to_thread.run_sync(self._receipt, adapter, prompt, final)
        choice: dict[str, Any] = {"index": 0, "finish_reason": final.finish_reason,
                                  "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": final.text}
        else:
            choice["text"] = final.text
        return JSONResponse({
            "id": cid, "object": kind, "created": int(time.time()), "model": model,
            "choices": [choice], "usage": _usage(final),
            "openledger_receipt": receipt.to_dict(),
        })

    async def _stream(self, events: trio.MemoryReceiveChannel[Event], request_id: str, cid: str,
                      model: str, chat: bool, adapter: str | None, prompt: str,
                      include_usage: bool) -> AsyncIterator[bytes]:
        kind = "chat.completion.chunk" if chat else "text_completion"
        created = int(time.time())
        done = False

        def chunk(delta: str | None, finish: str | None, **extra: Any) -> bytes:
            if chat:
                body: dict[str, Any] = {"index": 0, "delta": {} if delta is None else
                                        {"content": delta}, "finish_reason": finish}
            else:
                body = {"index": 0, "text": delta or "", "finish_reason": finish,
                        "logprobs": None}
            payload = {"id": cid, "object": kind, "created": created, "model": model,
                       "choices": [body], **extra}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        try:
            if chat:
                first = {"id": cid, "object": kind, "created": created, "model": model,
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                      "finish_reason": None}]}
                yield b"data: " + json.dumps(first).encode() + b"\n\n"
            async for event in events:
                if event.finished:
                    done = True
                    if event.finish_reason == "error":
                        error = {"error": {"message": event.error or "generation failed",
                                           "type": "server_error", "param": None, "code": None}}
                        yield b"data: " + json.dumps(error).encode() + b"\n\n"
                        break
                    if event.delta:
                        yield chunk(event.delta, None)
                    receipt = await trio.to_thread.run_sync(self._receipt, adapter, prompt,
                                                            event)
                    yield chunk(None, event.finish_reason,
                                openledger_receipt=receipt.to_dict())
                    if include_usage:
                        usage = {"id": cid, "object": kind, "created": created, "model": model,
                                 "choices": [], "usage": _usage(event)}
                        yield b"data: " + json.dumps(usage).encode() + b"\n\n"
                    break
                if event.delta:
                    yield chunk(event.delta, None)
            yield b"data: [DONE]\n\n"
        finally:
            if not done:
                self.engine.cancel(request_id)

    # -- models and adapters ----------------------------------------------------------------

    async def models(self, request: HttpRequest) -> Response:
        data = [{"id": self.base_name, "object": "model", "created": self.created,
                 "owned_by": "openledger", "root": self.base_name, "parent": None}]
        for record in self.store.records():
            data.append({"id": record.name, "object": "model",
                         "created": int(record.registered_at), "owned_by": "openledger",
                         "root": record.name, "parent": self.base_name})
        return JSONResponse({"object": "list", "data": data})

    async def adapters(self, request: HttpRequest) -> Response:
        resident = set(self.store.resident())
        cached = set(self.store.host_cached())
        return JSONResponse({"object": "list", "data": [
            {"name": r.name, "model_id": r.model_id, "content_hash": r.spec.content_hash,
             "rank": r.spec.rank, "modules": len(r.spec.modules),
             "price_per_1k_tokens": str(r.price_per_1k_tokens),
             "resident": r.name in resident, "host_cached": r.name in cached,
             "running": r.pins}
            for r in self.store.records()]})

    def _adapter_path(self, name: str, path: Any) -> Path:
        if path is None:
            if self.adapters_root is None:
                raise ApiError(400, "'lora_path' is required (the worker has no adapters dir)",
                               param="lora_path")
            return self.adapters_root / name
        if not isinstance(path, str) or not path:
            raise ApiError(400, "'lora_path' must be a string", param="lora_path")
        resolved = Path(path).expanduser().resolve()
        if self.allow_any_adapter_path:
            return resolved
        if self.adapters_root is None or not resolved.is_relative_to(self.adapters_root):
            raise ApiError(403, "adapters load only from inside the worker's adapters dir "
                                "(start with --allow-any-adapter-path to lift this)",
                           param="lora_path")
        return resolved

    async def load_adapter(self, request: HttpRequest) -> Response:
        try:
            body = await self._json(request)
            name = body.get("lora_name", body.get("name"))
            if not isinstance(name, str) or not name:
                raise ApiError(400, "'lora_name' is required", param="lora_name")
            if name == self.base_name:
                raise ApiError(400, "an adapter may not take the base model's name",
                               param="lora_name")
            path = self._adapter_path(name, body.get("lora_path", body.get("path")))
            model_id = body.get("model_id")
            if model_id is not None and not isinstance(model_id, str):
                raise ApiError(400, "'model_id' must be a string", param="model_id")
            record = await trio.to_thread.run_sync(
                lambda: self.store.register(name, path, model_id=model_id))
        except Exception as exc:
            return _error_from(exc).response()
        return JSONResponse({"object": "adapter", "name": record.name,
                             "content_hash": record.spec.content_hash,
                             "message": f"Success: LoRA adapter '{name}' added successfully."})

    async def unload_adapter(self, request: HttpRequest) -> Response:
        try:
            body = await self._json(request)
            name = body.get("lora_name", body.get("name"))
            if not isinstance(name, str):
                raise ApiError(400, "'lora_name' is required", param="lora_name")
            self.store.unregister(name)
            forget = getattr(self.attributor, "forget", None)
            if forget is not None:
                forget(name)
        except Exception as exc:
            return _error_from(exc).response()
        return JSONResponse({"object": "adapter", "name": name,
                             "message": f"Success: LoRA adapter '{name}' removed successfully."})

    async def list_receipts(self, request: HttpRequest) -> Response:
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return ApiError(400, "limit must be an integer", param="limit").response()
        items = list(self.receipts)[-max(0, min(limit, 10_000)):] if limit > 0 else []
        return JSONResponse({"object": "list", "data": [r.to_dict() for r in items]})

    async def metrics_endpoint(self, request: HttpRequest) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def health(self, request: HttpRequest) -> Response:
        return JSONResponse({"status": "ok", "base_model": self.base_name,
                             "adapters": len(self.store.records())})


def _usage(event: Event) -> dict[str, int]:
    return {"prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens,
            "total_tokens": event.prompt_tokens + event.completion_tokens}


class BearerAuth:
    """ASGI middleware: ``/v1/*`` needs ``Authorization: Bearer <key>`` (health and metrics
    stay open). The key is compared in constant time and never logged."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            token = header[7:] if header[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.key):
                response = ApiError(401, "missing or wrong API key (Authorization: Bearer ...)",
                                    "authentication_error", None, "invalid_api_key").response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(worker: Worker, *, api_key: str | None = None, **options: Any) -> Starlette:
    api = Api(worker, **options)
    route: Callable[..., Route] = Route
    app = Starlette(routes=[
        route("/v1/completions", api.completions, methods=["POST"]),
        route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        route("/v1/models", api.models, methods=["GET"]),
        route("/v1/adapters", api.adapters, methods=["GET"]),
        route("/v1/load_lora_adapter", api.load_adapter, methods=["POST"]),
        route("/v1/unload_lora_adapter", api.unload_adapter, methods=["POST"]),
        route("/v1/receipts", api.list_receipts, methods=["GET"]),
        route("/metrics", api.metrics_endpoint, methods=["GET"]),
        route("/health", api.health, methods=["GET"]),
    ])
    app.state.api = api
    if api_key:
        app.add_middleware(BearerAuth, key=api_key)
    return app


