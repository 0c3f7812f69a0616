"""A batch of prompts in one /v1/completions request, as OpenAI's and vLLM's endpoint take it.

Each prompt is answered as a request of its own (its own admission, strategy and search) through
`Serving.answer`, `--batch-concurrency` of them at once: the rest wait their turn inside the
batch, so that one batch of searches cannot fill the admission queue and be refused as a whole.
The response puts prompt i's choices at indexes i*n .. i*n+n-1 (a search may return fewer
distinct answers than n), sums the usage, and gives one `reasoning` object per prompt, in order.
The strategy header lists each prompt's strategy, comma-separated; a streamed batch starts before
its later prompts are decided, so it sends none (the closing chunk's `reasoning` has every
strategy). Every prompt is checked before any runs, so one bad prompt is a 400 naming it; a
prompt failing later fails the request and stops the others (in a stream already started, as an
error event).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

from fastapi import Response

from server.errors import APIError, bad_request, to_api_error
from server.openai.completions.service import CompletionService
from server.openai.generation import EngineRequest
from server.openai.protocol import CompletionRequest, CompletionResponse, Usage, usage
from server.openai.streaming import event_stream
from server.reasoning.response import STRATEGY_HEADER


async def serve_batch(service: CompletionService, request: CompletionRequest,
                      prompts: Sequence[str] | Sequence[list[int]], response: Response):
    limit = service.generation.limits.max_prompts
    if len(prompts) > limit:
        raise bad_request(f"the batch has {len(prompts)} prompts; this server takes at most "
                          f"{limit} in one request (--max-prompts): split it", param="prompt")
    requests = [request.model_copy(update={"prompt": prompt}) for prompt in prompts]
    jobs = [_prepared(service, one, i) for i, one in enumerate(requests)]
    slots = asyncio.Semaphore(service.generation.limits.batch_concurrency)
    batch_id = f"cmpl-{uuid.uuid4().hex}"
    if request.stream:
        return await _stream(service, request, requests, jobs, slots, batch_id)
    answers = await _all([_in_slot(slots, service, one, job)
                          for one, job in zip(requests, jobs)])
    response.headers[STRATEGY_HEADER] = ", ".join(strategy for strategy, _ in answers)
    return _merged(batch_id, request, [body for _, body in answers])


async def _stream(service: CompletionService, request: CompletionRequest,
                  requests: Sequence[CompletionRequest], jobs: Sequence[EngineRequest],
                  slots: asyncio.Semaphore, batch_id: str):
    """The first prompt is admitted before the response starts, so that a refusal (the server
    busy, say) is a status code; the others once the stream runs, in the batch's slots. Admitting
    more up front would deadlock: their tickets hold the lane's capacity while nothing reads
    their streams."""
    _, first = await service.answer(requests[0], jobs[0])
    streams = [_slotted(slots, first)]
    streams += [_slotted(slots, None, lambda one=one, job=job: service.answer(one, job))
                for one, job in zip(requests[1:], jobs[1:])]
    return event_stream(_merged_chunks(batch_id, request, streams))


async def _in_slot(slots: asyncio.Semaphore, service: CompletionService,
                   request: CompletionRequest, job: EngineRequest):
    async with slots:
        return await service.answer(request, job)


async def _slotted(slots: asyncio.Semaphore, chunks: AsyncIterator[dict] | None,
                   open_later=None) -> AsyncIterator[dict]:
    """A prompt's chunks, holding a slot of the batch while they run: `chunks` already open,
    or opened by `open_later()` once a slot is free."""
    try:
        async with slots:
            if chunks is None:
                _, chunks = await open_later()
            async for chunk in chunks:
                yield chunk
    finally:
        if chunks is not None:
            await chunks.aclose()


def _prepared(service: CompletionService, request: CompletionRequest, i: int) -> EngineRequest:
    try:
        return service.prepare(request)
    except Exception as exc:
        error = to_api_error(exc)
        raise APIError(error.status, f"prompt {i} of the batch: {error.message}",
                       param=error.param, code=error.code, type=error.type,
                       headers=error.headers) from exc


async def _all(answers: list) -> list:
    """Every answer; the first failure cancels the rest (aborting their engine requests)."""
    tasks = [asyncio.ensure_future(answer) for answer in answers]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _merged(batch_id: str, request: CompletionRequest,
            bodies: Sequence[CompletionResponse]) -> CompletionResponse:
    choices = []
    for i, body in enumerate(bodies):
        for choice in body.choices:
            choices.append(choice.model_copy(update={"index": i * request.n + choice.index}))
    return CompletionResponse(id=batch_id, model=request.model, choices=choices,
                              usage=_summed([body.usage for body in bodies]),
                              reasoning=[body.reasoning for body in bodies])


def _summed(usages: Sequence[Usage | dict | None]) -> Usage:
    parts = [Usage.model_validate(u) for u in usages if u is not None]
    details = [u.completion_tokens_details for u in parts if u.completion_tokens_details]
    return usage(sum(u.prompt_tokens for u in parts), sum(u.completion_tokens for u in parts),
                 sum(d.reasoning_tokens for d in details) if details else None)


async def _merged_chunks(batch_id: str, request: CompletionRequest,
                         streams: Sequence[AsyncIterator[dict]]) -> AsyncIterator[dict]:
    """The prompts' chunks as they come, re-indexed under one id; each stream's closing chunk
    (no choices: usage, reasoning) is held back for one closing chunk of the batch."""
    closing: list[dict | None] = [None] * len(streams)
    last = None
    async with contextlib.aclosing(_interleaved(streams)) as chunks:
        async for i, chunk in chunks:
            last = chunk
            if not chunk["choices"]:
                closing[i] = chunk
                continue
            for choice in chunk["choices"]:
                choice["index"] += i * request.n
            yield {**chunk, "id": batch_id}
    if last is None:
        return
    end = {**last, "id": batch_id, "choices": []}
    if "usage" in end:
        end["usage"] = _summed([c.get("usage") for c in closing if c]).model_dump(mode="json")
    end["reasoning"] = [c.get("reasoning") if c else None for c in closing]
    yield end


async def _interleaved(streams: Sequence[AsyncIterator[dict]]
                       ) -> AsyncIterator[tuple[int, dict]]:
    """(stream index, chunk) from all streams as each is ready; closes them all at the end."""
    pending = {asyncio.ensure_future(anext(stream)): i for i, stream in enumerate(streams)}
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                i = pending.pop(task)
                try:
                    chunk = task.result()
                except StopAsyncIteration:
                    continue
                pending[asyncio.ensure_future(anext(streams[i]))] = i
                yield i, chunk
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            await stream.aclose()
