"""The app's own CPU per request, engine stubbed: what Deliberate's serving layer (middleware,
validation, admission, routing, safety, response building and rendering) costs for a greedy
/v1/completions or /v1/chat/completions request, apart from HTTP parsing and the engine.

    python -m benchmarks.studies.app_overhead [--requests 4000] [--path chat] [--profile 40]

Drives the ASGI app directly (no sockets, no uvicorn), `--concurrency` requests at a time, over
an engine that answers each request with one final output after 20 ms. Prints CPU microseconds per
request (the median of `--repeats` runs); `--profile N` also prints cProfile's top N functions
by their own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
from collections.abc import AsyncGenerator, Sequence

from engine.protocol import Choice, GenerationOutput, SamplingParams
from server.app import create_app
from server.settings import Settings
from tests.fakes import FakeEngine

REPLY = "12+34=46\n46*2=92\nAnswer: 92"


class InstantEngine(FakeEngine):
    """One final output per request after `delay_s` (so that requests overlap, as on a real
    engine), and nothing recorded."""

    delay_s: float = 0.02

    async def generate(self, prompt: str | Sequence[int], params: SamplingParams,
                       request_id: str, adapter: str | None = None
                       ) -> AsyncGenerator[GenerationOutput, None]:
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        text = REPLY[:params.max_tokens]
        await asyncio.sleep(self.delay_s)
        yield GenerationOutput(request_id, ids, [Choice(
            index=0, text=text, token_ids=[ord(c) for c in text], finish_reason="stop")], True)


def bodies(path: str, count: int) -> list[bytes]:
    prompts = [f"Compute: {i % 97}+{i % 89}*{i % 83}\n" for i in range(count)]
    if path == "chat":
        return [json.dumps({"model": "demo", "messages": [{"role": "user", "content": p}],
                            "max_tokens": 64, "temperature": 0}).encode() for p in prompts]
    return [json.dumps({"model": "demo", "prompt": p, "max_tokens": 64, "temperature": 0})
            .encode() for p in prompts]


async def call(app, path: str, body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"user-agent", b"python-httpx/0.28.1"), (b"accept", b"*/*")]}
    received = False
    never = asyncio.Event()
    status = 0

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(app, path: str, payloads: list[bytes], concurrency: int) -> float:
    """CPU seconds per request."""
    queue = list(reversed(payloads))

    async def client() -> None:
        while queue:
            status = await call(app, path, queue.pop())
            assert status == 200, status

    start = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - start) / len(payloads)


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings(model="models/demo/base", default_strategy="greedy", enable_lora=False,
                        max_model_len=512)
    app = create_app(settings, InstantEngine(max_model_len=512))
    path = "/v1/chat/completions" if args.path == "chat" else "/v1/completions"
    payloads = bodies(args.path, args.requests)
    async with app.router.lifespan_context(app):
        await run(app, path, payloads[:200], args.concurrency)  # warm-up
        per_request = [await run(app, path, payloads, args.concurrency)
                       for _ in range(args.repeats)]
        print(f"{path}: {1e6 * statistics.median(per_request):.0f} us CPU per request, min "
              f"{1e6 * min(per_request):.0f} "
              f"(runs: {[round(1e6 * x) for x in per_request]})")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await run(app, path, payloads, args.concurrency)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=["completions", "chat"], default="completions")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
