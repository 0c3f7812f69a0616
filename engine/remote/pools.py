"""The engine calls' connections, in several small httpx pools rather than one large one.

httpcore scans every connection of a pool on each request and response, so a pool's cost per
call grows with its size: at 256 streamed calls in flight, one pool of 256 connections cost its
caller 26 ms of CPU a call, eight pools of 32 3.8 ms, sixteen of 16 about 2 ms
(benchmarks/studies/results/httpx_pools.md). The remote engine's calls all run in the API
process, so one pool capped a burst at a few dozen calls a second of that process's CPU.

A call goes to the pool with the fewest calls in flight: a call waits for a connection only when
every pool is full, as it would in one pool of their total size.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator

import httpx

# connections a pool holds at most: small enough that its scans stay cheap (above)
POOL_SIZE = 16


class Pools:
    def __init__(self, clients: list[httpx.AsyncClient], connections_each: int | None = None
                 ) -> None:
        self.clients = clients
        self.connections_each = connections_each  # None: as each client was built
        self.in_flight = [0] * len(clients)

    @classmethod
    def open(cls, max_connections: int, pool_size: int = POOL_SIZE, **client_args) -> Pools:
        """`max_connections` in all, over pools of at most `pool_size`; `client_args` go to
        every httpx.AsyncClient (headers, timeout)."""
        count = max(math.ceil(max_connections / pool_size), 1)
        each = max(math.ceil(max_connections / count), 1)
        limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
        # one TLS context for all (each client would load the CA bundle again: 25 ms apiece)
        client_args.setdefault("verify", httpx.create_ssl_context())
        return cls([httpx.AsyncClient(limits=limits, **client_args) for _ in range(count)],
                   each)

    @contextlib.contextmanager
    def _least_busy(self):
        i = min(range(len(self.clients)), key=self.in_flight.__getitem__)
        self.in_flight[i] += 1
        try:
            yield self.clients[i]
        finally:
            self.in_flight[i] -= 1

    async def get(self, url: str, **kwargs) -> httpx.Response:
        with self._least_busy() as client:
            return await client.get(url, **kwargs)

    async def post(self, url: str, **kwargs) -> httpx.Response:
        with self._least_busy() as client:
            return await client.post(url, **kwargs)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs) -> AsyncIterator[httpx.Response]:
        with self._least_busy() as client:
            async with client.stream(method, url, **kwargs) as response:
                yield response

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
