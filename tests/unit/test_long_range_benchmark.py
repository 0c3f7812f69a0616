"""benchmarks.long_range's bookkeeping on hand-made answers: accuracy and memory per length,
and the target (accuracy at 4x the window >= 0.8x the accuracy on problems that fit)."""

from __future__ import annotations

from benchmarks.long_range import Answer, compute, report


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
