"""A client that goes away must get its engine request aborted, streaming or not."""

from __future__ import annotations

import asyncio
import json

import pytest

BODY = {"model": "demo", "prompt": "x", "max_tokens": 10}


async def call_and_disconnect(app, body: dict) -> list[dict]:
    """Sends `body` to the ASGI app, then disconnects once generation has started."""
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
             "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/v1/completions",
             "raw_path": b"/v1/completions", "query_string": b"", "root_path": "",
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
