"""Reward models of the ecosystem as verifiers, each served by an engine of its own and
configured by name and kind (`spec.py`): a pooling PRM (Qwen2.5-Math-PRM), a Math-Shepherd-style
token PRM, a sequence-classification ORM (Skywork-Reward style)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.protocol import Engine
from verifiers.protocol import ScoringContext, StepItem, Verifier
from verifiers.reward_models.classifier_orm import ClassifierORMVerifier
from verifiers.reward_models.pooling_prm import PoolingPRMVerifier
from verifiers.reward_models.spec import RewardModelSpec, cost_of
from verifiers.reward_models.token_prm import TokenPRMVerifier

VERIFIERS = {"pooling_prm": PoolingPRMVerifier, "token_prm": TokenPRMVerifier,
             "classifier_orm": ClassifierORMVerifier}


def reward_model_verifier(name: str, spec: RewardModelSpec, engine: Engine) -> Verifier:
    return VERIFIERS[spec.kind](name, spec, engine)


class UnavailableVerifier:
    """A configured reward model whose engine did not start: every request that names it gets
    why in its `verifier_errors`, and the rest of the server runs on."""

    def __init__(self, name: str, spec: RewardModelSpec, reason: str) -> None:
        self.name = name
        self.cost = cost_of(spec)
        self.reason = reason

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        raise RuntimeError(f"reward model {self.name!r} is unavailable: {self.reason}")
