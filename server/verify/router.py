"""POST /v1/verify."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from server.auth import require_api_key
from server.verify.protocol import VerifyRequest, VerifyResponse
from server.verify.service import VerifyService

router = APIRouter(dependencies=[Depends(require_api_key)])


def get_service(request: Request) -> VerifyService:
    return request.app.state.verify_service


@router.post("/v1/verify")
async def verify(body: VerifyRequest,
                 service: VerifyService = Depends(get_service)) -> VerifyResponse:
    return await service.verify(body)
