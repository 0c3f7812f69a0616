"""The confidence calibration: a mapping from an answer's signals (search.confidence.
answer_signals) to the probability that the answer is right, fitted offline per task family.

One format, written by `benchmarks.calibrate_confidence` and read by the server
(server/reasoning/confidence_table.py), which only evaluates it (no fitting library at serve
time):

    {"model": "models/demo/base",            # the model it was fitted for
     "families": [{"model": "demo" | null,   # the served name (base or adapter); null: any
                   "verifiers": ["logic", "prm"] | null,  # [] a single pass; null: any
                   "strategy": "best_of_n" | null,  # optional: the strategy that answered
                   "features": ["lowest_group", "tail", "verifier", ...],
                   "center": [...], "scale": [...],  # standardization of each feature
                   "fill": [...],                    # a feature the answer lacks
                   "coef": [...], "intercept": x,    # logistic regression
                   "isotonic": {"x": [...], "y": [...]}},  # optional: then this monotone map
                  ...]}

The logistic regression ranks; the optional isotonic map (fitted on the regression's own
outputs) corrects its shape where the signals' relation to accuracy is not logistic: on the
demo's greedy answers it took the cross-validated ECE from 0.046 to 0.028 (1200 answers).

A request's family is its served model name, the verifiers that scored its answer (a single
pass: none) and the strategy that answered it (the same verifiers score a best-of-n's samples
and a beam's paths, whose signals mean different things: best_of_n@8 under beam's family was
off by an ECE of 0.075 on 84 answers). The most specific family that matches wins: a named
strategy first, then named verifiers, then a named model; the fallback names none; none
matches: the answer is not calibrated.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# the signals a family may read; path ones are DeepConf's (search.confidence)
FEATURES = ("mean", "lowest_group", "bottom", "tail", "agreement", "verifier")


@dataclass(frozen=True)
class Family:
    model: str | None
    verifiers: frozenset[str] | None
    features: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    fill: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    isotonic: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (x, y) knots
    strategy: str | None = None

    def probability(self, signals: Mapping[str, float | int | None]) -> float:
        """sigmoid(intercept + coef . standardized features), a missing feature at its fill,
        then the isotonic map if the family has one."""
        z = self.intercept
        for name, center, scale, fill, coef in zip(self.features, self.center, self.scale,
                                                   self.fill, self.coef):
            value = signals.get(name)
            value = fill if value is None else float(value)
            z += coef * (value - center) / scale
        p = _sigmoid(z)
        return p if self.isotonic is None else interpolate(p, *self.isotonic)

    def matches(self, model: str, verifiers: frozenset[str],
                strategy: str | None = None) -> int | None:
        """How specifically this family matches (higher wins), None if it does not."""
        if self.model is not None and self.model != model:
            return None
        if self.verifiers is not None and self.verifiers != verifiers:
            return None
        if self.strategy is not None and self.strategy != strategy:
            return None
        return (4 * (self.strategy is not None) + 2 * (self.verifiers is not None)
                + (self.model is not None))


@dataclass(frozen=True)
class CalibrationTable:
    model: str | None
    families: tuple[Family, ...]

    def family_for(self, model: str, verifiers: Iterable[str],
                   strategy: str | None = None) -> Family | None:
        names = frozenset(verifiers)
        ranked = [(rank, f) for f in self.families
                  if (rank := f.matches(model, names, strategy)) is not None]
        return max(ranked, key=lambda pair: pair[0])[1] if ranked else None

    @classmethod
    def from_json(cls, data: Mapping) -> CalibrationTable:
        """From the JSON `benchmarks.calibrate_confidence` writes; ValueError says what is
        wrong."""
        if not isinstance(data, Mapping) or not isinstance(data.get("families"), list):
            raise ValueError("a confidence calibration needs 'families': a list of fitted "
                             "mappings")
        return cls(model=data.get("model"),
                   families=tuple(_family(f, i) for i, f in enumerate(data["families"])))


def _family(data: Mapping, i: int) -> Family:
    where = f"families[{i}]"
    try:
        features = tuple(str(f) for f in data["features"])
        unknown = set(features) - set(FEATURES)
        if unknown:
            raise ValueError(f"{where}: unknown features {sorted(unknown)} (known: "
                             f"{', '.join(FEATURES)})")
        numbers = {key: tuple(float(v) for v in data[key])
                   for key in ("center", "scale", "fill", "coef")}
        for key, values in numbers.items():
            if len(values) != len(features):
                raise ValueError(f"{where}: '{key}' has {len(values)} values for "
                                 f"{len(features)} features")
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{where}: '{key}' holds a value that is not finite")
        if any(s <= 0 for s in numbers["scale"]):
            raise ValueError(f"{where}: every 'scale' must be > 0")
        verifiers = data.get("verifiers")
        return Family(model=None if data.get("model") is None else str(data["model"]),
                      verifiers=None if verifiers is None else frozenset(map(str, verifiers)),
                      strategy=None if data.get("strategy") is None else str(data["strategy"]),
                      features=features, intercept=float(data["intercept"]),
                      isotonic=_isotonic(data.get("isotonic"), where), **numbers)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where} needs 'features', 'center', 'scale', 'fill', 'coef' and "
                         f"'intercept' ({type(exc).__name__}: {exc})") from exc


def _isotonic(data: object, where: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if data is None:
        return None
    message = (f"{where}: 'isotonic' needs 'x' and 'y': lists of the same length (at least 2), "
               "x increasing, y non-decreasing within [0, 1]")
    if not isinstance(data, Mapping) or not isinstance(data.get("x"), list) \
            or not isinstance(data.get("y"), list):
        raise ValueError(message)
    try:
        x, y = tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"])
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if len(x) != len(y) or len(x) < 2 or not all(math.isfinite(v) for v in x + y) \
            or any(b <= a for a, b in zip(x, x[1:])) or any(b < a for a, b in zip(y, y[1:])) \
            or not all(0.0 <= v <= 1.0 for v in y):
        raise ValueError(message)
    return x, y


def interpolate(p: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """The piecewise-linear map through (xs, ys) at p, flat beyond the ends (as scikit-learn's
    IsotonicRegression predicts with out_of_bounds='clip')."""
    if p <= xs[0]:
        return ys[0]
    if p >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, p)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (p - x0) / (x1 - x0)


def uncalibrated(signals: Mapping[str, float | int | None]) -> float:
    """A monotone mapping of the signals to [0, 1] where no calibration applies: the lowest
    group confidence g squashed as g / (1 + g) (0 with no path signals), times the verifiers'
    score and the agreement where the answer has them. Higher means surer, but it is no
    probability: `calibrated: false` says so."""
    group = signals.get("lowest_group")
    value = 0.0 if group is None else max(float(group), 0.0) / (1.0 + max(float(group), 0.0))
    for name in ("verifier", "agreement"):
        if signals.get(name) is not None:
            value *= min(max(float(signals[name]), 0.0), 1.0)
    return value


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def family_json(model: str | None, verifiers: Sequence[str] | None, features: Sequence[str],
                center: Sequence[float], scale: Sequence[float], fill: Sequence[float],
                coef: Sequence[float], intercept: float, **extra) -> dict:
    """One family as the table stores it (what `_family` reads back)."""
    return {"model": model, "verifiers": None if verifiers is None else sorted(verifiers),
            "features": list(features), "center": [float(v) for v in center],
            "scale": [float(v) for v in scale], "fill": [float(v) for v in fill],
            "coef": [float(v) for v in coef], "intercept": float(intercept), **extra}
