"""Multi-LoRA serving: hot-load latency, mixed-adapter throughput, and vLLM's server side by side.

    python -m benchmarks.adapters [--model models/demo/base] [--adapter DIR ...]

1. Hot-load latency: median of 20 `POST /v1/load_lora_adapter` (+ unload) on Deliberate and vLLM.
2. Throughput: the same greedy load (256 requests, 32 clients, 64 tokens) spread over 4 adapters,
   against base-only, on both servers (each alone on the machine).
Writes benchmarks/results/adapters.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.load import median_and_best, prompts, run_load
from benchmarks.harness.plots import adapters_figure
from benchmarks.harness.servers import ENGINE_ENV, SERVED_NAME
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
DEFAULT_ADAPTERS = ("models/demo/adapters/countdown", "models/demo/adapters/arithmetic")
SLOTS = 4


def server_commands(args: argparse.Namespace, port: int, preload: dict[str, str]) -> dict:
    common = ["--model", args.model, "--port", str(port), "--max-model-len", "512",
              "--served-model-name", SERVED_NAME, "--max-loras", str(SLOTS),
              "--max-lora-rank", "16"]
    modules = [f"{name}={path}" for name, path in preload.items()]
    return {
        "deliberate": (["-m", "server", *common, "--kv-cache-bytes", str(args.kv_cache_bytes),
                        "--log-level", "warning", "--default-strategy", "greedy",
                        "--lora-modules", *modules], ENGINE_ENV),
        "vllm": (["-m", "vllm.entrypoints.openai.api_server", *common, "--enable-lora",
                  "--enforce-eager", "--block-size", "32",  # as Deliberate's default
                  "--kv-cache-memory-bytes", str(args.kv_cache_bytes),
                  "--max-cpu-loras", str(SLOTS + 1), "--uvicorn-log-level", "warning",
                  "--no-enable-log-requests", "--lora-modules", *modules],
                 {**ENGINE_ENV, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}),
    }


def hot_load_latency(base_url: str, path: str, loads: int) -> list[float]:
    times = []
    with httpx.Client(base_url=base_url, timeout=120) as http:
        for i in range(loads):
            name = f"hot{i}"
            start = time.perf_counter()
            response = http.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
            times.append(time.perf_counter() - start)
            response.raise_for_status()
            # the first request through it makes it resident on both servers
            http.post("/v1/completions", json={"model": name, "prompt": "Compute: 1+1\n",
                                               "max_tokens": 4, "temperature": 0}).raise_for_status()
            http.post("/v1/unload_lora_adapter", json={"lora_name": name}).raise_for_status()
    return times


def bodies(models: list[str], count: int, max_tokens: int) -> list[dict]:
    return [{"model": models[i % len(models)], "prompt": p, "max_tokens": max_tokens,
             "temperature": 0} for i, p in enumerate(prompts(count, seed=99))]


def measure(name: str, command: tuple, port: int, args, adapter_names: list[str]) -> dict:
    argv, env = command
    log = RESULTS / "logs" / f"adapters-{name}.log"
    with running_server(argv, port, log, env={**os.environ, **env}) as url:
        loads = hot_load_latency(url, str(Path(args.adapters[0]).resolve()), args.loads)
        run = lambda b: asyncio.run(run_load(url, "/v1/completions", b, args.concurrency))  # noqa: E731
        base = bodies([SERVED_NAME], args.requests, args.max_tokens)
        mixed = bodies(adapter_names, args.requests, args.max_tokens)
        run(base[: args.concurrency] + mixed[: args.concurrency])  # warm-up, adapters resident
        # interleaved passes, so drift in the machine's speed hits both modes alike
        passes = {"base": [], "mixed": []}
        for _ in range(args.passes):
            for mode, load in (("base", base), ("mixed", mixed)):
                passes[mode].append(run(load))
        results = {mode: median_and_best(runs)[0] for mode, runs in passes.items()}
    out = {"load_median_ms": statistics.median(loads) * 1e3, **results}
    print(f"{name}: load {out['load_median_ms']:.0f} ms, base {results['base'].tokens_per_s:.0f}"
          f" tok/s, mixed {results['mixed'].tokens_per_s:.0f} tok/s")
    return out


def report(results: dict, args) -> str:
    d, v = results["deliberate"], results["vllm"]

    def row(label, key):
        dr, vr = d[key], v[key]
        return (f"| {label} | {dr.requests_per_s:.1f} / {dr.tokens_per_s:.0f} | "
                f"{vr.requests_per_s:.1f} / {vr.tokens_per_s:.0f} | "
                f"{dr.tokens_per_s / vr.tokens_per_s:.3f} |")

    return "\n".join([
        "# Multi-LoRA serving: Deliberate vs vLLM's OpenAI server",
        "",
        f"Command: `python -m benchmarks.adapters --model {args.model} --requests {args.requests}"
        f" --concurrency {args.concurrency} --passes {args.passes}`  ",
        f"Run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores; {SLOTS} adapters ({', '.join(args.adapters)}, registered under"
        f" {SLOTS} names), greedy, max_tokens {args.max_tokens}, each server alone with the same"
        " engine settings (eager, one engine-core process); throughput is the median of "
        f"{args.passes} interleaved passes per mode.",
        "",
        "| | Deliberate | vLLM | Deliberate / vLLM |",
        "|---|---:|---:|---:|",
        f"| hot-load latency, median of {args.loads} (ms) | {d['load_median_ms']:.0f} | "
        f"{v['load_median_ms']:.0f} | {d['load_median_ms'] / v['load_median_ms']:.2f} |",
        row("base only (req/s / tok/s)", "base"),
        row(f"mixed over {SLOTS} adapters (req/s / tok/s)", "mixed"),
        "",
        f"Mixed / base throughput: Deliberate {d['mixed'].tokens_per_s / d['base'].tokens_per_s:.3f},"
        f" vLLM {v['mixed'].tokens_per_s / v['base'].tokens_per_s:.3f}.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--adapter", dest="adapters", action="append", default=None)
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--passes", type=int, default=3, help="median of this many per mode")
    parser.add_argument("--kv-cache-bytes", type=int, default=256 * 2**20)
    args = parser.parse_args()
    args.adapters = args.adapters or list(DEFAULT_ADAPTERS)
    names = [f"a{i}" for i in range(SLOTS)]
    preload = {name: str(Path(args.adapters[i % len(args.adapters)]).resolve())
               for i, name in enumerate(names)}
    port = free_port()
    results = {name: measure(name, cmd, port, args, names)
               for name, cmd in server_commands(args, port, preload).items()}
    out = RESULTS / "adapters.md"
    figure = adapters_figure({n: {m: r[m] for m in ("base", "mixed")} for n, r in results.items()},
                             out.with_suffix(".png"))
    out.write_text(report(results, args) + f"\n![throughput]({figure.name})\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
