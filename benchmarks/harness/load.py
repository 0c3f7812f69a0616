"""Closed-loop load generator: C concurrent clients share a queue of requests; and the greedy
serving load the serving benchmarks send (short arithmetic completions, temperature 0)."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from dataclasses import dataclass

import httpx

from benchmarks.harness.servers import SERVED_NAME


@dataclass(frozen=True)
class LoadResult:
    requests: int
    wall_s: float
    completion_tokens: int
    latencies_s: list[float]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s

    def latency_quantile(self, q: float) -> float:
        return statistics.quantiles(self.latencies_s, n=100, method="inclusive")[round(q * 100) - 1]


async def run_load(base_url: str | list[str], path: str, bodies: list[dict], concurrency: int
                   ) -> LoadResult:
    """`base_url`: one server, or several that take the requests in turn (round-robin)."""
    urls = [base_url] if isinstance(base_url, str) else base_url
    queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((urls[i % len(urls)], body))
    latencies: list[float] = []
    tokens = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal tokens
        while not queue.empty():
            url, body = queue.get_nowait()
            start = time.perf_counter()
            response = await http.post(url + path, json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)
            tokens += response.json()["usage"]["completion_tokens"]

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return LoadResult(len(bodies), wall, tokens, latencies)


def median_and_best(results: list[LoadResult]) -> tuple[LoadResult, LoadResult]:
    ordered = sorted(results, key=lambda r: r.wall_s)
    return ordered[len(ordered) // 2], ordered[0]


def prompts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    ops = "+-*"
    return [
        f"Compute: {rng.randint(1, 99)}{rng.choice(ops)}{rng.randint(1, 99)}"
        f"{rng.choice(ops)}{rng.randint(1, 99)}\n"
        for _ in range(count)
    ]


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The greedy serving load: the model, how many requests, how many clients, how long."""
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)


def greedy_bodies(args: argparse.Namespace) -> list[dict]:
    return [{"model": SERVED_NAME, "prompt": p, "max_tokens": args.max_tokens, "temperature": 0}
            for p in prompts(args.requests, seed=1234)]
