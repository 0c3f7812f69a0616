"""training.components.confidence_fit: the logistic fit the server's calibration file stores,
and the figures the calibration command reports."""

from __future__ import annotations

import random

import pytest

from search.calibration import CalibrationTable, interpolate
from training.components.confidence_fit import auroc, ece, fit_family


def test_the_fit_reads_back_as_a_family_that_ranks_and_calibrates():
    rng = random.Random(0)
    rows, correct = [], []
    for _ in range(400):
        group = rng.uniform(0, 6)
        rows.append({"lowest_group": group, "mean": group + 1, "agreement": None})
        correct.append(rng.random() < group / 6)  # surer paths are right more often
    data = fit_family(rows, correct, ["lowest_group", "mean", "agreement"], "demo", ["prm"])
    family = CalibrationTable.from_json({"families": [data]}).family_for("demo", ["prm"])
    probabilities = [family.probability(r) for r in rows]
    low, high = (family.probability({"lowest_group": g, "mean": g + 1}) for g in (0.5, 5.5))
    assert low < 0.3 < 0.7 < high
    assert auroc(probabilities, correct) > 0.75
    assert ece(probabilities, correct) < 0.08
    assert data["answers"] == 400 and data["fill"][2] == 0.0  # a signal never present


def test_all_right_answers_fit_the_base_rate():
    data = fit_family([{"mean": 1.0}, {"mean": 2.0}], [True, True], ["mean"], None, None)
    family = CalibrationTable.from_json({"families": [data]}).families[0]
    assert family.probability({"mean": 9.0}) == pytest.approx(0.999)


def test_auroc_and_ece_by_hand():
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, False, True, False]) == pytest.approx(0.75)
    assert auroc([0.5, 0.6], [True, True]) is None
    # two bins: 0.25 predicted for a half-right pair, 0.95 for an all-right pair
    assert ece([0.25, 0.25, 0.95, 0.95], [True, False, True, True]) == pytest.approx(
        0.5 * 0.25 + 0.5 * 0.05)


def test_an_isotonic_map_after_the_logistic_fits_what_a_logistic_cannot():
    # right 30% of the time below 0.7, 95% above: a step no logistic curve follows
    rng = random.Random(1)

    def draw(n: int) -> tuple[list, list]:
        rows = [{"mean": rng.random()} for _ in range(n)]
        return rows, [rng.random() < (0.3 if r["mean"] < 0.7 else 0.95) for r in rows]

    rows, correct = draw(2000)
    plain = fit_family(rows, correct, ["mean"], None, None)
    shaped = fit_family(rows, correct, ["mean"], None, None, isotonic=True)
    assert "isotonic" not in plain and len(shaped["isotonic"]["x"]) >= 2
    fitted = {name: CalibrationTable.from_json({"families": [data]}).families[0]
              for name, data in (("plain", plain), ("shaped", shaped))}
    test, truth = draw(2000)
    errors = {name: ece([f.probability(r) for r in test], truth) for name, f in fitted.items()}
    assert errors["shaped"] < 0.04 < 0.1 < errors["plain"]
    # its ends are held off certainty
    assert all(0.005 <= fitted["shaped"].probability({"mean": m}) <= 0.995 for m in (-5, 5))


def test_interpolate_is_piecewise_linear_and_flat_beyond_the_knots():
    xs, ys = (0.2, 0.4, 0.8), (0.1, 0.3, 0.7)
    assert [interpolate(p, xs, ys) for p in (0.0, 0.2, 0.3, 0.6, 0.8, 1.0)] == \
        pytest.approx([0.1, 0.1, 0.2, 0.5, 0.7, 0.7])
