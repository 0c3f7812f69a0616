"""All server settings: `DELIBERATE_*` environment variables, overridden by `python -m server` flags.

The environment is read here and nowhere else.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (BaseSettings, CliSettingsSource, CliVariadicArg, NoDecode,
                               SettingsConfigDict)

from server.reasoning.options import AnswerExtractor, SearchStrategyName, StepPattern, \
    StrategyName, distinct_stages
from verifiers.reward_models.spec import RewardModelSpec


class Settings(BaseSettings):
    # The command line is pydantic-settings' CLI source (parse_settings): --kebab-case flags,
    # --flag/--no-flag for booleans (also the tri-state ones: hiding None makes them plain bools
    # there), list flags taking several values (CliVariadicArg), dicts as JSON or KEY=VALUE.
    model_config = SettingsConfigDict(
        env_prefix="DELIBERATE_", extra="forbid", cli_prog_name="python -m server",
        cli_kebab_case=True, cli_implicit_flags=True, cli_hide_none_type=True,
        cli_show_env_vars=True, cli_shortcuts={"upstreams": "upstream"})

    model: str = Field("models/demo/base",
                       description="HF model directory to serve (remote engine: a local copy of "
                                   "its config and tokenizer; the replicas hold the weights)")
    served_model_name: str = Field("demo", description="name clients pass as `model`")
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = Field(None, description="require `Authorization: Bearer <key>` on /v1 "
                                                  "(empty: none)")
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="tenants: name -> API key (JSON); each key is accepted on /v1, and its name "
                    "selects its safety policy and its own prefix cache")
    # Engine: vLLM in this process (local), or a fleet of `vllm serve` replicas (remote).
    engine: Literal["local", "remote"] = Field(
        "local", description="local: vLLM in this process; remote: the --upstream replicas")
    upstreams: CliVariadicArg[Annotated[list[str], NoDecode]] = Field(
        default_factory=list,
        description="remote engine: vLLM OpenAI server URLs (repeat --upstream; env: "
                    "comma-separated)")
    upstream_api_key: str | None = Field(None, description="key the replicas require (empty: "
                                                           "none)")
    tokenizer: str | None = Field(None, description="remote engine: tokenizer directory "
                                                    "(default: --model)")
    upstream_timeout_s: float = Field(300.0, gt=0, description="remote engine: one engine call")
    upstream_health_interval_s: float = Field(
        2.0, gt=0, description="remote engine: replicas' /health probed this often")
    upstream_start_timeout_s: float = Field(
        300.0, ge=0, description="remote engine: wait this long at start for a first replica")
    affinity_prefix_tokens: int = Field(
        64, ge=1, description="remote engine: prompt tokens hashed to place a request")
    affinity_slack: int = Field(
        4, ge=0, description="remote engine: calls the hashed replica may run above the "
                             "least-loaded one before a request goes elsewhere")
    upstream_routing: Literal["affinity", "round_robin"] = Field(
        "affinity", description="remote engine: affinity (a request's calls on one replica, "
                                "requests placed by prompt prefix) or round_robin (a baseline)")
    # Local engine (vLLM's engine arguments).
    max_model_len: int | None = Field(None, description="context length (default: the model's)")
    kv_cache_bytes: int | None = Field(
        None, description="KV cache size in bytes (default: 256 MiB on a CPU; on a GPU, "
                          "--gpu-memory-utilization decides)")
    block_size: int | None = Field(
        32, description="KV-cache block in tokens (the prefix cache shares whole blocks; vLLM's "
                        "CPU default of 128 is longer than the demo's prompts)")
    enforce_eager: bool | None = Field(
        None, description="skip torch.compile and CUDA graphs (default: on a CPU, for a fast "
                          "start; off on a GPU)")
    dtype: str = "auto"
    quantization: str | None = Field(None, description="vLLM's --quantization (awq, fp8, ...)")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model (tensor parallel)")
    pipeline_parallel_size: int = Field(1, ge=1, description="pipeline stages (GPUs or nodes)")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1,
                                          description="GPU memory share vLLM may take")
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="any other vLLM engine argument, by its AsyncEngineArgs name (JSON), "
                    "e.g. {\"enable_chunked_prefill\": false}")
    seed: int = Field(0, description="engine seed for requests without one")
    max_body_bytes: int = Field(1 * 2**20, description="larger request bodies get 413")
    max_header_bytes: int = Field(16 * 2**10, description="larger request headers get 431")
    max_n: int = Field(16, description="largest `n` a request may ask for")
    max_tokens_limit: int | None = Field(
        None, description="largest max_tokens a request may ask for (default: the context)")
    max_messages: int = Field(256, description="most chat messages a request may send")
    max_prompts: int = Field(64, ge=1,
                             description="most prompts one /v1/completions request may batch")
    batch_concurrency: int = Field(
        16, ge=1, description="prompts of one batch answered at once; the others wait inside "
                              "the batch, so that one batch cannot fill the admission queue")
    max_stop: int = Field(16, description="most stop strings a request may send")
    responses_store_size: int = Field(
        1000, ge=0, description="most responses kept (in memory, per server) for "
                                "previous_response_id and GET /v1/responses/{id}; the oldest "
                                "go first; 0 keeps none")
    responses_store_ttl_s: float = Field(
        3600.0, gt=0, description="seconds a stored response is kept")
    max_logprobs: int = Field(20, description="largest logprobs / top_logprobs")
    log_level: str = "info"
    ui: bool = Field(True, description="serve the /ui page, which draws a search as it runs "
                                       "(behind the API key when keys are set; --no-ui: off)")
    # LoRA adapters (adapters/): served by the same engine as the base model.
    enable_lora: bool = Field(True, description="serve LoRA adapters (and reward models)")
    max_loras: int = Field(4, description="adapters the engine runs in one batch")
    max_lora_rank: int = Field(16, description="largest adapter rank (vLLM: 1, 8, 16, 32, ...)")
    max_adapters: int = Field(8, description="adapters kept loaded; LRU eviction above it")
    adapter_timeout_s: float = Field(
        60.0, gt=0, description="longest one adapter load or unload may take in the engine (a "
                                "remote one: on every replica); past it the request gets 504")
    lora_modules: CliVariadicArg[list[str]] = Field(
        default_factory=list, description="adapters loaded (and pinned) at start: NAME=PATH ...")
    adapter_roots: CliVariadicArg[list[str]] = Field(
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
    verifier_allowlist: CliVariadicArg[list[str] | None] = Field(
        None, description="load only these verifier plugins (default: all installed)")
    default_verifiers: dict[str, float] = Field(
        default_factory=lambda: {"syntax": 1.0, "logic": 1.0},
        description="verifier -> weight when a request names none (JSON)")
    verifier_config: dict[str, dict] = Field(
        default_factory=dict, description="per-verifier settings, e.g. safety's patterns (JSON)")
    verifier_timeout_s: float = Field(10.0, description="a verifier slower than this is dropped")
    reward_models: dict[str, RewardModelSpec] = Field(
        default_factory=dict,
        description="reward models of the ecosystem, each a verifier NAME served by an engine of "
                    "its own: NAME -> {\"kind\": \"pooling_prm\" | \"token_prm\" | "
                    "\"classifier_orm\", \"engine\": {\"model\": DIR, ...}, ...} (JSON; see "
                    "the README)")
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
    verifier_disagreement_threshold: float = Field(
        0.5, ge=0, le=1,
        description="a search's answer whose learned verifiers (prm, orm) and exact ones "
                    "(logic, syntax) score it at least this far apart is flagged in "
                    "`reasoning.verifier_disagreement` and counted; 0: never compared")
    difficulty_estimators: CliVariadicArg[list[str]] = Field(
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
    # Confidence (search/confidence.py, search/calibration.py): every answer's, from the top-k
    # logprobs of its tokens (DeepConf's signals), calibrated per task family.
    confidence_top_k: int = Field(
        5, ge=0, le=20,
        description="top-k logprobs asked for on every generated token, each token's "
                    "confidence being minus their mean (DeepConf uses 5..20; at most the "
                    "engine's max_logprobs, 20); 0: none asked for, and confidences read only "
                    "the verifiers and the vote")
    confidence_window: int = Field(
        16, ge=1,
        description="tokens in a sliding window of the group confidence (the lowest window "
                    "finds where the model hesitated). In tokens, so it depends on the "
                    "vocabulary: 16 suits the demo's character vocabulary (a step is a few "
                    "dozen characters); DeepConf uses 2048 for a BPE model's long reasoning "
                    "traces; a few hundred suits a BPE model's short answers")
    confidence_tail: int = Field(
        16, ge=1,
        description="last tokens read by the tail confidence (where the answer is written): "
                    "16 for the demo's characters ('Answer: 1234'); DeepConf uses 2048 for "
                    "a BPE model's long traces, a few dozen for short BPE answers")
    confidence_file: str | None = Field(
        "models/demo/confidence.json",
        description="confidence calibration fitted per task family by `python -m "
                    "benchmarks.calibrate_confidence`; used when it names the served model "
                    "('' for none: every confidence says calibrated false)")
    target_confidence: float = Field(
        0.8, ge=0, le=1,
        description="the calibrated confidence an answer should reach, when a request names "
                    "no reasoning.target_confidence")
    auto_escalate: bool = Field(
        False,
        description="`auto` runs --escalation-stages, gated by confidence: the first stage "
                    "(the one the difficulty routes to, if a stage) answers, and the next runs "
                    "only while the answer's confidence is below the target, within one token "
                    "budget (a request's reasoning.escalate wins)")
    escalation_stages: CliVariadicArg[Annotated[list[SearchStrategyName], NoDecode]] = Field(
        default_factory=lambda: ["greedy", "beam", "mcts"], min_length=1,
        description="the stages of an escalating `auto`, cheapest first")
    # The swarm strategy (server/reasoning/swarm.py).
    swarm_max_depth: int = Field(
        2, ge=0, description="levels of decomposition a swarm may have (a request asking more, "
                             "or a problem that splits deeper, is a 400)")
    swarm_specialists: CliVariadicArg[list[str]] = Field(
        default_factory=list,
        description="the models a swarm's parts may go to when a request names none (empty: "
                    "the base and every adapter whose manifest declares skills)")
    swarm_router: str | None = Field(
        "models/demo/swarm_router.json",
        description="the learned router of swarm parts, trained by `python -m "
                    "training.swarm_router` ('' for none: routing by the declared skills)")
    swarm_allowed: dict[str, list[str]] = Field(
        default_factory=dict,
        description="tenant -> the models its key may use as swarm specialists (JSON); a "
                    "tenant not named may use any")
    abstain_message: str = Field(
        "I am not confident enough to answer this.",
        description="the answer text of a request that asked reasoning.abstain_below and "
                    "whose confidence fell below it")
    # How the served model writes (a request's `reasoning` options win).
    step_delimiter: str | StepPattern = Field(
        "\n", description="where a search step ends: a literal (\"\\n\", \"\\n\\n\") or "
                          "{\"regex\": ..., \"triggers\": [...]} (JSON); a blank line is never "
                          "a step of its own")
    max_step_tokens: int = Field(
        512, ge=1, description="a search step longer than this is cut there and the next step "
                               "continues it (always within the room max_tokens leaves)")
    answer_extractor: AnswerExtractor = Field(
        "auto", description="how a solution's final answer is read for voting, stop_score and "
                            "the difficulty probe: auto (\\boxed{}, else 'Answer: X', else the "
                            "last number), boxed, answer, last_line, text")
    reasoning_parser: Literal["think", "deepseek_r1", "qwen3"] | None = Field(
        None, description="a reasoning model's <think>...</think> goes to the message's "
                          "`reasoning` (and `reasoning_content`), the rest to `content`; vLLM's "
                          "deepseek_r1 and qwen3 are the same parser here")
    tool_call_parser: str | None = Field(
        None, description="vLLM's tool parser (the names of vLLM's --tool-call-parser: hermes, "
                          "llama3_json, mistral, ...) that reads a single pass's tool calls "
                          "when a chat request sends `tools`; unset, `tools` is a 400")
    max_beam_width: int = Field(8, description="largest beam_width (beam, and tot's breadth) allowed")
    max_depth: int = Field(12, description="largest max_depth allowed")
    max_simulations: int = Field(64, description="largest simulations allowed")
    max_candidates: int = Field(32, description="largest n_candidates allowed")
    max_search_tokens: int = Field(16384, description="largest budget_tokens, and the default")
    max_search_nodes: int = Field(2048, description="largest max_nodes, and the default")
    max_search_timeout_s: float = Field(120.0, description="largest timeout_s, and the default")
    # Admission control (server/admission/): a request counts the tokens it is expected to
    # spend (learned from the requests that finished, never above n x max_tokens for a single
    # pass, budget_tokens for a search), in two lanes so that a flood of searches cannot hold
    # back single passes. A lane's capacity and queue follow its measured drain rate (tokens per
    # second) within the floors and ceilings below, per replica in rotation; a capacity or queue
    # given here is fixed instead.
    single_pass_capacity: int | None = Field(
        None, ge=1, description="single-pass tokens in flight at once, fixed (default: what the "
                                "lane drains in --admission-target-delay-s)")
    single_pass_capacity_min: int = Field(
        2048, ge=1, description="single-pass capacity per replica, at least")
    single_pass_capacity_max: int = Field(
        131072, ge=1, description="single-pass capacity per replica, at most (and before "
                                  "anything is measured)")
    single_pass_queue: int | None = Field(
        None, ge=0, description="single-pass tokens waiting, fixed; a request past it gets 429 "
                                "(default: what the lane drains in --admission-max-wait-s)")
    search_capacity: int | None = Field(
        None, ge=1, description="search tokens in flight at once, fixed (default: what the lane "
                                "drains in --admission-target-delay-s)")
    search_capacity_min: int = Field(4096, ge=1,
                                     description="search capacity per replica, at least")
    search_capacity_max: int = Field(
        65536, ge=1, description="search capacity per replica, at most (and before anything "
                                 "is measured)")
    search_queue: int | None = Field(
        None, ge=0, description="search tokens waiting, fixed; a request past it gets 429 "
                                "(default: what the lane drains in --admission-max-wait-s)")
    admission_target_delay_s: float = Field(
        10.0, gt=0, description="a lane's capacity is what its measured drain rate finishes in "
                                "this long")
    admission_max_wait_s: float = Field(
        60.0, gt=0, description="a lane's queue is what its measured drain rate starts within "
                                "this long, and a request that the work ahead of it would not "
                                "let start within this long gets 429 on arrival")
    queue_timeout_s: float | None = Field(
        None, gt=0, description="a request that waits longer than this to start gets 429, and "
                                "one forecast to wait longer gets it on arrival (default: twice "
                                "its expected wait at the lane's drain rate, and 10 s more, and "
                                "at least --admission-max-wait-s)")
    request_timeout_s: float = Field(
        600.0, gt=0, description="per-request deadline: a search's timeout_s is cut to what is "
                                 "left of it, a single pass still running at it ends with 504")
    # Safety (verifiers/builtin/safety.py): applied to every answer, and to search steps.
    safety_policy_file: str | None = Field(
        None, description="YAML/JSON safety policy (blocked patterns for everyone, per API key "
                          "name, per `user`), reloaded by POST /v1/reload_safety_policy")
    safety_match_window: int = Field(
        1024, ge=1, description="characters of a streamed answer rescanned before each new "
                                "delta: the longest match a safety rule may need (a longer one "
                                "is caught in whole answers only)")
    health_check_interval_s: float = Field(
        1.0, gt=0, description="how often the engine is checked; when it has died the server "
                               "answers 503 and exits with status 3 for its supervisor to "
                               "restart it")

    @field_validator("api_key", "admin_api_key", "upstream_api_key", "tokenizer", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # compose passes `KEY: ${KEY:-}` as an empty string when the variable is unset: that
        # means no key, not an empty one (which would refuse every call)
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("escalation_stages", mode="before")
    @classmethod
    def _split_stages(cls, value: object) -> object:
        # "greedy,beam,mcts" as the environment or a single flag value gives it
        if isinstance(value, str) and not value.startswith("["):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("escalation_stages")
    @classmethod
    def _distinct_stages(cls, value: list[str]) -> list[str]:
        return distinct_stages(value)

    @field_validator("upstreams", mode="before")
    @classmethod
    def _split_upstreams(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @model_validator(mode="after")
    def _remote_mode_starts_no_vllm(self) -> Settings:
        in_process = [name for name, spec in self.reward_models.items()
                      if not spec.engine.upstreams]
        if self.engine == "remote" and in_process:
            raise ValueError(
                f"--engine remote runs no vLLM in this process, but reward models {in_process} "
                "would start it here: serve each on `vllm serve` replicas of its own (with "
                "--runner pooling for a pooling_prm or classifier_orm) and name their URLs in its "
                "engine.upstreams, or run this server with --engine local")
        return self

    @field_validator("step_delimiter", mode="before")
    @classmethod
    def _delimiter_json(cls, value: Any) -> Any:
        # a flag's value: JSON when it is JSON ('"\\n\\n"', '{"regex": ...}'), else literal
        if isinstance(value, str) and value[:1] in ('"', "{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Settings from the environment, with any command-line flag (default: sys.argv) taking
    precedence."""
    cli = CliSettingsSource(Settings, add_argument_method=_add_argument)
    return Settings(_cli_settings_source=cli(args=True if argv is None else list(argv)))


def _add_argument(parser: ArgumentParser, *flags: str, **kwargs: Any) -> Any:
    # --upstream URL may be repeated, each time with one URL or more, and they add up
    if kwargs.get("dest") == "upstreams":
        kwargs["action"] = "extend"
    return parser.add_argument(*flags, **kwargs)
