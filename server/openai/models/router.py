from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from adapters.registry import AdapterRegistry
from server.auth import require_api_key
from server.errors import model_not_found
from engine.protocol import Engine
from server.openai.protocol import ModelCard, ModelList

router = APIRouter(dependencies=[Depends(require_api_key)])


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_registry(request: Request) -> AdapterRegistry:
    return request.app.state.adapters


@router.get("/v1/models")
async def list_models(engine: Engine = Depends(get_engine),
                      registry: AdapterRegistry = Depends(get_registry)) -> ModelList:
    return ModelList(data=_cards(engine, registry))


@router.get("/v1/models/{model:path}")
async def retrieve_model(model: str, engine: Engine = Depends(get_engine),
                         registry: AdapterRegistry = Depends(get_registry)) -> ModelCard:
    cards = _cards(engine, registry)
    for card in cards:
        if card.id == model:
            return card
    raise model_not_found(model, [card.id for card in cards])


def _cards(engine: Engine, registry: AdapterRegistry) -> list[ModelCard]:
    base = engine.model_name
    cards = [ModelCard(id=base, root=base)]
    cards += [ModelCard(id=name, root=str(record.adapter.path), parent=base,
                        created=record.created)
              for name, record in registry.records().items()]
    return cards
