"""Running a worker: in a trio nursery (`serve`, `run_worker`) or as a child process.

A validator node should start its worker with `start_worker_process`: model inference is heavy
CPU work that would hold the GIL against consensus timers in the node's own process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from openlora.server import create_app
from openlora.worker import Worker, WorkerConfig, build_worker

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


async def serve(
    worker: Worker,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    shutdown: trio.Event | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
    **api_options: Any,
) -> None:
    """Serve ``worker`` over HTTP until ``shutdown`` is set; ``task_status`` gets the URLs."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.keep_alive_max_requests = 1 << 30
    config.graceful_timeout = 2.0
    app = create_app(worker, **api_options)
    worker.engine.start()
    stop = shutdown if shutdown is not None else trio.Event()
    try:
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait,  # type: ignore[arg-type]
                              task_status=task_status)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(worker.engine.stop)


async def run_worker(
    config: WorkerConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
    **api_options: Any,
) -> None:
    """Load the model (in a thread) and serve it; for ``nursery.start(run_worker, config)``."""
    worker = await trio.to_thread.run_sync(build_worker, config)
    if config.adapters_dir and "adapters_root" not in api_options:
        api_options["adapters_root"] = Path(config.adapters_dir)
    await serve(worker, host, port, task_status=task_status, **api_options)


async def serve_until_signal(worker: Worker, host: str, port: int, **api_options: Any) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully (the CLI's entry)."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        async def watch() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    stop.set()
                    return
        nursery.start_soon(watch)
        urls = await nursery.start(lambda task_status: serve(
            worker, host, port, shutdown=stop, task_status=task_status, **api_options))
        print(f"OpenLoRA worker: {worker.base_name} with {len(worker.engine.store.records())} "
              f"adapters on {worker.device}, OpenAI API at {urls[0]}/v1", flush=True)
        await stop.wait()
        nursery.cancel_scope.deadline = trio.current_time() + 10


def wait_for_worker(url: str, timeout: float = 120.0,
                    process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the worker at ``url`` (``http://host:port``) answers ``/health``.

    Raises ``TimeoutError``, or ``RuntimeError`` if ``process`` exits first.
    """
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the worker exited with code {process.returncode}")
        try:
            if httpx.get(url.rstrip("/") + "/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"no worker answered at {url} within {timeout:.0f} s")


def start_worker_process(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    base_model: str | None = None,
    adapters_dir: str | Path | None = None,
    *,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    """Start ``openledger lora serve`` as a child process (a node starts its worker this way).

    ``extra_args`` take any further ``lora serve`` flags (``--rpc-url`` for the registry hash
    check, ``--device``, budgets). Stop it with ``terminate()``; it shuts down gracefully.
    """
    cmd = [python, "-m", "openlora", "serve", "--host", host, "--port", str(port)]
    if base_model is not None:
        cmd += ["--base-model", str(base_model)]
    if adapters_dir is not None:
        cmd += ["--adapters-dir", str(adapters_dir)]
    cmd += list(extra_args)
    return subprocess.Popen(cmd, **popen_kwargs)
