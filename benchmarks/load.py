"""Closed-loop load generator: C concurrent clients share a queue of requests."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx


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
