"""The CPU one httpx connection pool costs its caller per request, by the pool's size, at the same
number of requests in flight: what the admission benchmark's clients paid for one pool of 640
connections, and what the remote engine's one pool of 256 (`RemoteEngine`'s `max_connections`)
may cost the API process under a burst.

    python -m benchmarks.studies.httpx_pools [--in-flight 256] [--pools 1,2,8,32]

An upstream in a subprocess (uvicorn, a bare ASGI app) answers every request after 0.5 s with
five streamed chunks 50 ms apart, as an engine call holds its connection while others start.
`--in-flight` requests at once, spread over `--pools` clients of in-flight/pools connections
each; after a warm-up round (connections opened), the measured round's CPU time of this process
per request. Writes benchmarks/studies/results/httpx_pools.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx

from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"


async def upstream(scope, receive, send) -> None:
    """The stand-in engine: 0.5 s to the first byte, then five chunks 50 ms apart."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.5)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for _ in range(5):
        await send({"type": "http.response.body", "body": b"data: x\n\n", "more_body": True})
        await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b""})


async def measure(url: str, in_flight: int, pools: int) -> dict:
    size = max(in_flight // pools, 1)
    clients = [httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(
        max_connections=size, max_keepalive_connections=size)) for _ in range(pools)]

    async def one(i: int) -> None:
        async with clients[i % pools].stream("GET", "/") as response:
            async for _ in response.aiter_bytes():
                pass

    try:
        for _ in range(2):  # the first round opens the connections
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(in_flight)))
        return {"pools": pools, "connections_each": size,
                "cpu_ms_per_request": round(1e3 * (time.process_time() - cpu) / in_flight, 2),
                "wall_s": round(time.perf_counter() - wall, 2)}
    finally:
        for client in clients:
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--pools", type=lambda v: [int(p) for p in v.split(",")],
                        default=[1, 2, 8, 32])
    args = parser.parse_args()
    port = free_port()
    command = ["-m", "uvicorn", "benchmarks.studies.httpx_pools:upstream", "--port", str(port),
               "--log-level", "error", "--backlog", "4096", "--timeout-keep-alive", "120"]
    with running_server(command, port, RESULTS / "logs" / "httpx_pools-upstream.log",
                        timeout_s=30) as url:
        rows = [asyncio.run(measure(url, args.in_flight, pools)) for pools in args.pools]
    lines = ["# CPU per request through httpx pools (benchmarks/studies/httpx_pools.py)", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, httpx "
             f"{httpx.__version__}: {args.in_flight} streamed requests in flight, spread over "
             "the pools; the CPU this process spent per request (the upstream's apart).", "",
             "| pools | connections each | CPU ms / request | wall s |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['pools']} | {r['connections_each']} | {r['cpu_ms_per_request']} | "
              f"{r['wall_s']} |" for r in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "httpx_pools.json").write_text(json.dumps(
        {"in_flight": args.in_flight, "rows": rows}, indent=1) + "\n")
    (RESULTS / "httpx_pools.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
