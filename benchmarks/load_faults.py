"""Overload and faults, measured: 64 closed-loop clients send mixed strategies and adapters to one
real server on loopback, first for a soak (resident memory sampled throughout), then with faults
injected (clients that disconnect mid-request, a verifier that hangs past its timeout and one that
raises), and last the engine killed (kill -9 of its engine core) with this script acting as the
supervisor that restarts the server.

    flock /work/heavy.lock python -m benchmarks.load_faults     # about 16 minutes

Every request must be answered: 200, or 429 with Retry-After (a client then waits that long),
never a 5xx, never a lost connection, except the 503s of the requests in flight when the engine
is killed, which is what they should get. Bounded in time (--soak-s, --fault-s) and in requests
(--max-requests). Writes benchmarks/results/load.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.harness.servers import install_verifier_plugins
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
ADAPTERS = ("demo", "demo", "demo", "countdown", "arithmetic")
# strategy -> (share of requests, its reasoning options)
MIX = {
    "greedy": (0.5, {"strategy": "greedy"}),
    "beam": (0.15, {"strategy": "beam", "beam_width": 2, "budget_tokens": 512}),
    "mcts": (0.1, {"strategy": "mcts", "simulations": 4, "budget_tokens": 512}),
    "best_of_n": (0.1, {"strategy": "best_of_n", "n_candidates": 4, "budget_tokens": 512}),
    "auto": (0.15, {"strategy": "auto", "budget_tokens": 512}),
}
SERVER_FLAGS = [
    "--log-level", "warning", "--verifier-timeout-s", "2",
    # room for 8 searches of 512 budget tokens and 8 waiting; single passes: 32 x 64 tokens
    "--search-capacity", "4096", "--search-queue", "4096",
    "--single-pass-capacity", "2048", "--single-pass-queue", "2048",
    "--queue-timeout-s", "20", "--request-timeout-s", "300",
]


class HangingVerifier:
    """Never answers in time: the scorer's timeout must drop it."""

    name = "hang"

    def __init__(self, deps=None) -> None:
        pass

    async def score(self, items, context):
        await asyncio.sleep(3600)


class RaisingVerifier:
    name = "boom"

    def __init__(self, deps=None) -> None:
        pass

    async def score(self, items, context):
        raise RuntimeError("injected verifier fault")


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter = field(default_factory=collections.Counter)
    lost: list[str] = field(default_factory=list)  # transport errors the client did not cause
    left: int = 0  # requests whose client disconnected on purpose
    no_retry_after: int = 0  # 429s without the header
    faulty_verifier_requests: int = 0
    faulty_verifier_degraded: int = 0  # answered 200 with the faulty verifiers named as errors
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + len(self.lost) + self.left

    def summary(self) -> dict:
        return {"requests": self.requests, "statuses": dict(sorted(self.statuses.items())),
                "lost": len(self.lost), "lost_examples": self.lost[:5], "left_on_purpose": self.left,
                "429_without_retry_after": self.no_retry_after,
                "faulty_verifier_requests": self.faulty_verifier_requests,
                "faulty_verifier_degraded": self.faulty_verifier_degraded,
                "wall_s": round(self.wall_s, 1),
                "latency_s": {s: {"n": len(v), "p50": round(_q(v, 0.5), 3),
                                  "p99": round(_q(v, 0.99), 3)}
                              for s, v in sorted(self.latencies.items()) if v}}


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def body(rng: random.Random, faults: bool) -> tuple[str, dict]:
    strategy = rng.choices(list(MIX), weights=[w for w, _ in MIX.values()])[0]
    reasoning = dict(MIX[strategy][1])
    a, b, c = (rng.randint(2, 99) for _ in range(3))
    prompt = rng.choice([f"Compute: {a}+{b}*{c}", f"Numbers: {a} {b} {c} Target: {a + b}"])
    request = {"model": rng.choice(ADAPTERS), "max_tokens": 64, "temperature": 0.7}
    if faults and strategy != "greedy" and rng.random() < 0.3:
        reasoning["verifiers"] = {"logic": 1, "hang": 1, "boom": 1}
        strategy += "+faulty"
    if rng.random() < 0.5:
        request["messages"] = [{"role": "user", "content": prompt}]
    else:
        request["prompt"] = prompt + "\n"
    return strategy, {**request, "reasoning": reasoning}


async def client(http: httpx.AsyncClient, phase: Phase, rng: random.Random, until: list[float],
                 budget: list[int], faults: bool, leaves: float) -> None:
    """Requests one after another until `until[0]` (monotonic) or the shared budget is spent."""
    while time.monotonic() < until[0] and budget[0] > 0:
        budget[0] -= 1
        strategy, request = body(rng, faults)
        path = "/v1/chat/completions" if "messages" in request else "/v1/completions"
        started = time.perf_counter()
        leave_after = rng.uniform(0.05, 1.5) if rng.random() < leaves else None
        try:
            async with asyncio.timeout(leave_after):
                response = await http.post(path, json=request)
        except TimeoutError:
            phase.left += 1  # this client hung up on purpose: the server must clean up
            continue
        except httpx.HTTPError as exc:
            phase.lost.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(1)  # no server to hammer
            continue
        phase.statuses[response.status_code] += 1
        if response.status_code == 200:
            phase.latencies[strategy.removesuffix("+faulty")].append(
                time.perf_counter() - started)
            if strategy.endswith("+faulty"):
                phase.faulty_verifier_requests += 1
                errors = response.json()["reasoning"].get("verifier_errors") or {}
                phase.faulty_verifier_degraded += {"hang", "boom"} <= set(errors)
        elif response.status_code == 429:
            retry = response.headers.get("retry-after")
            if retry is None:
                phase.no_retry_after += 1
            await asyncio.sleep(min(float(retry or 1), 10))


async def run_phase(url: str, name: str, seconds: float, clients: int, max_requests: int,
                    faults: bool, leaves: float, seed: int) -> Phase:
    phase = Phase(name)
    budget = [max_requests]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        await asyncio.gather(*(client(http, phase, random.Random(seed + i), [started + seconds],
                                      budget, faults, leaves) for i in range(clients)))
    phase.wall_s = time.monotonic() - started
    return phase


def rss_mb(server: psutil.Process) -> tuple[float, float]:
    """(the server process, the server with its engine core and other children), MB."""
    own = server.memory_info().rss
    children = sum(c.memory_info().rss for c in server.children(recursive=True))
    return own / 2**20, (own + children) / 2**20


async def sample_rss(server: psutil.Process, samples: list, stop: asyncio.Event,
                     t0: float) -> None:
    while not stop.is_set():
        with_children = rss_mb(server)
        samples.append((round(time.monotonic() - t0, 1), *map(lambda x: round(x, 1),
                                                              with_children)))
        try:
            await asyncio.wait_for(stop.wait(), 5)
        except TimeoutError:
            pass


def gauge(url: str, pattern: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(rf"^{pattern}(?:{{[^}}]*}})? (\S+)$", text, re.M))


async def kill_engine(url: str, server: psutil.Process, clients: int, seed: int) -> dict:
    """The engine core killed under load: what the clients in flight get, how the server
    ends, and how long a restart takes (done by the caller)."""
    phase = Phase("engine killed")
    until = [time.monotonic() + 120]

    async def load() -> None:
        await asyncio.gather(*(client(http, phase, random.Random(seed + i), until, [10**6],
                                      False, 0.0) for i in range(clients)))

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        task = asyncio.create_task(load())
        await asyncio.sleep(5)
        core = max(server.children(recursive=True), key=lambda p: p.memory_info().rss)
        killed = time.monotonic()
        os.kill(core.pid, signal.SIGKILL)
        status = await asyncio.to_thread(server.wait, 60)
        exited_s = time.monotonic() - killed
        until[0] = time.monotonic() + 2  # clients meet the absent server, then stop
        await task
    return {"exit_status": status, "exit_after_s": round(exited_s, 1),
            "statuses": dict(sorted(phase.statuses.items())),
            "refused_connections_after_exit": len(phase.lost)}


def server_process(port: int) -> psutil.Process:
    return next(p for p in psutil.Process().children(recursive=True)
                if "server" in p.cmdline() and str(port) in p.cmdline())


async def measure(args: argparse.Namespace) -> dict:
    port = free_port()
    results: dict = {"clients": args.clients, "server_flags": SERVER_FLAGS, "mix": {
        k: w for k, (w, _) in MIX.items()}, "adapters": ADAPTERS}
    log = Path(tempfile.gettempdir()) / "deliberate-load-server.log"
    with tempfile.TemporaryDirectory() as tmp:
        install_verifier_plugins(Path(tmp), "deliberate-fault-verifiers", {
            "hang": "benchmarks.load_faults:HangingVerifier",
            "boom": "benchmarks.load_faults:RaisingVerifier"})
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, str(Path.cwd())])}
        command = ["-m", "server", "--port", str(port), *SERVER_FLAGS]
        with running_server(command, port, log, env=env) as url:
            server = server_process(port)
            samples: list = []
            stop, t0 = asyncio.Event(), time.monotonic()
            sampler = asyncio.create_task(sample_rss(server, samples, stop, t0))
            phases = []
            for name, seconds, faults, leaves in (("soak", args.soak_s, False, 0.0),
                                                  ("faults", args.fault_s, True, 0.15)):
                phase = await run_phase(url, name, seconds, args.clients, args.max_requests,
                                        faults, leaves, args.seed + len(phases) * 1000)
                await asyncio.sleep(3)  # what the clients left behind is cleaned up
                results[name] = {**phase.summary(), "after": {
                    "engine_running": gauge(url, "vllm:num_requests_running"),
                    "engine_waiting": gauge(url, "vllm:num_requests_waiting"),
                    "admission_in_flight_cost": gauge(url, "deliberate_admission_in_flight_cost"),
                    "admission_queued_cost": gauge(url, "deliberate_admission_queued_cost"),
                    "healthy": httpx.get(f"{url}/health").status_code == 200}}
                phases.append(phase)
                print(name, json.dumps(results[name]), flush=True)
            stop.set()
            await sampler
            results["rss_mb"] = samples
            results["engine_killed"] = await kill_engine(url, server, args.clients, args.seed)
        restarted = time.monotonic()
        with running_server(command, port, log, env=env) as url:  # the supervisor's restart
            ok = httpx.post(f"{url}/v1/completions", timeout=60, json={
                "model": "demo", "prompt": "Compute: 2+3\n", "max_tokens": 8}).status_code
        results["engine_killed"].update({"restart_to_healthy_s": round(
            time.monotonic() - restarted, 1), "first_request_after_restart": ok})
    results["soak"]["rss_drift"] = rss_drift(samples, args.soak_s)
    return results


def rss_drift(samples: list, soak_s: float) -> dict:
    """Resident memory over the soak: the median of its second minute against its last
    minute (the first minute loads adapters and warms caches), and the fitted slope."""
    soak = [s for s in samples if s[0] <= soak_s]
    early = [s[2] for s in soak if 60 <= s[0] < 120]
    late = [s[2] for s in soak if s[0] >= soak_s - 60]
    xs, ys = [s[0] for s in soak if s[0] >= 60], [s[2] for s in soak if s[0] >= 60]
    slope = statistics.linear_regression(xs, ys).slope * 60 if len(xs) > 2 else 0.0
    return {"second_minute_mb": statistics.median(early) if early else None,
            "last_minute_mb": statistics.median(late) if late else None,
            "slope_mb_per_min": round(slope, 2)}


def report(results: dict) -> str:
    lines = ["# Overload and faults (benchmarks/load_faults.py)", "",
             f"{results['clients']} closed-loop clients on loopback, one server (demo model, CPU "
             "engine), mixed strategies "
             f"({', '.join(f'{k} {w:.0%}' for k, w in results['mix'].items())}) and models "
             "(base 60%, the countdown and arithmetic adapters 20% each), chat and completions "
             "half and half; a 429's client waits its Retry-After. Server flags: "
             f"`{' '.join(results['server_flags'])}`.", "",
             "| phase | requests | 200 | 429 | other | lost | left on purpose | 429 w/o Retry-After "
             "| after: engine requests, admission cost held | healthy |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|---|"]
    for name in ("soak", "faults"):
        p = results[name]
        s = p["statuses"]
        other = {k: v for k, v in s.items() if k not in (200, 429, "200", "429")}
        after = p["after"]
        lines.append(
            f"| {name} ({p['wall_s']:.0f} s) | {p['requests']} | {s.get(200, s.get('200', 0))} | "
            f"{s.get(429, s.get('429', 0))} | {other or 0} | {p['lost']} | "
            f"{p['left_on_purpose']} | {p['429_without_retry_after']} | "
            f"{after['engine_running'] + after['engine_waiting']:g}, "
            f"{after['admission_in_flight_cost'] + after['admission_queued_cost']:g} | "
            f"{after['healthy']} |")
    lines += ["", "Latency of the 200s (s):", "", "| strategy | soak n | soak p50 | soak p99 | "
              "faults n | faults p50 | faults p99 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for strategy in results["mix"]:
        cells = []
        for name in ("soak", "faults"):
            lat = results[name]["latency_s"].get(strategy)
            cells += [str(lat["n"]), f"{lat['p50']:.2f}", f"{lat['p99']:.2f}"] if lat else \
                ["0", "-", "-"]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    f = results["faults"]
    drift = results["soak"]["rss_drift"]
    k = results["engine_killed"]
    lines += ["", f"Faulty verifiers (a hanging one and a raising one beside `logic`, "
              f"--verifier-timeout-s 2): {f['faulty_verifier_requests']} searches answered 200, "
              f"{f['faulty_verifier_degraded']} of them naming both in `verifier_errors`.", "",
              f"Resident memory over the soak (server + engine core): "
              f"{drift['second_minute_mb']} MB in its second minute, {drift['last_minute_mb']} MB "
              f"in its last; fitted slope {drift['slope_mb_per_min']} MB/min "
              "([load.png](load.png)).", "",
              f"Engine killed (kill -9 of the engine core) under the same load: the requests in "
              f"flight got {k['statuses']}; the server exited with status {k['exit_status']} "
              f"{k['exit_after_s']} s after the kill; {k['refused_connections_after_exit']} "
              f"requests then found no server (connection refused) until the supervisor "
              f"(this script) restarted it, healthy {k['restart_to_healthy_s']} s later; its "
              f"first request answered {k['first_request_after_restart']}.", ""]
    return "\n".join(lines)


def figure(samples: list, soak_s: float, path: Path) -> None:
    from benchmarks.harness.plots import plt

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([s[0] / 60 for s in samples], [s[2] for s in samples], label="server + engine core")
    ax.plot([s[0] / 60 for s in samples], [s[1] for s in samples], label="server process")
    ax.axvline(soak_s / 60, color="grey", linestyle="--", label="faults injected")
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title("Resident memory under 64 clients")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--soak-s", type=float, default=600)
    parser.add_argument("--fault-s", type=float, default=120)
    parser.add_argument("--max-requests", type=int, default=50_000, help="per phase")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="load")
    args = parser.parse_args()
    results = asyncio.run(measure(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(results, indent=1) + "\n")
    figure(results["rss_mb"], args.soak_s, RESULTS / f"{args.out}.png")
    text = report(results)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
