from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from server.auth import require_api_key
from server.engine.protocol import Engine
from server.openai.protocol import ModelCard, ModelList

router = APIRouter(dependencies=[Depends(require_api_key)])


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


@router.get("/v1/models")
async def list_models(engine: Engine = Depends(get_engine)) -> ModelList:
    base = engine.model_name
    cards = [ModelCard(id=base, root=base)]
    cards += [ModelCard(id=a.name, root=a.path, parent=base) for a in await engine.list_adapters()]
    return ModelList(data=cards)
