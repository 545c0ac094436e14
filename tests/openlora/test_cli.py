"""The `openledger lora` commands, and the worker as a real child process."""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import threading
import time

import httpx
import openai
import pytest

from openledger_node.cli import build_parser, main
from openlora.peft_format import content_hash
from openlora.service import start_worker_process


def test_lora_group_is_registered_with_defaults():
    parser = build_parser()
    args = parser.parse_args(["lora", "serve", "--adapters-dir", "/x"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.base_model is None
    assert callable(args.func)
    assert main(["lora"]) == 2


def test_hash_command(adapters_dir, capsys, tmp_path):
    assert main(["lora", "hash", str(adapters_dir / "qv-r4")]) == 0
    assert capsys.readouterr().out.strip() == content_hash(adapters_dir / "qv-r4")
    assert main(["lora", "hash", str(tmp_path)]) == 1
    assert "adapter_config.json" in capsys.readouterr().err


def test_serve_refuses_a_missing_adapters_dir(tmp_path, capsys):
    assert main(["lora", "serve", "--adapters-dir", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err


def _wait_for_url(proc: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    buffer = b""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            buffer += chunk
            found = re.search(rb"OpenAI API at (http://\S+)/v1", buffer)
            if found:
                return found.group(1).decode()
        if proc.poll() is not None:
            break
    raise AssertionError(f"worker did not start: {buffer.decode(errors='replace')[-2000:]}")


@pytest.mark.e2e
def test_worker_process_serves_and_stops_cleanly(base_dir, adapters_dir, tmp_path):
    receipts = tmp_path / "receipts.jsonl"
    proc = start_worker_process(
        "127.0.0.1", 0, str(base_dir), adapters_dir,
        extra_args=["--threads", "1", "--max-rank", "16", "--receipts-file", str(receipts),
                    "--price-per-1k-tokens", "2000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        url = _wait_for_url(proc)
        # keep draining its output so a chatty worker never blocks on a full pipe
        threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()  # type: ignore[union-attr]
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        names = {m.id for m in client.models.list().data}
        assert {"tiny-llama", "qv-r4", "all-r16"} <= names
        out = client.completions.create(model="qv-r8", prompt="hello", max_tokens=5,
                                        temperature=0, extra_body={"ignore_eos": True})
        assert out.usage.completion_tokens == 5
        with pytest.raises(openai.NotFoundError):
            client.completions.create(model="missing", prompt="x")
        assert httpx.get(url + "/health").json()["adapters"] == 6
        line = json.loads(receipts.read_text().splitlines()[-1])
        assert line["model"] == "qv-r8" and int(line["fee"]) == (out.usage.total_tokens * 2000
                                                                   // 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0


@pytest.mark.e2e
def test_wait_for_worker_reports_an_early_exit(tmp_path):
    from openlora.service import wait_for_worker

    proc = start_worker_process("127.0.0.1", 1, str(tmp_path / "no-model"), None,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with pytest.raises(RuntimeError, match="exited with code 2"):
            wait_for_worker("http://127.0.0.1:1", timeout=60, process=proc)
    finally:
        proc.kill()
        proc.wait()
