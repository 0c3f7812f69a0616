"""A client that leaves mid-request leaves nothing running in the engine."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

pytestmark = pytest.mark.slow

# 4 requests x 16 samples x 480 tokens take ~10 s on 2 CPU cores: far longer than the 3 s
# the engine gets to be idle again after the clients leave.
LONG = {"model": "demo", "prompt": "Compute: 1+1\n", "max_tokens": 480, "n": 16,
        "temperature": 1.0, "ignore_eos": True}
CLIENTS = 4


def engine_busy(server) -> float:
    return (server.metric("vllm:num_requests_running")
            + server.metric("vllm:num_requests_waiting"))


async def wait_until(predicate, timeout_s: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "timed out"
        await asyncio.sleep(0.1)
    return time.monotonic() - start


# A client refused by admission (429: the lanes' capacity follows the engine's measured
# throughput, lower on a loaded machine) waits its Retry-After and tries again, as a client
# should; the tests are about leaving once admitted.
RETRIES = 20


def retry_after_s(response: httpx.Response) -> float:
    assert response.status_code == 429, response.text
    return min(float(response.headers.get("retry-after", 1)), 5.0)


async def admitted_stream(http: httpx.AsyncClient, connections: contextlib.AsyncExitStack,
                          body: dict) -> httpx.Response:
    for _ in range(RETRIES):
        attempt = contextlib.AsyncExitStack()
        stream = await attempt.enter_async_context(
            http.stream("POST", "/v1/completions", json=body))
        if stream.status_code == 200:
            await connections.enter_async_context(attempt)
            return stream
        wait = retry_after_s(stream)
        await attempt.aclose()
        await asyncio.sleep(wait)
    raise AssertionError(f"not admitted in {RETRIES} tries")


async def post_until_it_times_out(http: httpx.AsyncClient, body: dict) -> None:
    for _ in range(RETRIES):
        try:
            response = await http.post("/v1/completions", json=body)
        except httpx.ReadTimeout:  # admitted, and the client gives up and disconnects
            return
        await asyncio.sleep(retry_after_s(response))
    raise AssertionError(f"not admitted in {RETRIES} tries")


async def test_streaming_clients_that_leave_are_aborted(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        async with contextlib.AsyncExitStack() as connections:
            streams = [await admitted_stream(http, connections, {**LONG, "stream": True})
                       for _ in range(CLIENTS)]
            for stream in streams:
                await anext(aiter(stream.aiter_lines()))  # generation has started
            assert server.metric("vllm:num_requests_running") > 0
        # Leaving the block closed every connection mid-stream.
        await wait_until(lambda: engine_busy(server) == 0, timeout_s=3)


async def test_non_streaming_clients_that_leave_are_aborted(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=1.5) as http:
        requests = [asyncio.create_task(post_until_it_times_out(http, LONG))
                    for _ in range(CLIENTS)]
        await wait_until(lambda: server.metric("vllm:num_requests_running") > 0, timeout_s=30)
        for request in requests:
            await request  # the client gave up and disconnected
    await wait_until(lambda: engine_busy(server) == 0, timeout_s=3)


# A search that would run for long: mcts with many simulations, rollouts, no early stop. The
# learned PRM's factor keeps every path's score below stop_score 1.0 (logic x syntax alone score
# any well-formed path 1.0, and the search then ended before the client could leave).
SEARCH = {"model": "demo", "prompt": "Numbers: 3 7 25 50 Target: 353\n", "max_tokens": 64,
          "temperature": 1.0, "reasoning": {"strategy": "mcts", "simulations": 64,
                                            "stop_score": 1.0, "evaluation": "rollout",
                                            "verifiers": {"logic": 1, "syntax": 1, "prm": 1}}}


@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_that_leaves_mid_search_leaves_no_engine_request(server, stream):
    # a search fans out into many engine requests, concurrently; all must be aborted
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        if stream:
            async with http.stream("POST", "/v1/completions",
                                   json={**SEARCH, "stream": True}) as response:
                assert response.status_code == 200
                await wait_until(lambda: server.metric("vllm:num_requests_running") > 0,
                                 timeout_s=30)
        else:
            request = asyncio.create_task(http.post("/v1/completions", json=SEARCH))
            await wait_until(lambda: server.metric("vllm:num_requests_running") > 0,
                             timeout_s=30)
            # the client leaves at the search's first engine call (waiting for a read timeout
            # instead raced the search: it may find a perfect answer and stop early)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
    # the engine's own gauges: nothing of the search is left running or waiting
    await wait_until(lambda: engine_busy(server) == 0, timeout_s=3)
    await asyncio.sleep(1.0)  # and the search starts nothing after that
    assert engine_busy(server) == 0
