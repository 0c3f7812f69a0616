"""What a search works on, and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from verifiers.protocol import ScoringContext


@dataclass(frozen=True)
class SearchProblem:
    """`prompt` is the text the model continues (a rendered chat or a completion prompt);
    `question` is what verifiers see as the problem. Steps end at `delimiter`."""

    prompt: str
    question: str
    adapter: str | None = None  # the served model's adapter, kept resident by the caller
    delimiter: str = "\n"
    add_special_tokens: bool = True  # False for a rendered chat, which holds them already
    context: ScoringContext = ScoringContext()
    # Called with the best path so far whenever it changes (streams as reasoning_content).
    on_progress: Callable[[tuple[str, ...]], None] | None = None


@dataclass(frozen=True)
class Answer:
    steps: tuple[str, ...]
    text: str  # the steps joined by the delimiter: what the client receives
    score: float  # the aggregated path score
    step_scores: tuple[float, ...]
    verifier_scores: dict[str, float]  # per verifier, aggregated over the path
    step_verifier_scores: tuple[dict[str, float], ...]
    finish_reason: str  # "stop" (complete) or "length" (a budget ran out before the end)
    tokens: int  # tokens of `text` as generated


@dataclass
class SearchStats:
    nodes: int = 0  # steps generated and scored
    engine_calls: int = 0  # generate requests (each may sample n siblings)
    generated_tokens: int = 0  # every token sampled by the search, kept or not
    busy_s: float = 0.0  # wall time in which the search's engine requests or scoring ran
    wall_s: float = 0.0
    stopped_by: str | None = None  # the budget that ended the search early, if any


@dataclass
class SearchResult:
    answers: list[Answer]  # best first, distinct
    stats: SearchStats
    verifier_errors: dict[str, str] = field(default_factory=dict)
    trace: list[dict] | None = None  # the explored tree, when asked for
    # the learned and the exact verifiers disagree strongly on the best answer (None: they
    # agree, or the search had not both kinds; verifiers/disagreement.py)
    verifier_disagreement: dict | None = None

    @property
    def best(self) -> Answer:
        return self.answers[0]
