"""All server settings: `DELIBERATE_*` environment variables, overridden by `python -m server` flags.

The environment is read here and nowhere else.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.reasoning.options import StrategyName


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DELIBERATE_", extra="forbid")

    model: str = Field("models/demo/base", description="HF model directory to serve")
    served_model_name: str = Field("demo", description="name clients pass as `model`")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = Field(None, description="require `Authorization: Bearer <key>` on /v1")
    max_model_len: int | None = Field(None, description="context length (default: the model's)")
    kv_cache_bytes: int = Field(256 * 2**20, description="KV cache size in bytes")
    block_size: int | None = Field(
        32, description="KV-cache block in tokens (the prefix cache shares whole blocks; vLLM's "
                        "CPU default of 128 is longer than the demo's prompts)")
    enforce_eager: bool = Field(True, description="skip torch.compile (faster start-up on CPU)")
    dtype: str = "auto"
    seed: int = Field(0, description="engine seed for requests without one")
    max_body_bytes: int = Field(1 * 2**20, description="larger request bodies get 413")
    max_n: int = Field(16, description="largest `n` a request may ask for")
    max_logprobs: int = Field(20, description="largest logprobs / top_logprobs")
    log_level: str = "info"
    # LoRA adapters (adapters/): served by the same engine as the base model.
    enable_lora: bool = Field(True, description="serve LoRA adapters (and reward models)")
    max_loras: int = Field(4, description="adapters the engine runs in one batch")
    max_lora_rank: int = Field(16, description="largest adapter rank (vLLM: 1, 8, 16, 32, ...)")
    max_adapters: int = Field(8, description="adapters kept loaded; LRU eviction above it")
    lora_modules: list[str] = Field(
        default_factory=list, description="adapters loaded (and pinned) at start: NAME=PATH ...")
    adapter_roots: list[str] = Field(
        default_factory=lambda: ["models"],
        description="directories adapters may be loaded from (symlinks resolved)")
    adapter_resolver_root: str | None = Field(
        "models/demo/adapters",
        description="a request for an unknown model NAME loads ROOT/NAME on demand, if present")
    max_adapter_bytes: int = Field(256 * 2**20, description="largest adapter weights file")
    prompt_adapters: bool = Field(
        True, description="serve prompt-tuning / P-tuning adapters as virtual-token embeddings "
                          "(vLLM's prompt embeddings; never a client's embeddings)")
    max_virtual_tokens: int = Field(128, description="most virtual tokens a prompt adapter has")
    admin_api_key: str | None = Field(
        None, description="key for adapter load/unload (default: the API key)")
    # Verifiers (verifiers/): plugins from the `deliberate.verifiers` entry-point group.
    verifier_allowlist: list[str] | None = Field(
        None, description="load only these verifier plugins (default: all installed)")
    default_verifiers: dict[str, float] = Field(
        default_factory=lambda: {"syntax": 1.0, "logic": 1.0},
        description="verifier -> weight when a request names none (JSON)")
    verifier_config: dict[str, dict] = Field(
        default_factory=dict, description="per-verifier settings, e.g. safety's patterns (JSON)")
    verifier_timeout_s: float = Field(10.0, description="a verifier slower than this is dropped")
    # Reasoning (search/): routing, strategies' defaults, and the caps a request may not exceed.
    default_strategy: StrategyName = Field(
        "auto", description="strategy for requests that name none (auto: route by difficulty)")
    search_verifiers: dict[str, float] = Field(
        default_factory=lambda: {"prm": 1.0, "logic": 1.0},
        description="verifier -> weight scoring search branches when a request names none")
    search_verifier_gate: float = Field(
        1e-3, ge=0, le=1,
        description="in a search, a costlier verifier (by its `cost`: prm, then orm) judges "
                    "only the steps the cheaper ones scored at least this (product); 0: every "
                    "verifier judges every step, concurrently")
    difficulty_estimators: list[str] = Field(
        default_factory=lambda: ["learned", "probe"],
        description="difficulty estimators to try in order (the first that answers is used)")
    difficulty_config: dict[str, dict] = Field(
        default_factory=dict, description="per-estimator settings, e.g. probe's samples (JSON)")
    router_low: float | None = Field(
        None, description="difficulty below this: greedy (default: the router file's, else 0.3)")
    router_high: float | None = Field(
        None, description="difficulty at or above this: mcts, else beam (default: the router "
                          "file's, else 0.7)")
    router_file: str | None = Field(
        "models/demo/router.json",
        description="thresholds fitted per verifier set by `python -m benchmarks.calibrate_router`"
                    "; used when it names the served model and neither --router-low nor "
                    "--router-high is given ('' for none)")
    search_temperature: float = Field(
        0.7, gt=0, description="temperature of sampled search branches when the request's is 0 "
                               "(a temperature-0 single pass decodes greedily)")
    search_stop_score: float | None = Field(
        0.9, gt=0, le=1, description="a step search (beam, mcts, tot) stops once a finished path "
                                     "scores at least this, when a request names no "
                                     "`stop_score` (1: only a perfect score stops it)")
    beam_width: int = Field(3, description="beam width when a request names none")
    mcts_depth: int = Field(5, description="MCTS depth (steps) when a request names none")
    mcts_simulations: int = Field(16, description="MCTS simulations when a request names none")
    mcts_evaluation: Literal["scorer", "rollout"] = Field(
        "rollout", description="how MCTS rates a new node when a request names no `evaluation`: "
                               "a greedy rollout to the end, scored, or the scorer's value of "
                               "the partial path (cheaper; weak where valid steps can be dead "
                               "ends, as in countdown)")
    n_candidates: int = Field(8, description="best_of_n / self_consistency samples by default")
    max_beam_width: int = Field(8, description="largest beam_width (beam, and tot's breadth) allowed")
    max_depth: int = Field(12, description="largest max_depth allowed")
    max_simulations: int = Field(64, description="largest simulations allowed")
    max_candidates: int = Field(32, description="largest n_candidates allowed")
    max_search_tokens: int = Field(16384, description="largest budget_tokens, and the default")
    max_search_nodes: int = Field(2048, description="largest max_nodes, and the default")
    max_search_timeout_s: float = Field(120.0, description="largest timeout_s, and the default")


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the environment, with any command-line flag taking precedence."""
    parser = argparse.ArgumentParser(prog="python -m server", description="Deliberate server")
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_ = f"{field.description or ''} (env DELIBERATE_{name.upper()}, default {field.default})"
        if field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_)
        elif field.annotation in (list[str], list[str] | None):
            parser.add_argument(flag, nargs="*", default=None, help=help_)
        elif field.annotation in (dict[str, float], dict[str, dict]):
            parser.add_argument(flag, type=json.loads, default=None, help=help_ + " (JSON)")
        else:
            parser.add_argument(flag, default=None, help=help_)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    # Validating flags and environment together makes pydantic convert the flags' strings too.
    return Settings(**given)
