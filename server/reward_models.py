"""Starts the engine of each configured reward model (`--reward-models`) and makes it a verifier.

Each runs in a vLLM engine of its own beside the policy's: a pooling runner for the pooling PRM
and the classifier ORM, a generating one for the token PRM; or, with `engine.upstreams`, on the
model's own `vllm serve` replicas (a remote engine: no vLLM here, which remote mode requires).
A model that is not a local directory stops the start with a message that names it. Each
verifier then scores a two-step solution once, before the server reports healthy: that pays
vLLM's one-off warm-up of its first logprobs request (seconds on a CPU, past a verifier's
timeout) and finds a model of the wrong kind (a classifier configured as a PRM) at start. An
engine that fails to start, or a verifier that fails that first scoring, is logged, and the
verifier reports why in the `verifier_errors` of each request that names it: a broken reward
model degrades requests, never the server.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine.model_dir import require_local_model
from server.settings import Settings
from verifiers.protocol import ScoringContext, StepItem, Verifier
from verifiers.reward_models import UnavailableVerifier, reward_model_verifier
from verifiers.reward_models.spec import RewardModelSpec

log = logging.getLogger(__name__)

CPU_KV_CACHE_BYTES = 256 * 2**20


def engine_config(name: str, spec: RewardModelSpec) -> Any:
    """The `LocalEngineConfig` of `spec`'s engine."""
    from engine.local import LocalEngineConfig  # imports vLLM: only when one is started

    engine = spec.engine
    return LocalEngineConfig(
        model=engine.model, served_model_name=name, max_model_len=engine.max_model_len,
        kv_cache_bytes=engine.kv_cache_bytes or CPU_KV_CACHE_BYTES,
        enforce_eager=engine.enforce_eager, dtype=engine.dtype, block_size=engine.block_size,
        max_logprobs=getattr(spec, "top_k", 20), enable_lora=False,
        runner="generate" if spec.kind == "token_prm" else "pooling",
        # every token's row, whatever separator id the model's default pooler expects: the
        # verifier keeps the rows at its separator
        pooler_config={"tok_pooling_type": "ALL"} if spec.kind == "pooling_prm" else None)


@contextlib.asynccontextmanager
async def open_reward_models(settings: Settings, open_engine: Callable | None = None
                             ) -> AsyncIterator[dict[str, Verifier]]:
    """name -> verifier for each of `settings.reward_models`, their engines running meanwhile.
    `open_engine(name, spec)`: an async context manager yielding the engine (tests)."""
    specs = settings.reward_models
    for name, spec in specs.items():
        require_local_model(spec.engine.model, f"--reward-models {name}.engine.model")
    open_engine = open_engine or functools.partial(_open_engine, settings)
    async with contextlib.AsyncExitStack() as stack:
        verifiers: dict[str, Verifier] = {}
        for name, spec in specs.items():
            try:
                engine = await stack.enter_async_context(open_engine(name, spec))
            except Exception as exc:  # one broken reward model must not stop the server
                log.exception("reward model %r: its engine failed to start", name)
                verifiers[name] = UnavailableVerifier(
                    name, spec, f"its engine failed to start ({type(exc).__name__}: {exc})")
                continue
            verifier = reward_model_verifier(name, spec, engine)
            try:
                await warm_up(verifier)
            except Exception as exc:
                log.exception("reward model %r: its first scoring failed", name)
                verifier = UnavailableVerifier(
                    name, spec, f"it failed its first scoring at start ({type(exc).__name__}: "
                                f"{exc}); is it a {spec.kind}?")
            else:
                log.info("reward model %r (%s) serving %s", name, spec.kind, spec.engine.model)
            verifiers[name] = verifier
        yield verifiers


async def warm_up(verifier: Verifier) -> None:
    """One path of two steps (one request), then a lone step (the other request shape)."""
    steps = ("1+1=2", "The answer is 2.")
    await verifier.score([StepItem("What is 1+1?", steps[:1]),
                          StepItem("What is 1+1?", steps, is_final=True)], ScoringContext())
    await verifier.score([StepItem("What is 1+1?", steps, is_final=True)], ScoringContext())


def _open_engine(settings: Settings, name: str, spec: RewardModelSpec):
    if spec.engine.upstreams:  # its own fleet: the policy's fleet settings, its tokenizer
        from engine.remote import open_remote_engine
        from server.fleet import fleet_config

        return open_remote_engine(fleet_config(settings, spec.engine.upstreams,
                                               spec.engine.model, name))
    from engine.local import open_local_engine

    return open_local_engine(engine_config(name, spec))
