"""A client that goes away must get its engine request aborted, streaming or not."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.protocol import SamplingParams
from server.admission import SINGLE
from server.verify.router import get_service
from server.verify.service import VerifyService
from verifiers.registry import VerifierRegistry

BODY = {"model": "demo", "prompt": "x", "max_tokens": 10}


async def call_and_disconnect(app, body: dict, path: str = "/v1/completions") -> list[dict]:
    """Sends `body` to the ASGI app at `path`, then disconnects once generation has started."""
    raw = json.dumps(body).encode()
    sent: list[dict] = []
    requests = [{"type": "http.request", "body": raw, "more_body": False}]
    engine = app.state.engine

    async def receive() -> dict:
        if requests:
            return requests.pop(0)
        while not engine.running:  # generation started: leave
            await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode())],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return sent


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_aborts_the_engine_request(app, engine, stream):
    engine.hold = asyncio.Event()  # generation stalls after one token, as if the model were slow
    await call_and_disconnect(app, {**BODY, "stream": stream})
    (request_id, _, _), = engine.requests
    assert engine.aborted == [request_id]
    assert not engine.running


async def test_finished_requests_are_not_aborted(client, engine):
    await client.post("/v1/completions", json=BODY)
    await client.post("/v1/completions", json={**BODY, "stream": True})
    assert len(engine.requests) == 2 and engine.aborted == []


class Prefill:
    """A reward model scoring on the served engine: one engine request per batch."""
    name = "prefill"
    cost = 1

    def __init__(self, engine):
        self.engine = engine

    async def score(self, items, context):
        outputs = self.engine.generate("x", SamplingParams(max_tokens=5), "rm-1")
        try:
            async for _ in outputs:
                pass
        finally:
            await outputs.aclose()
        return [1.0] * len(items)


async def test_a_verification_whose_client_leaves_aborts_its_engine_requests(app, engine):
    engine.hold = asyncio.Event()  # the reward model's prefill stalls
    registry = VerifierRegistry({"prefill": Prefill(engine)}, skipped={})
    admission = app.state.chat_service.admission
    # a verifier timeout far past the test's: only the client leaving can end the request
    app.dependency_overrides[get_service] = lambda: VerifyService(registry, {}, 60.0, admission,
                                                                  engine.encode)
    await call_and_disconnect(app, {"prompt": "p", "completion": "a\nb",
                                    "verifiers": {"prefill": 1}}, "/v1/verify")
    assert engine.aborted == ["rm-1"] and not engine.running
    assert admission.lanes[SINGLE].running == 0  # its ticket went back


@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_whose_client_leaves_aborts_its_engine_request(app, engine, stream):
    engine.hold = asyncio.Event()
    await call_and_disconnect(app, {"model": "demo", "input": "x", "max_output_tokens": 10,
                                    "stream": stream}, path="/v1/responses")
    (request_id, _, _), = engine.requests
    assert engine.aborted == [request_id] and not engine.running


class _Request:
    """What with_cancellation reads of a request: receive(), ending in `ending` when told."""

    def __init__(self, ending: str = "http.disconnect") -> None:
        self.leave = asyncio.Event()
        self.ending = ending

    async def receive(self) -> dict:
        await self.leave.wait()
        if self.ending == "raise":
            raise RuntimeError("the receive channel broke")
        return {"type": self.ending}


@pytest.mark.parametrize("ending", ["http.disconnect", "raise"])
async def test_the_handler_runs_in_the_request_task_and_a_leaving_client_cancels_it(ending):
    from server.openai.streaming import with_cancellation
    seen = {}

    @with_cancellation
    async def handler(raw_request):
        seen["task"] = asyncio.current_task()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    request = _Request(ending)
    call = asyncio.create_task(handler(raw_request=request))
    await asyncio.sleep(0.01)
    assert seen["task"] is call  # no task of its own: no hop between tasks to wait for
    request.leave.set()
    assert await asyncio.wait_for(call, 1) is None
    assert seen["cancelled"] and call.cancelling() == 0  # handled: nothing left pending


async def test_a_cancellation_from_outside_is_not_swallowed():
    from server.openai.streaming import with_cancellation

    @with_cancellation
    async def handler(raw_request):
        await asyncio.sleep(30)

    call = asyncio.create_task(handler(raw_request=_Request()))
    await asyncio.sleep(0.01)
    call.cancel()  # the server shutting down
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_client_leaving_after_the_handler_answered_cancels_nothing():
    from server.openai.streaming import with_cancellation
    request = _Request()

    @with_cancellation
    async def handler(raw_request):
        request.leave.set()
        await asyncio.sleep(0)  # the watcher ends in this turn; its callback runs after
        return "answer"

    async def answered_then_sent():
        result = await handler(raw_request=request)
        await asyncio.sleep(0.01)  # sending the response: must not be cancelled
        return result

    assert await asyncio.wait_for(answered_then_sent(), 1) == "answer"
