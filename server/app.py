"""The FastAPI application: wiring only. Each feature lives in its own router and service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from server import health, metrics
from server.body_limit import BodyLimitMiddleware
from engine.protocol import Engine
from server.errors import install_error_handlers
from server.lora.router import router as lora_router
from server.lora.setup import build_registry
from server.openai.chat.router import router as chat_router
from server.openai.chat.service import ChatService
from server.openai.completions.router import router as completions_router
from server.openai.completions.service import CompletionService
from server.openai.generation import GenerationService, Limits
from server.openai.models.router import router as models_router
from server.reasoning.service import ReasoningService
from server.settings import Settings
from server.verify.router import router as verify_router
from server.verify.service import VerifyService
from search.difficulty.registry import discover_estimators
from verifiers.registry import VerifierDeps, discover


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The app serving `engine`, or a `LocalEngine` from `settings` started by the lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _engine(settings, engine) as running:
            adapters = await build_registry(settings, running)
            generation = GenerationService(running, Limits(settings.max_n, settings.max_logprobs),
                                           adapters)
            app.state.engine = running
            app.state.adapters = adapters
            allowlist = settings.verifier_allowlist
            deps = VerifierDeps(engine=running, config=settings.verifier_config,
                                adapter_scope=adapters.acquire)
            verifiers = discover(deps, allowlist=None if allowlist is None else set(allowlist))
            verify = VerifyService(verifiers, settings.default_verifiers,
                                   settings.verifier_timeout_s)
            app.state.verify_service = verify
            estimator_deps = VerifierDeps(engine=running, config=settings.difficulty_config,
                                          adapter_scope=adapters.acquire)
            reasoning = ReasoningService(settings, running, adapters, verify,
                                         discover_estimators(estimator_deps))
            app.state.completion_service = CompletionService(generation, reasoning)
            app.state.chat_service = ChatService(generation, reasoning)
            yield

    app = FastAPI(title="Deliberate", lifespan=lifespan)
    app.state.settings = settings
    for router in (health.router, metrics.router, models_router, completions_router, chat_router,
                   lora_router, verify_router):
        app.include_router(router)
    install_error_handlers(app)
    # Outermost first: body limit before anything reads the body; metrics see every response.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.MetricsMiddleware)
    return app


@contextlib.asynccontextmanager
async def _engine(settings: Settings, given: Engine | None) -> AsyncIterator[Engine]:
    if given is not None:  # owned by the caller (tests), who shuts it down
        yield given
        return
    # Imported here so that building the app (and the unit tests) never imports vLLM.
    from engine.local import LocalEngineConfig, open_local_engine

    config = LocalEngineConfig(
        model=settings.model, served_model_name=settings.served_model_name,
        max_model_len=settings.max_model_len, kv_cache_bytes=settings.kv_cache_bytes,
        enforce_eager=settings.enforce_eager, max_logprobs=settings.max_logprobs,
        dtype=settings.dtype, seed=settings.seed, enable_lora=settings.enable_lora,
        max_loras=settings.max_loras, max_lora_rank=settings.max_lora_rank,
        max_cpu_loras=settings.max_adapters, block_size=settings.block_size,
        enable_prompt_embeds=settings.prompt_adapters,
    )
    async with open_local_engine(config) as local:
        yield local
