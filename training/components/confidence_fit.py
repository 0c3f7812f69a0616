"""Fit a confidence calibration family (search/calibration.py) on labelled answers: each row the
answer's signals (search.confidence.answer_signals) and whether it was right.

scikit-learn fits (the `train` extra); the server only evaluates the stored mapping. A logistic
regression on standardized features: monotone in each signal's direction as fitted, and its
output is a probability by construction (its log loss is what it minimizes), which an ECE then
checks on held-out answers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from search.calibration import family_json

Signals = Mapping[str, float | int | None]


# an isotonic map's ends: a calibrated confidence of exactly 0 or 1 would claim a certainty
# that a few hundred answers cannot show
ISOTONIC_BOUNDS = (0.005, 0.995)


def fit_family(rows: Sequence[Signals], correct: Sequence[bool], features: Sequence[str],
               model: str | None, verifiers: Sequence[str] | None, c: float = 1.0,
               isotonic: bool = False) -> dict:
    """A family fitted on `rows`; a feature a row lacks reads as the feature's mean. With
    `isotonic`, an isotonic regression on the logistic regression's outputs for the same rows
    follows it (search/calibration.py)."""
    from sklearn.linear_model import LogisticRegression

    fill = [_mean([r.get(f) for r in rows]) for f in features]
    matrix = [[fill[j] if r.get(f) is None else float(r[f]) for j, f in enumerate(features)]
              for r in rows]
    center = [statistics.fmean(col) for col in zip(*matrix)]
    scale = [statistics.pstdev(col) or 1.0 for col in zip(*matrix)]
    x = [[(v - m) / s for v, m, s in zip(row, center, scale)] for row in matrix]
    labels = [int(bool(y)) for y in correct]
    if len(set(labels)) < 2:  # all right or all wrong: the base rate is all there is
        rate = min(max(sum(labels) / max(len(labels), 1), 1e-3), 1 - 1e-3)
        coef, intercept = [0.0] * len(features), math.log(rate / (1 - rate))
    else:
        fitted = LogisticRegression(C=c, max_iter=1000).fit(x, labels)
        coef, intercept = list(fitted.coef_[0]), float(fitted.intercept_[0])
    extra: dict = {}
    if isotonic and len(set(labels)) == 2:
        from sklearn.isotonic import IsotonicRegression

        from search.calibration import CalibrationTable

        logistic = CalibrationTable.from_json({"families": [family_json(
            model, verifiers, features, center, scale, fill, coef, intercept)]}).families[0]
        outputs = [logistic.probability(r) for r in rows]
        fitted = IsotonicRegression(y_min=ISOTONIC_BOUNDS[0], y_max=ISOTONIC_BOUNDS[1],
                                    out_of_bounds="clip").fit(outputs, labels)
        knots_x, knots_y = list(fitted.X_thresholds_), list(fitted.y_thresholds_)
        if len(knots_x) >= 2:
            extra["isotonic"] = {"x": [float(v) for v in knots_x],
                                 "y": [float(v) for v in knots_y]}
    return family_json(model, verifiers, features, center, scale, fill, coef, intercept,
                       answers=len(rows), accuracy=round(sum(labels) / max(len(labels), 1), 4),
                       **extra)


def auroc(scores: Sequence[float], correct: Sequence[bool]) -> float | None:
    """The chance that a right answer scores above a wrong one (ties half); None without
    both."""
    from sklearn.metrics import roc_auc_score

    labels = [int(bool(y)) for y in correct]
    return None if len(set(labels)) < 2 else float(roc_auc_score(labels, scores))


def ece(probabilities: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: over equal-width probability bins, the answers' share times
    |mean probability - accuracy|."""
    total, error = len(probabilities), 0.0
    for b in range(bins):
        inside = [(p, y) for p, y in zip(probabilities, correct)
                  if b / bins <= p < (b + 1) / bins or (b == bins - 1 and p == 1.0)]
        if inside:
            gap = statistics.fmean(p for p, _ in inside) - statistics.fmean(
                float(y) for _, y in inside)
            error += len(inside) / total * abs(gap)
    return error


def _mean(values: Sequence[float | int | None]) -> float:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else 0.0
