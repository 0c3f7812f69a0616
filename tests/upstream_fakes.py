"""Scripted vLLM OpenAI servers for the remote engine's unit tests, as an httpx transport.

Each `FakeReplica` answers /health, /metrics, /v1/models, /tokenize, /v1/completions (one token
per character of `reply`, streamed or whole), /pooling (`pooled`, as a pooling runner would)
and the adapter endpoints, records the paths, completion and pooling bodies it got, and can be
taken down (connection refused), told to fail a request, or to hold the requests to a path
until an event is set."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx


@dataclass
class FakeReplica:
    url: str
    reply: str = "12"
    up: bool = True
    tokenizer: object = None  # a transformers tokenizer: answers /tokenize
    adapters: set[str] = field(default_factory=set)
    refuse_adapters: bool = False
    bodies: list[dict] = field(default_factory=list)
    status: int = 200  # for /v1/completions
    error: str = "bad request"
    break_stream_after: int | None = None  # tokens streamed before the connection drops
    # what /pooling answers for any prompt (a pooling runner's `data`, [labels] or [tokens,
    # labels]); None: no /pooling route, as on a generating server
    pooled: list | None = None
    pooling_bodies: list[dict] = field(default_factory=list)
    held: dict[str, asyncio.Event] = field(default_factory=dict)  # path -> answered once set
    paths: list[str] = field(default_factory=list)  # every request's path (held ones too)
    metrics_timeout: bool = False  # /metrics reads time out (its /health still answers)
    max_model_len: int = 64

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/health":
            return httpx.Response(200)
        if path == "/metrics":
            if self.metrics_timeout:
                raise httpx.ReadTimeout("timed out reading /metrics", request=request)
            return httpx.Response(200, text="vllm:num_requests_running{x=\"1\"} 0.0\n")
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [
                {"id": "demo", "parent": None, "max_model_len": self.max_model_len},
                *({"id": name, "parent": "demo"} for name in sorted(self.adapters))]})
        if path == "/tokenize":
            return httpx.Response(200, json={"tokens": self._tokenize(body)})
        if path == "/v1/load_lora_adapter":
            if self.refuse_adapters:
                return httpx.Response(400, json={"error": {"message": "No adapter found"}})
            if body["lora_name"] in self.adapters:
                return httpx.Response(400, json={"error": {
                    "message": f"The lora adapter '{body['lora_name']}' has already been loaded."}})
            self.adapters.add(body["lora_name"])
            return httpx.Response(200, text="Success")
        if path == "/v1/unload_lora_adapter":
            self.adapters.discard(body["lora_name"])
            return httpx.Response(200, text="Success")
        if path == "/v1/completions":
            return self._complete(request, body)
        if path == "/pooling" and self.pooled is not None:
            return self._pool(body)
        return httpx.Response(404, json={"detail": "Not Found"})  # FastAPI's, for a route

    def _complete(self, request: httpx.Request, body: dict) -> httpx.Response:
        self.bodies.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": self.error}})
        if body["model"] not in {"demo", *self.adapters}:
            return httpx.Response(404, json={"error": {"message": "model does not exist"}})
        text = self.reply[: body["max_tokens"]]
        reason = "length" if len(text) == body["max_tokens"] else "stop"
        if not body.get("stream"):
            choices = [{"index": i, "text": text, "token_ids": [ord(c) for c in text],
                        "finish_reason": reason, "stop_reason": None,
                        "prompt_token_ids": body["prompt"]} for i in range(body.get("n", 1))]
            return httpx.Response(200, json={"choices": choices})
        return httpx.Response(200, stream=_Stream(text, reason, self.break_stream_after, request))

    def _pool(self, body: dict) -> httpx.Response:
        self.pooling_bodies.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": self.error}})
        return httpx.Response(200, json={"data": [{"index": 0, "object": "pooling",
                                                   "data": self.pooled}]})

    def _tokenize(self, body: dict) -> list[int]:
        if "prompt" in body:
            return list(self.tokenizer.encode(body["prompt"]))
        text = self.tokenizer.apply_chat_template(body["messages"], tokenize=False,
                                                  add_generation_prompt=True)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def completions(self) -> int:
        return len(self.bodies)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, text: str, reason: str, break_after: int | None,
                 request: httpx.Request) -> None:
        self.text, self.reason, self.break_after, self.request = text, reason, break_after, request

    async def __aiter__(self):
        for i, char in enumerate(self.text):
            if self.break_after is not None and i == self.break_after:
                raise httpx.RemoteProtocolError("peer closed connection", request=self.request)
            last = i == len(self.text) - 1
            chunk = {"choices": [{"index": 0, "text": char, "token_ids": [ord(char)],
                                  "finish_reason": self.reason if last else None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"


class Fleet:
    """Routes each request to the fake replica its URL names."""

    def __init__(self, *replicas: FakeReplica) -> None:
        self.replicas = {r.url: r for r in replicas}

    def transport(self) -> httpx.MockTransport:
        async def handler(request: httpx.Request) -> httpx.Response:
            replica = self.replicas[f"http://{request.url.host}:{request.url.port}"]
            replica.paths.append(request.url.path)
            if request.url.path in replica.held:
                await replica.held[request.url.path].wait()
            return replica.handle(request)
        return httpx.MockTransport(handler)
