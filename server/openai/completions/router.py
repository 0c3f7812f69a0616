from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from server.auth import require_api_key
from server.openai.completions.service import CompletionService
from server.openai.protocol import CompletionRequest
from server.openai.streaming import event_stream, with_cancellation
from server.reasoning.response import STRATEGY_HEADER

router = APIRouter(dependencies=[Depends(require_api_key)])


def get_service(request: Request) -> CompletionService:
    return request.app.state.completion_service


@router.post("/v1/completions", response_model=None)
@with_cancellation
async def create_completion(
    body: CompletionRequest, raw_request: Request, response: Response,
    service: CompletionService = Depends(get_service),
):
    job = service.prepare(body)
    decision = await service.decide(body)
    headers = {STRATEGY_HEADER: decision.strategy}
    if body.stream:
        return event_stream(await service.stream(body, job, decision), headers)
    response.headers.update(headers)
    return await service.complete(body, job, decision)
