"""Request and response of POST /v1/verify."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.openai.protocol import ChatMessage, OpenAIModel
from server.reasoning.options import PhysicsOption, StepDelimiterOption


class VerifyRequest(OpenAIModel):
    prompt: str | None = Field(None, min_length=1,
                               description="the problem, as the user stated it")
    messages: list[ChatMessage] | None = Field(
        None, min_length=1,
        description="instead of prompt: the conversation the completion answers; reward models "
                    "read it in their chat template, the other verifiers its last user turn")
    completion: str = Field(min_length=1, description="the solution to score")
    verifiers: dict[str, float] | None = Field(
        None, description="verifier name -> weight (an exponent for `product`, a coefficient for "
                             "`weighted_sum`); default: the server's")
    aggregation: Literal["product", "min", "last", "mean"] = "product"
    combine: Literal["product", "weighted_sum"] = Field(
        "product", description="across verifiers: prod(s_i ** w_i), or sum(w_i * s_i) / sum(w_i)")
    # "\n", "\n\n", or {"regex": ..., "triggers": [...]}, as a search's reasoning options
    step_delimiter: StepDelimiterOption = "\n"
    evidence: list[str] = Field(default_factory=list, description="facts for `factual`")
    physics: PhysicsOption | None = Field(
        None, description="options of the `units` and `physics` verifiers for this request")


class StepScore(BaseModel):
    text: str
    scores: dict[str, float]  # per verifier
    score: float  # the verifiers' scores combined (weighted product or weighted sum)


class VerifyResponse(BaseModel):
    object: Literal["verification"] = "verification"
    steps: list[StepScore]
    verifier_scores: dict[str, float]  # each verifier's scores aggregated along the path
    score: float  # the combined step scores aggregated along the path
    aggregation: str
    combine: str
    verifier_errors: dict[str, str] = Field(default_factory=dict)
