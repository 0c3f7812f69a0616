"""POST /v1/verify."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from server.auth import require_api_key
from server.openai.streaming import with_cancellation
from server.verify.protocol import VerifyRequest, VerifyResponse
from server.verify.service import VerifyService

router = APIRouter(dependencies=[Depends(require_api_key)])


async def get_service(request: Request) -> VerifyService:
    return request.app.state.verify_service


# None when the client has left (nothing is sent then): the schema still names the response
@router.post("/v1/verify", response_model=None, responses={200: {"model": VerifyResponse}})
@with_cancellation  # a client that leaves aborts its verifiers' engine requests
async def verify(body: VerifyRequest, raw_request: Request,
                 service: VerifyService = Depends(get_service)) -> VerifyResponse | None:
    return await service.verify(body)
