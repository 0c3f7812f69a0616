from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from server.auth import require_api_key
from server.openai.completions.batch import serve_batch
from server.openai.completions.service import CompletionService
from server.openai.protocol import CompletionRequest
from server.openai.streaming import with_cancellation

router = APIRouter(dependencies=[Depends(require_api_key)])


async def get_service(request: Request) -> CompletionService:
    return request.app.state.completion_service


@router.post("/v1/completions", response_model=None)
@with_cancellation
async def create_completion(
    body: CompletionRequest, raw_request: Request, response: Response,
    service: CompletionService = Depends(get_service),
):
    batch = body.batch()
    if batch is not None and len(batch) > 1:
        return await serve_batch(service, body, batch, response)
    if batch is not None:  # a batch of one is that prompt
        body = body.model_copy(update={"prompt": batch[0]})
    return await service.serve(body)
