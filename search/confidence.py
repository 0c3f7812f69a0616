"""A path's confidence from the top-k logprobs of its tokens, as DeepConf defines it (Fu et al.
2025, arXiv 2508.15260):

- token confidence: minus the mean log-probability of the k most likely tokens at a position.
  A peaked distribution (the model is sure) leaves its alternatives far below, so the mean is
  very negative and the confidence high; a flat one gives a low confidence.
- group confidence: the mean token confidence over a sliding window of `window` tokens (every
  window ending at a position once `window` tokens exist; a path shorter than the window is one
  group). Its lowest value finds the stretch where the model hesitated most, which an average
  over the whole path hides.
- bottom confidence: the mean of the lowest tenth of the groups.
- tail confidence: the mean over the last `tail` tokens, where the answer is written.

All of them are >= 0 and unbounded (a calibration maps them to a probability). The window and
the tail are in tokens, so the right values depend on the vocabulary: a character model writes
an answer in a few dozen tokens, a BPE model in a few (see the settings' documentation).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.protocol import TokenLogprob

BOTTOM_SHARE = 0.1  # bottom confidence: the mean of this share of the lowest groups


def token_confidence(top: Mapping[str, float] | Iterable[float], k: int) -> float:
    """Minus the mean logprob of the k most likely entries of `top` (a position's top-k
    alternatives, as the engine returns them: vLLM adds the sampled token when it is not among
    them, so there may be k + 1). Fewer than k entries (a vocabulary smaller than k): their
    mean. Entries of -inf (a token the model rules out) are left out: they say nothing the
    others do not, and would make every confidence infinite."""
    values = top.values() if isinstance(top, Mapping) else top
    finite = sorted((v for v in values if math.isfinite(v)), reverse=True)[:k]
    if not finite:
        return 0.0
    return -sum(finite) / len(finite)


def token_confidences(logprobs: Sequence[TokenLogprob], k: int) -> list[float]:
    """Each generated position's token confidence, from its top-k alternatives (the sampled
    token's own logprob when the engine returned no alternatives)."""
    return [token_confidence(t.top or {t.token: t.logprob}, k) for t in logprobs]


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """The mean confidence of every window of `window` consecutive positions (one group of all
    of them when there are fewer)."""
    if not confidences:
        return []
    window = max(1, min(window, len(confidences)))
    total = sum(confidences[:window])
    groups = [total / window]
    for i in range(window, len(confidences)):
        total += confidences[i] - confidences[i - window]
        groups.append(total / window)
    return groups


@dataclass(frozen=True)
class PathConfidence:
    """A path's confidence signals (see the module's docstring); `tokens` it was read from."""

    mean: float
    lowest_group: float
    bottom: float
    tail: float
    tokens: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "lowest_group": self.lowest_group, "bottom": self.bottom,
                "tail": self.tail}


def path_confidence(confidences: Sequence[float], window: int, tail: int) -> PathConfidence:
    """The signals of a path whose token confidences are `confidences` (an empty path: zeros,
    the least confident there is)."""
    if not confidences:
        return PathConfidence(0.0, 0.0, 0.0, 0.0, 0)
    groups = sorted(group_confidences(confidences, window))
    bottom = groups[:max(1, math.ceil(len(groups) * BOTTOM_SHARE))]
    last = confidences[-max(1, tail):]
    return PathConfidence(mean=sum(confidences) / len(confidences), lowest_group=groups[0],
                          bottom=sum(bottom) / len(bottom), tail=sum(last) / len(last),
                          tokens=len(confidences))


class GroupMonitor:
    """Online: the current window's mean confidence as tokens arrive, for stopping a trace the
    moment it falls below a threshold (DeepConf's online mode). None until a full window has
    arrived: a trace is not judged on its first few tokens."""

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self._last: deque[float] = deque(maxlen=self.window)
        self._total = 0.0
        self.lowest: float | None = None  # the lowest full-window mean so far

    def push(self, confidence: float) -> float | None:
        if len(self._last) == self.window:
            self._total -= self._last[0]
        self._last.append(confidence)
        self._total += confidence
        if len(self._last) < self.window:
            return None
        current = self._total / self.window
        self.lowest = current if self.lowest is None else min(self.lowest, current)
        return current

    def below(self, threshold: float) -> bool:
        """The latest full window fell below `threshold`."""
        return (len(self._last) == self.window
                and self._total / self.window < threshold)


def vote_agreement(weights: Mapping[str, float], chosen: str) -> float:
    """The share of the votes' weight that went to `chosen` (1.0 when it had them all; 0 when
    nothing was voted)."""
    total = sum(max(w, 0.0) for w in weights.values())
    return max(weights.get(chosen, 0.0), 0.0) / total if total > 0 else 0.0


def answer_signals(confidences: Sequence[float], window: int, tail: int,
                   agreement: float | None = None, verifier: float | None = None
                   ) -> dict[str, float | int | None]:
    """What a calibration reads of one answer: its path's signals (absent when the engine
    returned no logprobs), `tokens` they were read from, the share of the vote (or of the
    finished paths) that states it, and the verifiers' score of it (None: not voted, no
    verifier)."""
    signals: dict[str, float | int | None] = {}
    if confidences:
        path = path_confidence(confidences, window, tail)
        signals.update(path.as_dict(), tokens=path.tokens)
    signals.update(agreement=agreement, verifier=verifier)
    return signals
