"""Admission under load, with the options a new user sends (no budgets, no temperature, no
admission flags on the server): does the server admit what the machine can serve, refuse the
excess fast and honestly, follow a fleet that loses a replica, and keep single passes fast
while searches run? Local (vLLM in the server) and remote (two `vllm serve` replicas).

    flock /work/heavy.lock python -m benchmarks admission      # about 40 minutes here

Phases, per mode:
- idle: greedy chat requests one after another: the idle greedy latency.
- wave: 64 concurrent requests, greedy, beam, mcts and best_of_n, half on an adapter: every
  one should be answered (0 429s, 0 5xx).
- burst: 640 concurrent requests (three quarters greedy, the rest searches). A 429 must come
  within a second, with Retry-After; its client waits exactly that long and retries (and again
  while refused, up to 8 times). Measured: how often the first retry is admitted and answered.
- kill (remote): a replica is killed (kill -9) 10 s into a burst of 320 and restarted 30 s later;
  clients retry 429s and 503s after their Retry-After. Measured: the lanes' capacity over time
  (it should drop with the replica and come back with it), and that every request is answered.
- soak (local): 8 greedy clients beside 16 search clients (closed loop) for --soak-s, with the
  engine scheduling by priority (single passes first, the default) and first come first served
  (`--engine-args '{"scheduling_policy": "fcfs"}'`), each on a fresh server: greedy p99 against
  the idle p99, and the searches finished per minute.

Writes benchmarks/results/admission.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.harness.chat import metric_total
from tests.servers import free_port, replica_args, replica_env, running_server

RESULTS = Path(__file__).parent / "results"
LOGS = RESULTS / "logs" / "admission"  # ignored by git
MODEL = Path(__file__).resolve().parents[1] / "models" / "demo" / "base"
SEARCHES = ("beam", "mcts", "best_of_n")
ADAPTERS = ("countdown", "arithmetic")
RETRIES = 8
# Requests one client (one connection pool) sends at once. A burst comes from many clients: one
# httpx pool of 640 connections scans them all on every request and response (httpcore's
# connection assignment), 5.7 s of the benchmark's own CPU for 640 refusals the server had
# answered in 0.45 s, which is what the slowest 429 had measured (about 0.9 s from 32 pools).
CLIENT_REQUESTS = 20
GAUGES = ("deliberate_admission_capacity", "deliberate_admission_queue_limit",
          "deliberate_admission_drain_rate", "deliberate_admission_in_flight_cost",
          "deliberate_admission_queued_cost")


def body(rng: random.Random, strategy: str, adapter: bool) -> dict:
    """A chat request as a new user writes it: the model, the messages, the strategy."""
    a, b, c = (rng.randint(2, 99) for _ in range(3))
    model = rng.choice(ADAPTERS) if adapter else "demo"
    content = (f"Compute: {a}+{b}*{c}" if model != "countdown" or rng.random() < 0.5
               else f"Numbers: {a} {b} {c} Target: {a + b}")
    return {"model": model, "messages": [{"role": "user", "content": content}],
            "reasoning": {"strategy": strategy}}


@dataclass
class Outcome:
    strategy: str
    statuses: list[int] = field(default_factory=list)  # every try's status, in order
    refusal_s: list[float] = field(default_factory=list)  # time to each 429
    retry_after: list[float] = field(default_factory=list)
    latency_s: float | None = None  # of the try that was answered 200
    error: str | None = None  # a lost connection or a timeout

    @property
    def final(self) -> int | None:
        return self.statuses[-1] if self.statuses else None


async def patient(http: httpx.AsyncClient, request: dict, strategy: str,
                  retry_on: tuple[int, ...] = (429,)) -> Outcome:
    """Sends `request`; while it is refused (a status in `retry_on`), waits its Retry-After and
    sends it again, up to RETRIES times."""
    outcome = Outcome(strategy)
    for _ in range(RETRIES + 1):
        started = time.perf_counter()
        try:
            response = await http.post("/v1/chat/completions", json=request)
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            return outcome
        elapsed = time.perf_counter() - started
        outcome.statuses.append(response.status_code)
        if response.status_code == 200:
            outcome.latency_s = elapsed
            return outcome
        if response.status_code not in retry_on:
            return outcome
        retry = response.headers.get("retry-after")
        if response.status_code == 429:
            outcome.refusal_s.append(elapsed)
        outcome.retry_after.append(float(retry) if retry is not None else float("nan"))
        await asyncio.sleep(float(retry or 1))
    return outcome


def gauges(url: str) -> dict[str, float]:
    """The admission gauges, `name{lane}` -> value."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {}
    for name in GAUGES:
        for lane, value in re.findall(rf'^{name}{{lane="(\w+)"}} (\S+)$', text, re.M):
            found[f"{name.removeprefix('deliberate_admission_')}{{{lane}}}"] = float(value)
    found["rejected"] = metric_total(text, "deliberate_admission_rejected_total")
    return found


def refusal_buckets(url: str) -> dict[float, float]:
    """The server's refusal-latency histogram: upper bound (s) -> refusals within it so far."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {float(le): float(v) for le, v in re.findall(
        r'^deliberate_refusal_latency_seconds_bucket{le="([^"]+)"} (\S+)$', text, re.M)}


def server_refusals(before: dict[float, float], after: dict[float, float]) -> dict:
    """The refusals between two readings, as the server timed them (arrival to the 429's last
    byte): how many, how many within a second, and the bucket the slowest fell in."""
    within = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    count = within.get(float("inf"), 0.0)
    slowest = next((le for le, n in within.items() if n >= count), None) if count else None
    return {"count": int(count), "within_1s": int(within.get(1.0, 0.0)),
            "slowest_at_most_s": slowest}


def counters(url: str) -> dict[str, float]:
    """The engine's preemptions and prefix-cache hits so far (vLLM's counters)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {name.removeprefix("vllm:"): metric_total(text, name)
            for name in ("vllm:num_preemptions_total", "vllm:prefix_cache_hits_total",
                         "vllm:prefix_cache_queries_total", "vllm:generation_tokens_total",
                         "vllm:prompt_tokens_total")}


async def sample_gauges(url: str, samples: list, stop: asyncio.Event, t0: float,
                        every_s: float = 2.0) -> None:
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError):
            samples.append({"t": round(time.monotonic() - t0, 1),
                            **await asyncio.to_thread(gauges, url)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def client(url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(900, connect=30), limits=limits)


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)


# --- phases ------------------------------------------------------------------------------------

async def idle(url: str, n: int, seed: int) -> dict:
    """Greedy requests one after another, after a warm-up: a request of each strategy on the
    base and on each adapter (the adapters load on first use)."""
    rng = random.Random(seed)
    latencies = []
    async with client(url, 1) as http:
        for strategy in ("greedy", *SEARCHES):
            for model in ("demo", *ADAPTERS):
                await patient(http, {**body(rng, strategy, False), "model": model}, strategy)
        for _ in range(n):
            outcome = await patient(http, body(rng, "greedy", False), "greedy")
            if outcome.latency_s is not None:
                latencies.append(outcome.latency_s)
    return {"n": n, "answered": len(latencies), "p50_s": quantile(latencies, 0.5),
            "p99_s": quantile(latencies, 0.99)}


def summarize(outcomes: list[Outcome], sent: dict) -> dict:
    first = collections.Counter(o.statuses[0] if o.statuses else "lost" for o in outcomes)
    final = collections.Counter(o.final if o.error is None else "lost" for o in outcomes)
    refused = [o for o in outcomes if o.statuses and o.statuses[0] == 429]
    retried = [o for o in refused if len(o.statuses) > 1]
    admitted_first_retry = sum(o.statuses[1] == 200 for o in retried)
    refusal_s = [o.refusal_s[0] for o in refused if o.refusal_s]
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    for o in outcomes:
        if o.latency_s is not None:
            latencies[o.strategy].append(o.latency_s)
    return {
        "requests": len(outcomes), "wall_s": round(sent["wall_s"], 1),
        "client_cpu_s": round(sent["client_cpu_s"], 1),
        "first_try": {str(k): v for k, v in sorted(first.items(), key=str)},
        "final": {str(k): v for k, v in sorted(final.items(), key=str)},
        "5xx_tries": sum(s >= 500 for o in outcomes for s in o.statuses),
        "lost": [o.error for o in outcomes if o.error][:5],
        "refused_first": len(refused),
        "refusal_s_max": max(refusal_s, default=None),
        "refusal_s_p99": quantile(refusal_s, 0.99),
        "refused_without_retry_after": sum(any(v != v for v in o.retry_after) for o in refused),
        "retry_after_s": {"min": min((o.retry_after[0] for o in refused), default=None),
                          "max": max((o.retry_after[0] for o in refused), default=None)},
        "first_retry_admitted": admitted_first_retry,
        "first_retry_share": round(admitted_first_retry / len(retried), 3) if retried else None,
        "latency_s": {s: {"n": len(v), "p50": quantile(v, 0.5), "p99": quantile(v, 0.99)}
                      for s, v in sorted(latencies.items())},
    }


async def concurrent(url: str, requests: list[tuple[str, dict]],
                     retry_on: tuple[int, ...] = (429,)) -> tuple[list[Outcome], dict]:
    """Sends `requests` at once, from a client per CLIENT_REQUESTS of them. With the outcomes,
    the wall time and the CPU this process spent sending (the clients' own share of the
    machine, which a refusal's time includes)."""
    started, cpu = time.monotonic(), time.process_time()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client(url, CLIENT_REQUESTS))
                   for _ in range(0, len(requests), CLIENT_REQUESTS)]
        outcomes = await asyncio.gather(*(
            patient(clients[i // CLIENT_REQUESTS], request, strategy, retry_on)
            for i, (strategy, request) in enumerate(requests)))
    return list(outcomes), {"wall_s": time.monotonic() - started,
                            "client_cpu_s": time.process_time() - cpu}


def wave_requests(n: int, seed: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    shapes = itertools.cycle(itertools.product(("greedy", *SEARCHES), (False, True)))
    return [(s, body(rng, s, adapter)) for s, adapter in itertools.islice(shapes, n)]


def burst_requests(n: int, seed: int, greedy_share: float = 0.75) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    requests = []
    for i in range(n):
        strategy = "greedy" if rng.random() < greedy_share else rng.choice(SEARCHES)
        requests.append((strategy, body(rng, strategy, rng.random() < 0.5)))
    return requests


async def with_gauges(url: str, work) -> tuple[object, list]:
    samples: list = []
    stop, t0 = asyncio.Event(), time.monotonic()
    sampler = asyncio.create_task(sample_gauges(url, samples, stop, t0))
    try:
        return await work, samples
    finally:
        stop.set()
        await sampler


async def soak(url: str, seconds: float, greedy_clients: int, search_clients: int,
               seed: int) -> dict:
    until = time.monotonic() + seconds
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    statuses: collections.Counter = collections.Counter()

    async def loop(http: httpx.AsyncClient, i: int, searching: bool) -> None:
        rng = random.Random(seed + i)
        while time.monotonic() < until:
            strategy = rng.choice(SEARCHES) if searching else "greedy"
            request = body(rng, strategy, rng.random() < 0.5)
            outcome = await patient(http, request, strategy)
            statuses[outcome.final if outcome.error is None else "lost"] += 1
            if outcome.latency_s is not None and time.monotonic() < until:
                kind = "search" if searching else "greedy"
                latencies[kind].append(outcome.latency_s)
                on = "base" if request["model"] == "demo" else "adapter"
                latencies[f"{kind} on {on}"].append(outcome.latency_s)

    started = time.monotonic()
    async with client(url, greedy_clients + search_clients) as http:
        await asyncio.gather(*(loop(http, i, i >= greedy_clients)
                               for i in range(greedy_clients + search_clients)))
    wall = time.monotonic() - started
    engine = await asyncio.to_thread(counters, url)
    return {"seconds": seconds, "engine": engine, "greedy_clients": greedy_clients,
            "search_clients": search_clients, "statuses": {str(k): v for k, v in
                                                           statuses.items()},
            "greedy": {"n": len(latencies["greedy"]), "p50_s": quantile(latencies["greedy"], .5),
                       "p99_s": quantile(latencies["greedy"], .99)},
            "by_model": {k: {"n": len(v), "p50_s": quantile(v, .5), "p99_s": quantile(v, .99)}
                         for k, v in sorted(latencies.items()) if " on " in k},
            "search": {"n": len(latencies["search"]),
                       "p50_s": quantile(latencies["search"], .5),
                       "per_min": round(len(latencies["search"]) / seconds * 60, 2)},
            "wall_s": round(wall, 1)}


# --- servers -----------------------------------------------------------------------------------

def deliberate(stack: contextlib.ExitStack, name: str, extra: list[str]) -> str:
    port = free_port()
    command = ["-m", "server", "--port", str(port), "--log-level", "warning", *extra]
    return stack.enter_context(running_server(command, port, LOGS / f"{name}.log",
                                              timeout_s=600))


def replica(stack: contextlib.ExitStack, port: int, name: str) -> str:
    return stack.enter_context(running_server(
        replica_args(MODEL, port, extra=["--scheduling-policy", "priority"]), port,
        LOGS / f"{name}-{port}.log", env=replica_env(), timeout_s=600))


def process_on(port: int) -> psutil.Process:
    """This run's server process listening on `port`; LookupError if none is. A child that
    ended while the tree was read is skipped: after the kill phase the killed replica's
    processes linger until reaped, and reading one of them made the phase's API CPU nan."""
    for child in psutil.Process().children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if "--port" in command and str(port) in command:
            return child
    raise LookupError(f"no process of this run serves port {port}")


async def kill_phase(url: str, stack: contextlib.ExitStack, ports: list[int], n: int,
                     seed: int, kill_at_s: float = 10, down_s: float = 30) -> dict:
    """A burst; a replica killed `kill_at_s` into it and restarted `down_s` later."""
    events: dict = {}
    t0 = time.monotonic()

    async def fault() -> None:
        await asyncio.sleep(kill_at_s)
        victim = process_on(ports[1])
        # the replica's whole process group, as a crashed host loses it: killing only the API
        # process left its EngineCore running (orphaned, 39% of a core) for the rest of the run
        os.killpg(os.getpgid(victim.pid), signal.SIGKILL)
        events["killed_s"] = round(time.monotonic() - t0, 1)
        await asyncio.sleep(down_s)
        events["restart_s"] = round(time.monotonic() - t0, 1)
        await asyncio.to_thread(replica, stack, ports[1], "replica-restarted")
        events["replica_healthy_s"] = round(time.monotonic() - t0, 1)

    samples: list = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_gauges(url, samples, stop, t0, every_s=1.0))
    faulting = asyncio.create_task(fault())
    (outcomes, sent), server = await server_side(
        url, concurrent(url, burst_requests(n, seed), retry_on=(429, 502, 503)))
    await faulting
    rejoined = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the server's health probe puts it back in rotation
        now = await asyncio.to_thread(gauges, url)
        if now["capacity{search}"] >= samples[0]["capacity{search}"] * 0.99:
            rejoined = round(time.monotonic() - t0, 1)
            break
        await asyncio.sleep(1)
    stop.set()
    await sampler
    back = capacity_back_s(samples) or rejoined
    return {**summarize(outcomes, sent), **server,
            "events": {**events, "capacity_back_s": back},
            "gauges": samples}


def capacity_back_s(samples: list[dict]) -> float | None:
    """When the search lane's capacity was back to what it was before the kill: the first
    sample after its lowest at its first value again. (Polled after the burst instead, it read
    the burst's end: 145 s where the capacity was back at 65 s, 2 s after the replica was.)"""
    caps = [(s["t"], s["capacity{search}"]) for s in samples]
    if not caps:
        return None
    lowest = min(range(len(caps)), key=lambda i: caps[i][1])
    return next((t for t, cap in caps[lowest:] if cap >= caps[0][1] * 0.99), None)


# --- the run -----------------------------------------------------------------------------------

# engine scheduling configurations the soak compares, each on a fresh server
SOAK_CONFIGS = {
    "priority": [],  # the server's default: single passes first
    "fcfs": ["--engine-args", json.dumps({"scheduling_policy": "fcfs"})],
    "priority, 256 tokens a step": ["--engine-args",
                                    json.dumps({"max_num_batched_tokens": 256})],
    # fewer sequences a step: on a CPU a step's time grows with its batch, so a smaller batch
    # answers a single pass sooner, and may cost searches no throughput
    "priority, 256 tokens, 32 seqs": ["--engine-args", json.dumps(
        {"max_num_batched_tokens": 256, "max_num_seqs": 32})],
    "priority, 256 tokens, 16 seqs": ["--engine-args", json.dumps(
        {"max_num_batched_tokens": 256, "max_num_seqs": 16})],
}


async def local_mode(args: argparse.Namespace) -> dict:
    results: dict = {}
    configs = args.soak_configs if "soak" in args.phases else ["priority"]
    for name in configs:
        with contextlib.ExitStack() as stack:
            url = deliberate(stack, f"local-{name.split(',')[0]}", SOAK_CONFIGS[name])
            part = results.setdefault(name, {})
            part["idle"] = await idle(url, args.idle, args.seed)
            print("local", name, "idle", part["idle"], flush=True)
            if name == "priority":
                await phases(url, part, args, "local")
            if "soak" in args.phases:
                part["soak"] = await soak(url, args.soak_s, 8, 16, args.seed)
                print("local", name, "soak", part["soak"], flush=True)
    return results


async def server_side(url: str, work) -> tuple[object, dict]:
    """`work` awaited, and the server's side of it: the CPU its API process spent and its 429s
    as it timed them."""
    before, cpu = await asyncio.to_thread(refusal_buckets, url), api_cpu_s(url)
    result = await work
    return result, {"api_cpu_s": round(api_cpu_s(url) - cpu, 1),
                    "server_refusals": server_refusals(
                        before, await asyncio.to_thread(refusal_buckets, url))}


def api_cpu_s(url: str) -> float:
    """The CPU seconds the server's own process (the API, not its engine core or replicas)
    has spent so far."""
    try:
        times = process_on(int(url.rsplit(":", 1)[1])).cpu_times()
    except (psutil.Error, LookupError):  # the server itself ended while it was read
        return float("nan")
    return times.user + times.system


async def phases(url: str, part: dict, args: argparse.Namespace, mode: str) -> None:
    if "wave" in args.phases:
        (outcomes, sent), server = await server_side(
            url, concurrent(url, wave_requests(args.wave, args.seed)))
        part["wave"] = {**summarize(outcomes, sent), **server}
        print(mode, "wave", json.dumps(part["wave"]), flush=True)
    if "burst" in args.phases:
        ((outcomes, sent), server), samples = await with_gauges(url, server_side(
            url, concurrent(url, burst_requests(args.burst, args.seed + 1))))
        part["burst"] = {**summarize(outcomes, sent), "gauges": samples, **server}
        print(mode, "burst", json.dumps({k: v for k, v in part["burst"].items()
                                         if k != "gauges"}), flush=True)


async def remote_mode(args: argparse.Namespace) -> dict:
    part: dict = {}
    with contextlib.ExitStack() as stack:
        ports = [free_port(), free_port()]
        urls = [replica(stack, port, "replica") for port in ports]
        url = deliberate(stack, "remote", ["--engine", "remote", "--model", str(MODEL),
                                           *[f for u in urls for f in ("--upstream", u)]])
        part["idle"] = await idle(url, args.idle, args.seed)
        print("remote idle", part["idle"], flush=True)
        await phases(url, part, args, "remote")
        if "kill" in args.phases:
            try:
                part["kill"] = await kill_phase(url, stack, ports, args.kill_burst,
                                                args.seed + 2)
            except Exception as exc:  # the other phases' results are kept
                part["kill_error"] = f"{type(exc).__name__}: {exc}"
                print("remote kill failed:", part["kill_error"], flush=True)
                return part
            print("remote kill", json.dumps({k: v for k, v in part["kill"].items()
                                             if k != "gauges"}), flush=True)
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="local,remote")
    parser.add_argument("--phases", default="wave,burst,kill,soak")
    parser.add_argument("--idle", type=int, default=40, help="idle greedy requests")
    parser.add_argument("--wave", type=int, default=64)
    parser.add_argument("--burst", type=int, default=640)
    parser.add_argument("--kill-burst", type=int, default=320)
    parser.add_argument("--soak-s", type=float, default=240)
    parser.add_argument("--soak-configs", type=lambda v: v.split(";"),
                        default=list(SOAK_CONFIGS), help="names of SOAK_CONFIGS, ;-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="admission")
    args = parser.parse_args()
    args.phases = set(args.phases.split(","))
    started = time.time()
    results: dict = {"command": shlex.join(["python", "-m", "benchmarks", "admission",
                                            *sys.argv[1:]]), "args": {
        k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "cores": os.cpu_count()}
    RESULTS.mkdir(exist_ok=True)
    for mode, run in (("local", local_mode), ("remote", remote_mode)):
        if mode in args.modes.split(","):
            results[mode] = asyncio.run(run(args))
            results["wall_s"] = round(time.time() - started)
            (RESULTS / f"{args.out}.json").write_text(json.dumps(results, indent=1) + "\n")
    from benchmarks.admission_report import figure, report
    png = RESULTS / f"{args.out}.png"
    text = report(results, png.name if figure(results, png) else None)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
