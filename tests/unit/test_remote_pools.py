"""The remote engine's connection pools: several small ones (httpcore's per-call cost grows with
a pool's size), each call to the least busy, every call counted until its response is done."""

from __future__ import annotations

import asyncio

import httpx

from engine.remote.pools import Pools


def test_the_connections_are_split_into_pools_of_at_most_the_pool_size():
    pools = Pools.open(256, pool_size=16)
    assert (len(pools.clients), pools.connections_each) == (16, 16)
    odd = Pools.open(40, pool_size=16)
    assert (len(odd.clients), odd.connections_each) == (3, 14)  # 42 >= 40
    assert (len(Pools.open(1).clients), Pools.open(1).connections_each) == (1, 1)


async def test_a_call_goes_to_the_least_busy_pool_and_counts_until_its_response_is_done():
    release = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, content=b"data: x\n\n")

    pools = Pools([httpx.AsyncClient(transport=httpx.MockTransport(answer)) for _ in range(3)])
    posts = [asyncio.create_task(pools.post("http://replica/v1/completions", json={}))
             for _ in range(6)]
    await asyncio.sleep(0.01)
    assert pools.in_flight == [2, 2, 2]
    release.set()
    assert [r.status_code for r in await asyncio.gather(*posts)] == [200] * 6
    assert pools.in_flight == [0, 0, 0]
    async with pools.stream("POST", "http://replica/v1/completions", json={}) as response:
        assert sum(pools.in_flight) == 1  # held while the stream is read
        assert await response.aread() == b"data: x\n\n"
    assert (await pools.get("http://replica/health")).status_code == 200
    assert pools.in_flight == [0, 0, 0]
    await pools.aclose()
    assert all(c.is_closed for c in pools.clients)
