"""What a search works on, and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from search.chunking import Chunking
from search.steps import StepDelimiter
from verifiers.protocol import ScoringContext


@dataclass(frozen=True)
class SearchProblem:
    """`prompt` is the text the model continues (a rendered chat or a completion prompt), and
    `prompt_token_ids` its ids as a single pass would send them (encoded from `prompt` when
    None); `question` is what verifiers see as the problem. Steps end at `delimiter`."""

    prompt: str
    question: str
    adapter: str | None = None  # the served model's adapter, kept resident by the caller
    delimiter: StepDelimiter = StepDelimiter()
    add_special_tokens: bool = True  # False for a rendered chat, which holds them already
    prompt_token_ids: tuple[int, ...] | None = None
    stop: tuple[str, ...] = ()  # the request's stop strings: each ends the solution
    answer_extractor: str = "auto"  # how a solution's final answer is read (search.answers)
    seed: int | None = None  # the request's seed, for a reproducible difficulty probe
    # A reasoning model's end of thinking ("</think>"): the step it ends holds the answer after
    # it, so that a search branches over the thinking only.
    thinking_end: str | None = None
    context: ScoringContext = ScoringContext()
    # bounded-context reasoning (search.chunking): the path in chunks; None: one context
    chunking: Chunking | None = None
    # Called with the best path's text so far whenever it changes (streamed as reasoning).
    on_progress: Callable[[str], None] | None = None
    # Called with the tree's nodes made or changed since the last call, as `Tree.trace` writes
    # them (streamed as `reasoning_trace`, for a client that draws the tree as it grows).
    on_trace: Callable[[list[dict]], None] | None = None


@dataclass(frozen=True)
class Answer:
    steps: tuple[str, ...]  # as verifiers read them
    text: str  # the path's generated ids decoded: what the client receives
    score: float  # the aggregated path score
    step_scores: tuple[float, ...]
    verifier_scores: dict[str, float]  # per verifier, aggregated over the path
    step_verifier_scores: tuple[dict[str, float], ...]
    finish_reason: str  # "stop" (complete) or "length" (a budget ran out before the end)
    tokens: int  # tokens of `text` as generated
    filter_reason: str | None = None  # why a safety policy withheld it (finish content_filter)
    token_ids: tuple[int, ...] = ()  # the path's generated ids (`text` is their decoding)
    # what says how sure the answer is (search.confidence.answer_signals): its path's token
    # confidences, the agreement of the finished paths, the verifiers' score
    signals: dict[str, float | int | None] = field(default_factory=dict)


@dataclass
class SearchStats:
    nodes: int = 0  # steps generated and scored
    engine_calls: int = 0  # generate requests (each may sample n siblings)
    generated_tokens: int = 0  # every token sampled by the search, kept or not
    busy_s: float = 0.0  # wall time in which the search's engine requests or scoring ran
    wall_s: float = 0.0
    stopped_by: str | None = None  # the budget that ended the search early, if any
    # what the engine requests held: the most KV tokens at once (prompt + generated per live
    # sample, all requests together), and the longest single context (prompt + generated)
    peak_kv_tokens: int = 0
    max_context_tokens: int = 0
    symbolic_steps: int = 0  # steps the symbolic engine computed and added (search/symbolic.py)


@dataclass
class SearchResult:
    answers: list[Answer]  # best first, distinct
    stats: SearchStats
    verifier_errors: dict[str, str] = field(default_factory=dict)
    trace: list[dict] | None = None  # the explored tree, when asked for
    answer_nodes: list[int] = field(default_factory=list)  # the tree node each answer ends at
    # the learned and the exact verifiers disagree strongly on the best answer (None: they
    # agree, or the search had not both kinds; verifiers/disagreement.py)
    verifier_disagreement: dict | None = None
    # what a strategy reports of its own run, by section (deepconf's: its threshold, traces
    # aborted and kept), added to the response's `reasoning` as they are
    details: dict[str, dict] = field(default_factory=dict)

    @property
    def best(self) -> Answer:
        return self.answers[0]
