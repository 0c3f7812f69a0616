"""A request's admission cost: the tokens it is expected to spend, learned from the requests that
finished, never above its cap (a single pass's n x max_tokens, a search's budget_tokens).

A default search is capped at 16384 tokens and spends a few hundred on the demo model: counted
at its cap, four fill the search lane of an idle server. Requests are grouped by a `Shape`, the
strategy and the options that multiply its spend (width, candidates, simulations, depth, n,
max_tokens). A shape's expected spend is the moving average of what its requests spent; a shape
not seen yet takes its strategy's learned share of its nominal spend (the product of its
multipliers times a sample's length), and a strategy not seen yet the prior share.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from dataclasses import dataclass

from server.admission.metrics import EXPECTED_COST

# The options that multiply a request's spend, in the order a Shape keeps them.
MULTIPLIERS = ("n", "beam_width", "n_candidates", "simulations")
BOUNDS = ("max_depth", "max_tokens")
# A sample's length in the nominal spend, at most: a max_tokens left unset is the context's
# room (thousands of tokens on a large model), which answers rarely come near.
SAMPLE_TOKENS = 512


@dataclass(frozen=True)
class Shape:
    strategy: str
    options: tuple[tuple[str, int], ...]  # (name, value) of the MULTIPLIERS and BOUNDS given

    @classmethod
    def of(cls, strategy: str, options: Mapping[str, object]) -> Shape:
        names = (*MULTIPLIERS, *BOUNDS)
        return cls(strategy, tuple((k, int(options[k])) for k in names
                                   if isinstance(options.get(k), int)))

    @property
    def nominal(self) -> int:
        """What a request of this shape would generate if every sample of every multiplier ran
        to max_tokens (SAMPLE_TOKENS at most): the scale its spend is learned and guessed in."""
        given = dict(self.options)
        sample = min(given.get("max_tokens", SAMPLE_TOKENS), SAMPLE_TOKENS)
        return max(math.prod(given.get(k, 1) for k in MULTIPLIERS) * sample, 1)


class CostEstimator:
    """Expected spend per shape, an exponential moving average over the requests that finished
    (weight `alpha` for the newest); `prior` is the share of the nominal spend assumed before a
    strategy has finished any. Keeps the `max_shapes` most recently seen shapes."""

    def __init__(self, prior: float = 0.25, alpha: float = 0.2, max_shapes: int = 1024) -> None:
        self.prior = prior
        self.alpha = alpha
        self.max_shapes = max_shapes
        self._spend: collections.OrderedDict[Shape, float] = collections.OrderedDict()
        self._share: dict[str, float] = {}  # strategy -> spent / nominal
        self._gauges: dict[str, object] = {}  # strategy -> its EXPECTED_COST child

    def expected(self, shape: Shape, cap: int) -> int:
        """What a request of `shape` is expected to spend, between 1 and `cap` tokens."""
        spend = self._spend.get(shape)
        if spend is None:
            spend = self._share.get(shape.strategy, self.prior) * shape.nominal
        else:
            self._spend.move_to_end(shape)
        cost = int(min(max(math.ceil(spend), 1), max(cap, 1)))
        gauge = self._gauges.get(shape.strategy)
        if gauge is None:
            gauge = self._gauges[shape.strategy] = EXPECTED_COST.labels(shape.strategy)
        gauge.set(cost)
        return cost

    def observe(self, shape: Shape, spent: int) -> None:
        """A request of `shape` finished, having generated `spent` tokens."""
        self._spend[shape] = self._average(self._spend.get(shape), spent)
        self._spend.move_to_end(shape)
        while len(self._spend) > self.max_shapes:
            self._spend.popitem(last=False)
        self._share[shape.strategy] = self._average(self._share.get(shape.strategy),
                                                    spent / shape.nominal)

    def _average(self, old: float | None, new: float) -> float:
        return new if old is None else old + self.alpha * (new - old)
