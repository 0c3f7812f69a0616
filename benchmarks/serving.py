"""Serving overhead: Deliberate vs vLLM's own OpenAI server, same model, same load, one run.

    python -m benchmarks.serving [--model models/demo/base] [--requests 256] [--concurrency 32]
                                 [--rounds 32]

Both servers are started and warmed up, then take the same greedy load in turn, one pass at a
time (the other idle), interleaved A B, B A, A B ... for `--rounds` rounds, each pass after a
short warm-up of its own: the two passes of a round are seconds apart, so that drift in the
machine's speed (other work on its two cores) hits both alike, and each round gives one ratio.
Reported: each side's per-pass throughput and p99 (min, quartiles, max), the per-round ratios'
spread, and each side's API-process CPU per request (the serving layer's own work; the engine
core is a child process). Writes benchmarks/results/serving.{md,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.load import LoadResult, add_load_arguments, greedy_bodies, run_load
from benchmarks.harness.plots import serving_figure
from benchmarks.harness.servers import ENGINE_ENV, SERVED_NAME, cpu_seconds, listening_process
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
SERVERS = ("deliberate", "vllm")
TARGET_THROUGHPUT, TARGET_P99 = 0.95, 1.1


def server_commands(model: str, port: int, max_model_len: int, kv_bytes: int,
                    deliberate_args: Sequence[str] = ()) -> dict[str, list[str]]:
    common = ["--model", model, "--port", str(port), "--max-model-len", str(max_model_len),
              "--served-model-name", SERVED_NAME]
    return {
        "deliberate": ["-m", "server", *common, "--kv-cache-bytes", str(kv_bytes),
                       "--no-enable-lora", "--log-level", "warning",
                       # plain serving, as vLLM does it: no difficulty routing
                       "--default-strategy", "greedy", *deliberate_args],
        # the engine as Deliberate's LocalEngine configures it (engine/local.py), so that only
        # the serving layer differs
        "vllm": ["-m", "vllm.entrypoints.openai.api_server", *common, "--enforce-eager",
                 "--block-size", "32", "--kv-cache-memory-bytes", str(kv_bytes),
                 "--scheduling-policy", "priority", "--enable-prompt-embeds",
                 "--max-logprobs", "20", "--seed", "0",
                 "--uvicorn-log-level", "warning", "--no-enable-log-requests"],
    }


@dataclass(frozen=True)
class Pass:
    load: LoadResult
    api_cpu_s: float  # the server's API process during the pass
    engine_cpu_s: float  # its engine (child) processes
    idle_cpu_s: float  # the other server, idle meanwhile

    @property
    def p99_ms(self) -> float:
        return self.load.latency_quantile(0.99) * 1e3


async def interleaved(urls: dict[str, str], processes: dict, bodies: list[dict],
                      concurrency: int, rounds: int) -> dict[str, list[Pass]]:
    passes: dict[str, list[Pass]] = {name: [] for name in urls}
    for name, url in urls.items():  # warm-up: the first requests compile and fill caches
        for _ in range(2):
            await run_load(url, "/v1/completions", bodies[:concurrency], concurrency)
    for r in range(rounds):
        for name in (SERVERS if r % 2 == 0 else SERVERS[::-1]):  # A B, B A, ...
            other = next(n for n in urls if n != name)
            await run_load(urls[name], "/v1/completions", bodies[:concurrency], concurrency)
            (api0, engine0), idle0 = cpu_seconds(processes[name]), sum(
                cpu_seconds(processes[other]))
            load = await run_load(urls[name], "/v1/completions", bodies, concurrency)
            (api1, engine1), idle1 = cpu_seconds(processes[name]), sum(
                cpu_seconds(processes[other]))
            passes[name].append(Pass(load, api1 - api0, engine1 - engine0, idle1 - idle0))
            print(f"round {r + 1}/{rounds} {name}: {load.requests_per_s:.1f} req/s, "
                  f"p99 {passes[name][-1].p99_ms:.0f} ms", flush=True)
    return passes


def spread(values: list[float]) -> tuple[float, float, float, float, float]:
    """min, lower quartile, median, upper quartile, max."""
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return min(values), q1, median, q3, max(values)


def report(passes: dict[str, list[Pass]], args: argparse.Namespace) -> str:
    d, v = passes["deliberate"], passes["vllm"]
    throughput = {n: [p.load.requests_per_s for p in passes[n]] for n in SERVERS}
    p99 = {n: [p.p99_ms for p in passes[n]] for n in SERVERS}
    p50 = {n: [p.load.latency_quantile(0.5) * 1e3 for p in passes[n]] for n in SERVERS}
    # a round's two passes are adjacent: its ratio is the least drift-prone comparison
    ratio = [a.load.requests_per_s / b.load.requests_per_s for a, b in zip(d, v)]
    p99_ratio = [a.p99_ms / b.p99_ms for a, b in zip(d, v)]
    requests = {n: sum(p.load.requests for p in passes[n]) for n in SERVERS}
    api_ms = {n: 1e3 * sum(p.api_cpu_s for p in passes[n]) / requests[n] for n in SERVERS}
    engine_ms = {n: 1e3 * sum(p.engine_cpu_s for p in passes[n]) / requests[n] for n in SERVERS}
    idle = {n: sum(p.idle_cpu_s for p in passes[n]) / sum(p.load.wall_s for p in passes[n])
            for n in SERVERS}

    def row(name: str, values: list[float], fmt: str = ".1f") -> str:
        return f"| {name} | " + " | ".join(f"{x:{fmt}}" for x in spread(values)) + " |"

    median_ratio, median_p99 = statistics.median(ratio), statistics.median(p99_ratio)
    met = median_ratio >= TARGET_THROUGHPUT and median_p99 <= TARGET_P99
    tokens = {n: sorted({p.load.completion_tokens for p in passes[n]}) for n in SERVERS}
    lines = [
        "# Serving overhead: Deliberate vs vLLM's OpenAI server",
        "",
        f"Command: `python -m benchmarks.serving --model {args.model} --requests {args.requests} "
        f"--concurrency {args.concurrency} --rounds {args.rounds}"
        + (f" --deliberate-args {shlex.quote(args.deliberate_args)}" if args.deliberate_args
           else "") + "`  ",
        f"Run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores. Load: {args.requests} `/v1/completions` requests, greedy, "
        f"max_tokens {args.max_tokens}, {args.concurrency} concurrent clients. Both servers run "
        f"side by side and take the load in turn, one pass each per round, interleaved A B, "
        f"B A, ... over {args.rounds} rounds, each pass after a warm-up of {args.concurrency} "
        "requests while the other server idles. Same engine settings on both sides (eager, "
        "VLLM_ENABLE_V1_MULTIPROCESSING=0, no LoRA, block size 32, priority scheduling, prompt "
        "embeddings, the same KV cache), so the ratio is the serving layer's cost.",
        "",
        f"Target: the median of the rounds' throughput ratios >= {TARGET_THROUGHPUT} and of "
        f"their p99 ratios <= {TARGET_P99} -> **{'met' if met else 'NOT met'}** "
        f"({median_ratio:.3f}, {median_p99:.3f}).",
        "",
        "| per pass | min | q1 | median | q3 | max |",
        "|---|---:|---:|---:|---:|---:|",
        *[row(f"{n} throughput (req/s)", throughput[n]) for n in SERVERS],
        *[row(f"{n} latency p50 (ms)", p50[n]) for n in SERVERS],
        *[row(f"{n} latency p99 (ms)", p99[n]) for n in SERVERS],
        row("throughput ratio, per round (Deliberate / vLLM)", ratio, ".3f"),
        row("p99 ratio, per round (Deliberate / vLLM)", p99_ratio, ".3f"),
        "",
        "| CPU per request (ms), all passes | Deliberate | vLLM | Deliberate / vLLM |",
        "|---|---:|---:|---:|",
        f"| API process (the serving layer) | {api_ms['deliberate']:.2f} | "
        f"{api_ms['vllm']:.2f} | {api_ms['deliberate'] / api_ms['vllm']:.3f} |",
        f"| engine processes | {engine_ms['deliberate']:.2f} | {engine_ms['vllm']:.2f} | "
        f"{engine_ms['deliberate'] / engine_ms['vllm']:.3f} |",
        "",
        f"The idle server used {100 * idle['vllm']:.1f}% of a core during Deliberate's passes "
        f"and {100 * idle['deliberate']:.1f}% during vLLM's. Completion tokens per pass: "
        f"Deliberate {tokens['deliberate']}, vLLM {tokens['vllm']} (equal when both return the "
        "same greedy outputs).",
        "",
        "Per round (throughput req/s, p99 ms): " + "; ".join(
            f"{a.load.requests_per_s:.0f}/{b.load.requests_per_s:.0f} req/s, "
            f"{a.p99_ms:.0f}/{b.p99_ms:.0f} ms" for a, b in zip(d, v)),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--rounds", type=int, default=32,
                        help="rounds of one pass per server (default: 32; 16 took 3.5 minutes "
                             "here with both servers' start-up)")
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--kv-cache-bytes", type=int, default=256 * 2**20)
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.md")
    parser.add_argument("--deliberate-args", default="",
                        help="more flags for Deliberate's server, e.g. '--confidence-top-k 0' "
                             "(the serving layer without the confidence's logprobs)")
    args = parser.parse_args()

    bodies = greedy_bodies(args)
    ports = {name: free_port() for name in SERVERS}
    env = {**os.environ, **ENGINE_ENV}
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(running_server(
            server_commands(args.model, ports[name], args.max_model_len,
                            args.kv_cache_bytes, shlex.split(args.deliberate_args))[name],
            ports[name], RESULTS / "logs" / f"serving-{name}.log", env=env))
            for name in SERVERS}
        processes = {name: listening_process(ports[name]) for name in SERVERS}
        passes = asyncio.run(interleaved(urls, processes, bodies, args.concurrency, args.rounds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure = serving_figure({n: [p.load for p in passes[n]] for n in SERVERS},
                            args.out.with_suffix(".png"))
    args.out.write_text(report(passes, args) + f"\n![throughput and latency]({figure.name})\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
