"""benchmarks.long_range's bookkeeping on hand-made answers: accuracy and memory per length,
the target (accuracy at 4x the window >= 0.8x the accuracy on problems that fit), the first
chunk's valid steps, and which model runs which configuration."""

from __future__ import annotations

import pytest

from benchmarks.long_range import (Answer, compute, first_chunk_table, plan_of, report,
                                     valid_steps)
from training.tasks import arithmetic


def answer(config: str, ops: int, length: int, correct: bool, peak: int) -> Answer:
    return Answer(config, ops, f"{ops}-{correct}-{peak}", length, correct, "stop", length,
                  peak, peak, 1, 1.0)


def test_accuracy_memory_and_the_target_per_configuration():
    answers = [answer("state", 16, 230, True, 230), answer("state", 16, 240, True, 240),
               answer("state", 146, 2050, True, 500), answer("state", 146, 2040, False, 510),
               answer("plain", 16, 230, True, 230), answer("plain", 146, 2050, False, 512)]
    results = compute(answers)
    state = results["rows"]["state"]
    assert state[16]["accuracy"] == 1.0 and state[146]["accuracy"] == 0.5
    assert state[146]["max_peak_kv_tokens"] == 510 and state[146]["windows"] > 3.9
    assert results["targets"]["state"] == {"fits": 1.0, "at_4x": 0.5, "ratio": 0.5,
                                           "met": False}
    assert results["targets"]["plain"]["met"] is False
    text = report(results, {"command": "c", "started": "s", "machine": "m", "wall_min": 1.0,
                            "problems": 4, "model": "demo", "chunk": 104})
    assert "| state | 0.80 " not in text and "| state | 1.00 | 0.50 | 0.50 | no |" in text


def test_the_first_chunk_counts_valid_steps_until_the_first_wrong_one():
    problem = arithmetic.from_prompt("Compute: 3+4*5-6")
    assert valid_steps(problem, "4*5=20\n3+20=23\n23-6=17\nAnswer: 17") == (3, True)
    assert valid_steps(problem, "4*5=20\n3+20=24\n24-6=18\n") == (1, False)
    assert valid_steps(problem, "3+4=7\n") == (0, False)  # against precedence
    assert valid_steps(problem, "4*5=20\n3+2") == (1, True)  # the cut line is not read
    firsts = [{"model": "demo", "ops": 4, "first_step_valid": True, "chunk_valid": False},
              {"model": "demo", "ops": 4, "first_step_valid": False, "chunk_valid": False},
              {"model": "long", "ops": 4, "first_step_valid": True, "chunk_valid": True}]
    table = first_chunk_table(firsts)
    assert table["demo"][4] == {"n": 2, "first_step_valid": 0.5, "chunk_valid": 0.0}
    results = {**compute([answer("long/state", 4, 100, True, 100)]), "first_chunk": table}
    text = report(results, {"command": "c", "started": "s", "machine": "m", "wall_min": 1.0,
                            "problems": 1, "model": "`long`", "chunk": 96})
    assert "| demo | 0.50 / 0.00 |" in text and "| long | 1.00 / 1.00 |" in text


def test_each_model_runs_the_configurations_it_names():
    plan = plan_of(["long_arithmetic", "demo=plain,state"], 96)
    assert [(m, n) for m, n, _ in plan] == [
        ("long_arithmetic", "plain"), ("long_arithmetic", "last"), ("long_arithmetic", "state"),
        ("long_arithmetic", "state+beam"), ("demo", "plain"), ("demo", "state")]
    assert plan[-1][2]["context"] == {"carry": "state", "chunk_tokens": 96, "carry_tokens": 48}
    with pytest.raises(SystemExit, match="unknown configurations"):
        plan_of(["demo=stat"], 96)
