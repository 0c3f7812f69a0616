from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from server.auth import require_api_key
from server.openai.responses.protocol import ResponsesRequest
from server.openai.responses.service import ResponsesService
from server.openai.streaming import with_cancellation

router = APIRouter(dependencies=[Depends(require_api_key)])


async def get_service(request: Request) -> ResponsesService:
    return request.app.state.responses_service


@router.post("/v1/responses", response_model=None)
@with_cancellation
async def create_response(body: ResponsesRequest, raw_request: Request,
                          service: ResponsesService = Depends(get_service)):
    return await service.create(body)


@router.get("/v1/responses/{response_id}", response_model=None)
async def retrieve_response(response_id: str,
                            service: ResponsesService = Depends(get_service)) -> dict:
    return service.get(response_id)
