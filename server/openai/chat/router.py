from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from server.auth import require_api_key
from server.openai.chat.service import ChatService
from server.openai.protocol import ChatCompletionRequest
from server.openai.streaming import with_cancellation

router = APIRouter(dependencies=[Depends(require_api_key)])


async def get_service(request: Request) -> ChatService:
    return request.app.state.chat_service


@router.post("/v1/chat/completions", response_model=None)
@with_cancellation
async def create_chat_completion(
    body: ChatCompletionRequest, raw_request: Request,
    service: ChatService = Depends(get_service),
):
    return await service.serve(body)
