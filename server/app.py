"""The FastAPI application: wiring only. Each feature lives in its own router and service."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from server import health, metrics, safety
from server.admission import Admission
from server.auth import admin_keys
from server.body_limit import BodyLimitMiddleware
from server.header_limit import HeaderLimitMiddleware
from engine.protocol import Engine, Fleet
from server.errors import install_error_handlers
from server.gc_heap import freeze_startup_heap
from server.lora.router import router as lora_router
from server.lora.setup import build_registry, reserve_scoring_adapters
from server.openai.chat.router import router as chat_router
from server.openai.chat.service import ChatService
from server.openai.chat.tools import ToolCalling
from server.openai.completions.router import router as completions_router
from server.openai.completions.service import CompletionService
from server.openai.generation import GenerationService, Limits
from server.openai.sampling_defaults import SamplingDefaults
from server.openai.models.router import router as models_router
from server.openai.responses.router import router as responses_router
from server.openai.responses.service import ResponsesService
from server.openai.responses.store import ResponseStore
from server.reward_models import open_reward_models
from server.reasoning.service import ReasoningService
from server.settings import Settings
from server.tenancy import TenancyMiddleware, Tenants
from server.ui.router import router as ui_router
from server.verify.router import router as verify_router
from server.verify.service import VerifyService
from search.difficulty.registry import discover_estimators
from verifiers.registry import VerifierDeps, discover

log = logging.getLogger(__name__)


def create_app(settings: Settings, engine: Engine | None = None,
               open_reward_engine: Callable | None = None,
               freeze_heap: bool = False) -> FastAPI:
    """The app serving `engine`, or the engine `settings` name (in-process vLLM or a remote
    fleet) started by the lifespan. `open_reward_engine(name, spec)`: how reward models' engines
    start (default: vLLM in this process, or a remote engine over the model's own replicas
    when its spec names `engine.upstreams`, which remote mode requires). `freeze_heap`: freeze
    the garbage collector's heap once started (server/gc_heap.py; `python -m server` does)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # reward models first: a misconfigured one is said before the policy's engine starts
        async with (open_reward_models(settings, open_reward_engine)
                    as reward_models,
                    _engine(settings, engine) as running):
            adapters = await build_registry(settings, running)
            generation = GenerationService(running, Limits.from_settings(settings), adapters,
                                           SamplingDefaults.from_model_dir(settings.model),
                                           settings.confidence_top_k)
            app.state.engine = running
            app.state.adapters = adapters
            allowlist = settings.verifier_allowlist
            # the safety verifier judges search steps by the policy that screens the answers
            policy = app.state.safety_policy
            config = {**settings.verifier_config,
                      "safety": {**settings.verifier_config.get("safety", {}), "source": policy}}
            deps = VerifierDeps(engine=running, config=config, adapter_scope=adapters.acquire)
            verifiers = discover(deps, allowlist=None if allowlist is None else set(allowlist))
            for name, verifier in reward_models.items():
                verifiers.add(name, verifier)
            # a fleet's lanes grow and shrink with its replicas in rotation
            admission = Admission(settings, running.replicas_in_rotation
                                  if isinstance(running, Fleet) else lambda: 1)
            screen = safety.AnswerFilter(policy, settings.safety_match_window)
            verify = VerifyService(verifiers, settings.default_verifiers,
                                   settings.verifier_timeout_s, admission, running.encode)
            app.state.verify_service = verify
            estimator_deps = VerifierDeps(engine=running, config=settings.difficulty_config,
                                          adapter_scope=adapters.acquire)
            estimators = discover_estimators(estimator_deps)
            reserve_scoring_adapters(adapters, verifiers, estimators)
            reasoning = ReasoningService(settings, running, adapters, verify, estimators)
            app.state.completion_service = CompletionService(generation, reasoning, admission,
                                                             screen)
            tools = ToolCalling(settings.tool_call_parser, getattr(running, "tokenizer", None))
            app.state.chat_service = ChatService(generation, reasoning, admission, screen,
                                                 tools=tools)
            app.state.responses_service = ResponsesService(
                app.state.chat_service, ResponseStore(settings.responses_store_size,
                                                      settings.responses_store_ttl_s))
            if freeze_heap:
                log.info("froze %d start-up objects out of the collector's full passes",
                         freeze_startup_heap())
            async with health.watching(app, running, settings.health_check_interval_s):
                yield

    app = FastAPI(title="Deliberate", lifespan=lifespan)
    app.state.settings = settings
    app.state.tenants = Tenants.from_settings(settings)
    app.state.admin_keys = admin_keys(settings)
    app.state.safety_policy = safety.policy_source(settings)  # a bad file stops start-up
    app.state.engine_failed = False
    for router in (health.router, metrics.router, models_router, completions_router, chat_router,
                   responses_router, lora_router, verify_router, safety.router, ui_router):
        app.include_router(router)
    install_error_handlers(app)
    # Each added one wraps the ones before: metrics see every response, the limits run before
    # anything reads the request, and the tenant's scope holds for the whole request.
    app.add_middleware(TenancyMiddleware, tenants=app.state.tenants)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(metrics.MetricsMiddleware)
    return app


@contextlib.asynccontextmanager
async def _engine(settings: Settings, given: Engine | None) -> AsyncIterator[Engine]:
    if given is not None:  # owned by the caller (tests), who shuts it down
        yield given
        return
    # Imported here so that building the app (and the unit tests) never imports vLLM, and a
    # remote-mode server needs no vLLM at all.
    if settings.engine == "remote":
        from engine.remote import open_remote_engine
        from server.fleet import fleet_config

        remote = fleet_config(settings, settings.upstreams, settings.tokenizer or settings.model,
                              settings.served_model_name)
        async with open_remote_engine(remote) as engine:
            yield engine
        return
    from engine.local import LocalEngineConfig, open_local_engine

    config = LocalEngineConfig(
        model=settings.model, served_model_name=settings.served_model_name,
        max_model_len=settings.max_model_len, kv_cache_bytes=settings.kv_cache_bytes,
        enforce_eager=settings.enforce_eager, max_logprobs=settings.max_logprobs,
        dtype=settings.dtype, seed=settings.seed, enable_lora=settings.enable_lora,
        max_loras=settings.max_loras, max_lora_rank=settings.max_lora_rank,
        max_cpu_loras=settings.max_adapters, block_size=settings.block_size,
        quantization=settings.quantization, tensor_parallel_size=settings.tensor_parallel_size,
        pipeline_parallel_size=settings.pipeline_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        engine_args=tuple(settings.engine_args.items()),
        enable_prompt_embeds=settings.prompt_adapters,
    )
    async with open_local_engine(config) as local:
        yield local
