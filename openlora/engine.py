"""Continuous-batching scheduler over the `ModelRunner` and the `AdapterStore`.

Requests wait in one FIFO per adapter and are admitted round-robin across adapters (fairness:
a flood on one adapter cannot starve the others) while the batch has room and the adapter gets a
device slot. Each step prefills newly admitted requests (their KV rows are appended) and then
advances every running request by one token in a single decode pass; finished requests leave
between steps and their rows are reused. The waiting line is bounded: `EngineFull` (HTTP 429)
when it is full, `EngineClosed` (503) when the engine is stopping or broken.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from openlora.runner import ModelRunner
from openlora.sampling import Sampler, SamplingParams, stop_hold
from openlora.store import AdapterError, AdapterStore, NoFreeSlot

log = logging.getLogger(__name__)


class EngineFull(Exception):
    status = 429


class EngineClosed(Exception):
    status = 503


class RequestTooLong(ValueError):
    status = 400


@dataclass
class Event:
    """What the engine reports about a request: new text, and at the end why it stopped."""

    request_id: str
    delta: str = ""
    finished: bool = False
    finish_reason: str | None = None
    """``stop``, ``length``, ``cancelled`` or ``error``."""
    text: str = ""
    """The whole output, on the final event."""
    output_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Request:
    adapter: str | None
    """Adapter name, or None for the base model alone."""
    prompt_ids: list[int]
    params: SamplingParams
    on_event: Callable[[Event], None] = lambda _event: None
    request_id: str = ""
    arrival: float = field(default_factory=time.monotonic)
    # runtime state
    sampler: Sampler | None = None
    slot: int = 0
    output_ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    position: int = 0
    cancelled: bool = False
    finished: bool = False
    unpinned: bool = False
    first_token_at: float | None = None


_ids = itertools.count(1)


class Engine:
    """Owns the step loop; `submit` is thread-safe, `step` runs on one thread only."""

    def __init__(
        self,
        runner: ModelRunner,
        store: AdapterStore,
        tokenizer: Any,
        *,
        max_batch: int = 32,
        max_waiting: int = 256,
        max_prefill: int = 64,
        max_prefill_tokens: int = 4096,
        kv_budget_bytes: int | None = None,
    ) -> None:
        self.runner = runner
        self.store = store
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self.max_prefill = max_prefill
        self.max_prefill_tokens = max_prefill_tokens
        self.kv_budget_bytes = kv_budget_bytes
        eos = getattr(runner.config, "eos_token_id", None)
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if getattr(tokenizer, "eos_token_id", None) is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = frozenset(eos_ids)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: dict[str, deque[Request]] = {}
        self._order: deque[str] = deque()
        self._n_waiting = 0
        self._running: list[Request] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        # counters read by the metrics endpoint
        self.tokens_generated = 0
        self.prompt_tokens = 0
        self.requests_finished = 0
        self.steps = 0
        self.busy_seconds = 0.0
        self._rate: deque[tuple[float, int]] = deque(maxlen=512)

    # -- submission (any thread) ------------------------------------------------------------

    def submit(self, request: Request) -> str:
        if not request.request_id:
            request.request_id = f"req-{next(_ids)}"
        if not request.prompt_ids:
            raise RequestTooLong("the prompt is empty")
        total = len(request.prompt_ids) + request.params.max_tokens
        if total > self.runner.max_model_len:
            raise RequestTooLong(
                f"prompt ({len(request.prompt_ids)} tokens) plus max_tokens "
                f"({request.params.max_tokens}) exceeds the context length "
                f"{self.runner.max_model_len}"
            )
        if self.kv_budget_bytes is not None:
            need = self.runner.kv_bytes(1, total)
            if need > self.kv_budget_bytes:
                raise RequestTooLong(
                    f"prompt plus max_tokens ({total} tokens) needs {need} bytes of KV cache, "
                    f"over the worker's budget of {self.kv_budget_bytes}"
                )
        if request.adapter is not None:
            self.store.get(request.adapter)  # raises AdapterNotFound
            self.store.prefetch(request.adapter)
        request.sampler = Sampler(request.params)
        key = request.adapter or ""
        with self._wake:
            if self._closed:
                raise EngineClosed("the engine is shutting down")
            if self._n_waiting >= self.max_waiting:
                raise EngineFull(f"server busy: {self._n_waiting} requests waiting; retry later")
            queue = self._waiting.get(key)
            if queue is None:
                queue = self._waiting[key] = deque()
                self._order.append(key)
            queue.append(request)
            self._n_waiting += 1
            self._wake.notify()
        return request.request_id

    def cancel(self, request_id: str) -> None:
        """Stop a request at the next step boundary (a client went away)."""
        with self._lock:
            for queue in self._waiting.values():
                for req in queue:
                    if req.request_id == request_id:
                        req.cancelled = True
            for req in self._running:
                if req.request_id == request_id:
                    req.cancelled = True

    @property
    def queue_depth(self) -> int:
        return self._n_waiting

    @property
    def running(self) -> int:
        return len(self._running)

    def has_work(self) -> bool:
        return bool(self._n_waiting or self._running)

    # -- the step (engine thread) -----------------------------------------------------------

    def _admit(self) -> list[Request]:
        admitted: list[Request] = []
        blocked: set[str] = set()
        tokens = 0
        longest = max((len(r.prompt_ids) + r.params.max_tokens for r in self._running), default=0)
        with self._lock:
            while (
                self._order
                and len(self._running) + len(admitted) < self.max_batch
                and len(admitted) < self.max_prefill
                and len(blocked) < len(self._order)
            ):
                key = self._order[0]
                self._order.rotate(-1)
                if key in blocked:
                    continue
                queue = self._waiting[key]
                req = queue[0]
                reach = max(longest, len(req.prompt_ids) + req.params.max_tokens)
                rows = len(self._running) + len(admitted) + 1
                if (admitted and tokens + len(req.prompt_ids) > self.max_prefill_tokens) or (
                        self.kv_budget_bytes is not None and rows > 1
                        and self.runner.kv_bytes(rows, reach) > self.kv_budget_bytes):
                    # a prefill must not stall decoding, and the KV cache must fit: this
                    # request goes first next step (no starvation of long prompts)
                    self._order.rotate(1)
                    break
                if req.cancelled:
                    queue.popleft()
                    self._n_waiting -= 1
                    self._finish_unstarted(req, "cancelled", None)
                elif req.adapter is None:
                    queue.popleft()
                    self._n_waiting -= 1
                    admitted.append(req)
                else:
                    try:
                        req.slot = self.store.acquire(req.adapter)
                    except NoFreeSlot:
                        blocked.add(key)
                        continue
                    except AdapterError as exc:
                        queue.popleft()
                        self._n_waiting -= 1
                        self._finish_unstarted(req, "error", str(exc))
                        continue
                    queue.popleft()
                    self._n_waiting -= 1
                    admitted.append(req)
                if admitted and admitted[-1] is req:
                    tokens += len(req.prompt_ids)
                    longest = max(longest, len(req.prompt_ids) + req.params.max_tokens)
                if not queue:
                    del self._waiting[key]
                    self._order.remove(key)
        return admitted

    def _finish_unstarted(self, req: Request, reason: str, error: str | None) -> None:
        req.on_event(Event(req.request_id, finished=True, finish_reason=reason,
                           prompt_tokens=len(req.prompt_ids), error=error))

    def step(self) -> bool:
        """Admit, prefill, decode one token for every running request. False when idle."""
        start = time.perf_counter()
        for req in self._running:
            if req.cancelled and not req.finished:
                self._done(req, "cancelled")
        self._retire()
        admitted = self._admit()
        if not admitted and not self._running:
            return False
        pending = list(admitted)
        try:
            for group in length_groups(admitted):
                logits = self.runner.prefill([r.prompt_ids for r in group],
                                             [r.slot for r in group])
                with self._lock:
                    self._running.extend(group)
                for req in group:
                    pending.remove(req)
                    req.position = len(req.prompt_ids) - 1  # _advance moves it to the new token
                    self.prompt_tokens += len(req.prompt_ids)
                self._advance(group, logits)
        except Exception as exc:
            for req in pending:  # admitted but never given a row: unpin and tell the client
                self._unpin(req)
                self._finish_unstarted(req, "error", f"internal error: {exc}")
            raise
        self._retire()
        if self._running:
            logits = self.runner.decode(
                [r.output_ids[-1] for r in self._running],
                [r.position for r in self._running],
                [r.slot for r in self._running],
            )
            self._advance(self._running, logits)
            self._retire()
        self.steps += 1
        end = time.perf_counter()
        self.busy_seconds += end - start
        self._rate.append((end, self.tokens_generated))
        return True

    def tokens_per_second(self, window: float = 10.0) -> float:
        """Output tokens per second over the last ``window`` seconds of steps."""
        now = time.perf_counter()
        recent = [(t, n) for t, n in list(self._rate) if now - t <= window]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (now - recent[0][0])

    def _advance(self, reqs: list[Request], logits: torch.Tensor) -> None:
        greedy = logits.argmax(dim=-1).tolist()
        if any(not r.params.greedy for r in reqs):
            logits = logits.float().cpu()  # one device-to-host copy for all sampled rows
        now = time.monotonic()
        for i, req in enumerate(reqs):
            if req.finished:
                continue
            assert req.sampler is not None
            token = req.sampler.choose(logits[i], greedy[i])
            req.output_ids.append(token)
            req.position += 1
            self.tokens_generated += 1
            if req.first_token_at is None:
                req.first_token_at = now
            self._emit(req, token)

    def _emit(self, req: Request, token: int) -> None:
        params = req.params
        if token in self.eos_ids and not params.ignore_eos:
            self._done(req, "stop", drop_last=True)
            return
        text = self.tokenizer.decode(req.output_ids, skip_special_tokens=True)
        for stop in params.stop:
            at = text.find(stop, max(0, req.emitted - len(stop)))
            if at != -1:
                req.text = text[:at]
                self._done(req, "stop")
                return
        req.text = text
        if len(req.output_ids) >= params.max_tokens or req.position >= self.runner.max_model_len:
            self._done(req, "length")
            return
        end = len(text) - stop_hold(text, params.stop)
        while end > req.emitted and text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence
            end -= 1
        if end > req.emitted:
            delta = text[req.emitted : end]
            req.emitted = end
            req.on_event(Event(req.request_id, delta=delta))

    def _done(self, req: Request, reason: str, drop_last: bool = False) -> None:
        if drop_last:
            req.text = self.tokenizer.decode(req.output_ids[:-1], skip_special_tokens=True)
        req.finished = True  # marks the row for removal
        self._unpin(req)  # before the client hears: it may unload the adapter at once
        delta = req.text[req.emitted :] if reason != "cancelled" else ""
        req.emitted = len(req.text)
        self.requests_finished += 1
        req.on_event(Event(
            req.request_id, delta=delta, finished=True, finish_reason=reason, text=req.text,
            output_ids=list(req.output_ids), prompt_tokens=len(req.prompt_ids),
            completion_tokens=len(req.output_ids),
        ))

    def _unpin(self, req: Request) -> None:
        """Release the request's adapter slot once. A finished row runs no further forward
        pass, so its slot may be reused as soon as the request is done."""
        if req.adapter is not None and not req.unpinned:
            req.unpinned = True
            self.store.release(req.adapter)

    def _retire(self) -> None:
        gone = [i for i, r in enumerate(self._running) if r.finished]
        if not gone:
            return
        moved = self.runner.remove_rows(gone)
        new_running: list[Request | None] = [None] * (len(self._running) - len(gone))
        gone_set = set(gone)
        for i, req in enumerate(self._running):
            if i in gone_set:
                self._unpin(req)
            else:
                new_running[moved.get(i, i)] = req
        with self._lock:
            self._running = [r for r in new_running if r is not None]
        assert len(self._running) == self.runner.n_rows

    def fail_all(self, message: str) -> None:
        """After an internal error: end every running request with an error, drop their rows."""
        for req in self._running:
            self._unpin(req)
            if not req.finished:
                req.finished = True
                req.on_event(Event(req.request_id, finished=True, finish_reason="error",
                                   error=message, prompt_tokens=len(req.prompt_ids)))
        with self._lock:
            self._running = []
        self.runner.reset()

    # -- drivers ----------------------------------------------------------------------------

    def run_until_idle(self) -> None:
        """Step until nothing waits or runs (benchmarks and tests drive the engine this way)."""
        while self.step():
            pass

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self.has_work():
                    self._wake.wait(timeout=1.0)
                if self._closed:
                    break
            try:
                self.step()
            except Exception as exc:  # keep serving: the batch fails, the worker lives
                log.exception("engine step failed")
                self.fail_all(f"internal error: {exc}")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="openlora-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            waiting = [r for q in self._waiting.values() for r in q]
            self._waiting.clear()
            self._order.clear()
            self._n_waiting = 0
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for req in waiting:
            self._finish_unstarted(req, "error", "the engine shut down")
        self.fail_all("the engine shut down")
        self.store.close()



def length_groups(requests: list[Request], slack: float = 0.15) -> list[list[Request]]:
    """Split requests into prefill groups of similar prompt length (padding waste <= slack)."""
    groups: list[list[Request]] = []
    for req in sorted(requests, key=lambda r: len(r.prompt_ids)):
        if groups and len(req.prompt_ids) <= (1 + slack) * len(groups[-1][0].prompt_ids):
            groups[-1].append(req)
        else:
            groups.append([req])
    return groups
