"""How a reward model of the ecosystem is configured: its kind, how it reads a solution, and the
engine that serves it (the server's `--reward-models` setting, one entry per name).

    {"math_prm": {"kind": "pooling_prm", "engine": {"model": "/models/Qwen2.5-Math-PRM-7B",
                                                    "max_model_len": 4096}}}

The engine is a second vLLM engine of its own, in this process (`engine.model`, a local model
directory, with its own KV cache and context length), or, with `engine.upstreams`, the model's
own `vllm serve` replicas (`engine.model` is then a local copy of its config and tokenizer, as
the policy's `--model` is in remote mode); the verifiers only see the `Engine` protocol either
way.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# RewardEngineSpec's fields that configure an engine in this process, not a fleet's
IN_PROCESS_SETTINGS = {"max_model_len", "kv_cache_bytes", "dtype", "block_size", "enforce_eager"}


class RewardEngineSpec(BaseModel):
    """A reward model's own engine: vLLM in this process on a local model directory, or the
    model's `vllm serve` replicas (`upstreams`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="local HF model directory (no hub downloads here); with "
                                   "upstreams, a local copy of its config and tokenizer")
    upstreams: list[str] = Field(
        default_factory=list,
        description="URLs of `vllm serve` replicas of the model (`--runner pooling` for a "
                    "pooling_prm or classifier_orm); empty: vLLM in this process")
    max_model_len: int | None = Field(None, gt=0, description="context (default: the model's)")
    kv_cache_bytes: int | None = Field(
        None, gt=0, description="KV cache in bytes (default 256 MiB on a CPU)")
    dtype: str = "auto"
    block_size: int | None = Field(32, description="KV-cache block in tokens (CPU: x32)")
    enforce_eager: bool = True

    @model_validator(mode="after")
    def _in_process_settings_need_no_upstreams(self) -> RewardEngineSpec:
        local = sorted(IN_PROCESS_SETTINGS & self.model_fields_set)
        if self.upstreams and local:
            raise ValueError(f"{', '.join(local)}: settings of an engine in this process; the "
                             "upstreams serve the model, so give them as their `vllm serve` "
                             "flags (--max-model-len, --kv-cache-memory-bytes, --dtype, ...)")
        return self


class _RewardModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: RewardEngineSpec
    cost: float | None = Field(
        None, ge=0, description="the scorer's tier (default: 1 for a PRM, 2 for an ORM)")
    prompt_format: Literal["chat", "plain"] = Field(
        "chat", description="chat: the conversation in the model's own chat template; plain: "
                            "the question, then the solution")
    system_prompt: str | None = Field(
        None, description="a system message for a conversation that has none (chat format)")
    plain_format: str = Field(
        "{question}\n{solution}", description="plain format: the text, from {question} and "
                                             "{solution}")
    step_join: str = Field("\n", description="written between two steps of the solution")

    @field_validator("plain_format")
    @classmethod
    def _both_fields(cls, value: str) -> str:
        try:
            value.format(question="", solution="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"plain_format may name only {{question}} and {{solution}}: {exc}")
        if "{question}" not in value or "{solution}" not in value:
            raise ValueError("plain_format must contain {question} and {solution}")
        return value


class PoolingPRMSpec(_RewardModel):
    """A process reward model with a token-classification head served by vLLM's pooling runner
    (`Qwen2ForProcessRewardModel`: Qwen2.5-Math-PRM). The steps, each followed by `separator`,
    are the assistant's reply; a step's score is the softmax probability of class
    `positive_label` at its separator."""

    kind: Literal["pooling_prm"]
    step_join: str = ""  # Qwen2.5-Math-PRM: "<extra_0>".join(steps) + "<extra_0>"
    separator: str = "<extra_0>"
    positive_label: int = Field(1, ge=0)


class TokenPRMSpec(_RewardModel):
    """A Math-Shepherd-style PRM: a causal LM that, after the `step_tag` that follows each
    step, predicts `good_token` or `bad_token`; a step's score is P(good) over {good, bad}.
    Served by a generating engine (next-token logprobs, `top_k` of them per position)."""

    kind: Literal["token_prm"]
    prompt_format: Literal["chat", "plain"] = "plain"
    plain_format: str = "{question} {solution}"  # Math-Shepherd: f"{question} {output}"
    step_tag: str = " ки"
    good_token: str = "+"
    bad_token: str = "-"
    top_k: int = Field(20, ge=2)


class ClassifierORMSpec(_RewardModel):
    """An outcome reward model with a sequence-classification head
    (`LlamaForSequenceClassification`, `Qwen2ForSequenceClassification`; Skywork-Reward style).
    It reads the whole conversation, the solution as the assistant's reply. One label (a
    reward r): the score is sigmoid((r - center) / scale); two or more: the softmax probability
    of `positive_label`."""

    kind: Literal["classifier_orm"]
    center: float = 0.0
    scale: float = Field(1.0, gt=0)
    positive_label: int = Field(1, ge=0)


RewardModelSpec = Annotated[PoolingPRMSpec | TokenPRMSpec | ClassifierORMSpec,
                            Field(discriminator="kind")]

DEFAULT_COST = {"pooling_prm": 1.0, "token_prm": 1.0, "classifier_orm": 2.0}


def cost_of(spec: PoolingPRMSpec | TokenPRMSpec | ClassifierORMSpec) -> float:
    return DEFAULT_COST[spec.kind] if spec.cost is None else spec.cost
