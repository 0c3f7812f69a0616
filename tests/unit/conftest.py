from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from server.app import create_app
from server.settings import Settings
from tests.fakes import FakeEngine


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def settings() -> Settings:
    # Plain single-pass serving unless a test asks for routing (tests/unit/test_reasoning_api.py).
    return Settings(max_n=4, max_logprobs=2, max_body_bytes=4096, default_strategy="greedy")


@pytest.fixture
async def app(settings: Settings, engine: FakeEngine) -> AsyncIterator[FastAPI]:
    app = create_app(settings, engine)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Unexpected exceptions are answered with 500 and re-raised for the server log; tests want
    # the answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
