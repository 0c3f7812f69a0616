"""benchmarks.swarm's bookkeeping on hand-made outcomes: the table per mode and configuration,
the concurrency ratio of the independent parts, and the targets judged from them."""

from __future__ import annotations

from benchmarks.swarm import Outcome, compute, configs, request, targets
from training.tasks import composite


def outcome(config: str, mode: str, correct: bool, wall=1.0, independent=0.5,
            parts=None) -> Outcome:
    return Outcome(config, mode, "p", 1, correct, {"number": True, "target": correct},
                   {"0.0": "arithmetic"}, 100, 3, 1.0, wall, independent, parts)


def test_targets_are_judged_from_the_table():
    outcomes = []
    for config, right in (("whole, single pass", 0), ("base alone", 1),
                          ("arithmetic alone", 1), ("countdown alone", 0),
                          ("oracle routing", 3), ("learned router", 3)):
        outcomes += [outcome(config, "greedy", i < right) for i in range(4)]
    timing = [outcome("learned, parts concurrent", "greedy", True, 1.0, 0.5),
              outcome("learned, parts one by one", "greedy", True, 1.5, 1.0,
                      {"0.0": 0.3, "0.1": 0.7})]
    results = compute(outcomes, timing)
    row = results["table"]["greedy"]["learned router"]
    assert row["accuracy"] == 0.75 and row["target_accuracy"] == 0.75
    assert row["number_accuracy"] == 1.0
    assert results["learned_router_picks"] == {"arithmetic": 4}
    lines = targets(results)
    assert "gap +0.000" in lines[0] and "(+0.500; target >= +0.15: met)" in lines[0]
    assert "(0.50x; target <= 0.6x: met)" in lines[1] and "whole swarm 0.67x" in lines[1]
    # the floor: the longest part (0.7 s) of them one after another (1.0 s)
    assert "the longest part alone took 0.70x" in lines[1]
    assert results["timing"]["greedy"]["learned, parts concurrent"]["longest_part_s"] is None


def test_each_configuration_asks_the_swarm_it_names():
    (item,) = composite.generate(560_000, 1)
    names = {(name, mode) for name, mode, _ in configs()}
    assert ("self_moa/4", "search") in names and ("oracle routing", "greedy") in names
    alone = request(item, {"specialists": ["countdown"]}, "search")["reasoning"]
    assert alone["swarm"] == {"specialists": ["countdown"], "strategy": "best_of_n"}
    assert alone["n_candidates"] == 4 and alone["selection"] == "weighted_vote"
    whole = request(item, None, "greedy")["reasoning"]
    assert whole["strategy"] == "greedy" and "swarm" not in whole
    # a physics target adds its specialist alone; the arithmetic workload does not run it
    assert ("physics alone", "greedy") in {(n, m) for n, m, _ in configs("physics")}
    assert "physics alone" not in {name for name, _ in names}


def test_the_best_single_model_is_the_best_of_every_model_alone():
    outcomes = []
    for config, right in (("whole, single pass", 0), ("base alone", 0), ("physics alone", 1),
                          ("oracle routing", 2), ("learned router", 2)):
        outcomes += [outcome(config, "search", i < right) for i in range(4)]
    (line,) = targets(compute(outcomes, []))
    assert "against the best single model 0.250 (+0.250; target >= +0.15: met)" in line
