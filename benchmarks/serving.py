"""Serving overhead: Deliberate vs vLLM's own OpenAI server, same model, same load, one run.

    python -m benchmarks.serving [--model models/demo/base] [--requests 256] [--concurrency 32]

Each server is started in turn (never both at once: the machine has 2 cores), warmed up, then
measured for several passes of the same greedy load. Servers alternate A B B A over two rounds so
that drift in the machine's speed hits both alike. Reported: the median pass (and the best pass,
which noise can only slow down), compared as ratios. Writes benchmarks/results/serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.load import (LoadResult, add_load_arguments, greedy_bodies,
                                     median_and_best, run_load)
from benchmarks.harness.plots import serving_figure
from benchmarks.harness.servers import ENGINE_ENV, SERVED_NAME
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"


def server_commands(model: str, port: int, max_model_len: int, kv_bytes: int) -> dict[str, list[str]]:
    common = ["--model", model, "--port", str(port), "--max-model-len", str(max_model_len),
              "--served-model-name", SERVED_NAME]
    return {
        "deliberate": ["-m", "server", *common, "--kv-cache-bytes", str(kv_bytes),
                       "--no-enable-lora", "--log-level", "warning",
                       # plain serving, as vLLM does it: no difficulty routing
                       "--default-strategy", "greedy"],
        "vllm": ["-m", "vllm.entrypoints.openai.api_server", *common, "--enforce-eager",
                 "--block-size", "32",  # as Deliberate's default
                 "--kv-cache-memory-bytes", str(kv_bytes), "--uvicorn-log-level", "warning",
                 "--no-enable-log-requests"],
    }


def measure(name: str, args: list[str], port: int, bodies: list[dict], concurrency: int,
            passes: int) -> list[LoadResult]:
    log = RESULTS / "logs" / f"serving-{name}.log"
    with running_server(args, port, log, env={**os.environ, **ENGINE_ENV}) as base_url:
        asyncio.run(run_load(base_url, "/v1/completions", bodies[:concurrency], concurrency))
        results = [asyncio.run(run_load(base_url, "/v1/completions", bodies, concurrency))
                   for _ in range(passes)]
    print(f"{name}: pass walls {[round(r.wall_s, 2) for r in results]} s")
    return results


def report(all_passes: dict[str, list[LoadResult]], args: argparse.Namespace) -> str:
    (d, d_best), (v, v_best) = (median_and_best(all_passes[n]) for n in ("deliberate", "vllm"))
    rows = [
        ("throughput (req/s)", d.requests_per_s, v.requests_per_s, d.requests_per_s / v.requests_per_s),
        ("throughput (completion tok/s)", d.tokens_per_s, v.tokens_per_s, d.tokens_per_s / v.tokens_per_s),
        ("latency p50 (ms)", d.latency_quantile(0.5) * 1e3, v.latency_quantile(0.5) * 1e3,
         d.latency_quantile(0.5) / v.latency_quantile(0.5)),
        ("latency p99 (ms)", d.latency_quantile(0.99) * 1e3, v.latency_quantile(0.99) * 1e3,
         d.latency_quantile(0.99) / v.latency_quantile(0.99)),
        ("best pass throughput (req/s)", d_best.requests_per_s, v_best.requests_per_s,
         d_best.requests_per_s / v_best.requests_per_s),
    ]
    ratio = rows[0][3]
    verdict = "met" if ratio >= 0.95 else "NOT met"
    lines = [
        "# Serving overhead: Deliberate vs vLLM's OpenAI server",
        "",
        f"Command: `python -m benchmarks.serving --model {args.model} --requests {args.requests} "
        f"--concurrency {args.concurrency} --passes {args.passes}`  ",
        f"Run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores. Load: {args.requests} `/v1/completions` requests, greedy, "
        f"max_tokens {args.max_tokens}, {args.concurrency} concurrent clients; median of "
        f"{2 * args.passes} passes per server (two rounds, A B B A), each after a warm-up and "
        "with the server alone on the machine. Same engine "
        "settings on both sides (eager, VLLM_ENABLE_V1_MULTIPROCESSING=0, no LoRA, same KV "
        "cache), so the ratio is the serving layer's cost.",
        "",
        "| metric | Deliberate | vLLM | Deliberate / vLLM |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {dv:.1f} | {vv:.1f} | {r:.3f} |" for name, dv, vv, r in rows],
        "",
        f"Target: throughput ratio >= 0.95 -> **{verdict}** ({ratio:.3f}).",
        f"Completion tokens per pass: Deliberate {d.completion_tokens}, vLLM {v.completion_tokens} "
        "(equal when both return the same greedy outputs).",
        "",
        "Pass wall times (s), in order: " + "; ".join(
            f"{name} {[round(r.wall_s, 2) for r in runs]}" for name, runs in all_passes.items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--kv-cache-bytes", type=int, default=256 * 2**20)
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.md")
    args = parser.parse_args()

    bodies = greedy_bodies(args)
    port = free_port()
    commands = server_commands(args.model, port, args.max_model_len, args.kv_cache_bytes)
    passes: dict[str, list[LoadResult]] = {name: [] for name in commands}
    for name in ["deliberate", "vllm", "vllm", "deliberate"]:  # A B B A
        passes[name] += measure(name, commands[name], port, bodies, args.concurrency, args.passes)
    results = passes
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure = serving_figure(results, args.out.with_suffix(".png"))
    args.out.write_text(report(results, args) + f"\n![throughput and latency]({figure.name})\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
