"""The difficulty recipe's pieces: the query and its label, Spearman, bucket aggregation, the
evaluation's metrics, and the seed stream; no vLLM."""

import math

import pytest

from search.difficulty.learned import (difficulty_from_logprobs, difficulty_of_log_odds,
                                       difficulty_query)
from training import difficulty as rec
from training.components import difficulty_labels as labels
from training.components.metrics import ranks, spearman
from training.components.problems import draw_problems
from training.components.seeds import problem_seed
from training.components.tokenizer import build_tokenizer
from training.tasks import get_task
from verifiers.reward_format import BAD, GOOD, STEP_TAG


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def row(task="arithmetic", level=1, greedy_failure=0, failure_rate=None, samples=0, split="eval",
        prompt="Compute: 2+3"):
    rate = float(greedy_failure) if failure_rate is None else failure_rate
    return {"id": "x", "task": task, "level": level, "prompt": prompt, "answer": "5",
            "split": split, "greedy_failure": greedy_failure, "samples": samples,
            "sample_failures": round(rate * samples), "failure_rate": rate}


def test_query_is_the_question_then_the_tag():
    assert difficulty_query("Compute: 22+36+26") == "Compute: 22+36+26" + STEP_TAG
    assert difficulty_query("  Numbers: 1 3 Target: 24\n") == "Numbers: 1 3 Target: 24 #"


def test_encoded_row_reads_the_label_at_the_tag(tokenizer):
    easy = labels.encode_row(row(greedy_failure=0), tokenizer, 64)
    hard = labels.encode_row(row(greedy_failure=1), tokenizer, 64)
    text = tokenizer.decode(easy["input_ids"])
    assert text == difficulty_query("Compute: 2+3")
    # the last token is the tag; its next token is GOOD (greedy solves it) or BAD (it fails)
    assert easy["tag_positions"] == [len(text) - 1] and text[-1] == "#"
    assert easy["tag_targets"] == [1.0] and hard["tag_targets"] == [0.0]
    with pytest.raises(ValueError, match="--max-length"):
        labels.encode_row(row(), tokenizer, 4)


def test_difficulty_is_one_minus_good_over_the_two_labels():
    assert difficulty_of_log_odds(0.0) == pytest.approx(0.5)
    assert difficulty_of_log_odds(math.log(3)) == pytest.approx(0.25)  # P(GOOD) = 3/4
    # training's readout (log-odds) and serving's (top-k logprobs) agree
    top = {GOOD: math.log(0.1), BAD: math.log(0.3), "7": math.log(0.5)}
    assert difficulty_from_logprobs(top) == pytest.approx(0.75)
    assert difficulty_of_log_odds(math.log(0.1 / 0.3)) == pytest.approx(0.75)


def test_label_row_from_measured_answers():
    task = get_task("arithmetic")
    problem = task.generate(problem_seed("difficulty", 0), 1, 1)[0]
    right, wrong = f"Answer: {problem.answer}", "Answer: -1"
    measured = labels.label_row(problem, "eval", wrong, [right, wrong, wrong, right])
    assert measured["greedy_failure"] == 1 and measured["sample_failures"] == 2
    assert measured["failure_rate"] == 0.5 and measured["samples"] == 4
    greedy_only = labels.label_row(problem, "train", right, [])
    assert greedy_only["greedy_failure"] == 0 and greedy_only["failure_rate"] == 0.0
    assert labels.target(greedy_only) == 1.0 and labels.target(measured) == 0.0


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    # monotone transforms do not change it
    assert spearman([0.1, 0.5, 0.2], [1, 100, 3]) == pytest.approx(1.0)


def test_spearman_ties_share_the_average_rank():
    assert ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    # ranks [1, 2.5, 2.5, 4] and [1, 2, 3.5, 3.5]: r = 3.75 / sqrt(4.5 * 4.5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(3.75 / 4.5)
    assert spearman([1, 2, 2, 3], [1, 0, 1, 1]) == pytest.approx(0.0)
    # against a 0/1 outcome (greedy failure) ties are the rule
    assert spearman([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == pytest.approx(0.8944271909999159)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [1]))
    with pytest.raises(ValueError, match="paired"):
        spearman([1, 2], [1])


def test_bucket_aggregation_by_task_and_level():
    rows = [row("countdown", 2, 1), row("arithmetic", 10, 0), row("arithmetic", 2, 1, 0.75, 4),
            row("arithmetic", 2, 0, 0.25, 4), row("countdown", 2, 0)]
    table = labels.bucket_table(rows, [0.9, 0.1, 0.6, 0.4, 0.7])
    assert list(table) == ["arithmetic 2", "arithmetic 10", "countdown 2"]  # levels numerically
    assert table["arithmetic 2"] == {"n": 2, "greedy_failure": 0.5, "failure_rate": 0.5,
                                     "mean_d": pytest.approx(0.5)}
    assert table["countdown 2"]["mean_d"] == pytest.approx(0.8)
    assert "mean_d" not in labels.bucket_table(rows)["countdown 2"]


def test_evaluation_metrics_and_the_lookup_reference():
    # d ranks the buckets in the order of their failure rate, and problems within a bucket too
    rows = [row("arithmetic", 1, 0, 0.0, 4), row("arithmetic", 1, 0, 0.25, 4),
            row("arithmetic", 8, 1, 0.5, 4), row("arithmetic", 8, 0, 0.25, 4),
            row("countdown", 3, 1, 1.0, 4), row("countdown", 3, 1, 0.75, 4)]
    d = [0.05, 0.1, 0.7, 0.4, 0.95, 0.9]
    train = [row("arithmetic", 1, 0), row("arithmetic", 8, 1), row("countdown", 3, 1)]
    metrics, table = labels.evaluate_difficulty(rows, d, train)
    assert metrics["spearman_bucket"] == pytest.approx(1.0)
    assert metrics["spearman_problem"] == pytest.approx(spearman(d, [0, .25, .5, .25, 1, .75]))
    assert metrics["auroc_greedy_failure"] == 1.0
    assert metrics["eval_problems"] == 6 and metrics["eval_buckets"] == 3
    assert metrics["problem_failure"] == "sampled"
    # the lookup knows only the bucket: its training greedy failure rate, ties within a bucket
    lookup = [0, 0, 1, 1, 1, 1]
    assert metrics["lookup_spearman_problem"] == \
        pytest.approx(spearman(lookup, [0, .25, .5, .25, 1, .75]))


def test_training_and_held_out_problems_come_from_the_difficulty_stream():
    base = 4_000_000  # the committed difficulty adapter's labels were measured on these seeds
    train = draw_problems(["arithmetic/1-2", "countdown/1"], "difficulty", seed=0, count=20)
    held_out = draw_problems(["arithmetic/1-2", "countdown/1"], "difficulty", seed=1, count=20,
                             exclude={p.prompt for p in train})
    assert train and held_out
    assert {p.prompt for p in train}.isdisjoint(p.prompt for p in held_out)
    assert all(str(base) in p.id for p in train)  # ids name the generator seed
    assert all(str(base + 1) in p.id for p in held_out)
    assert len({p.prompt for p in train}) == len(train)  # repeats dropped
    assert {(p.task, p.difficulty) for p in train} == \
        {("arithmetic", 1), ("arithmetic", 2), ("countdown", 1)}


def test_arguments_are_checked(capsys):
    with pytest.raises(SystemExit):
        rec.main(["--out", "o", "--out-dir", "d", "--seed", "1", "--eval-seed", "1"])
    assert "another seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rec.main(["--out", "o", "--out-dir", "d", "--dataset", "x.jsonl"])
    assert "--labels" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rec.main(["--out", "o", "--labels", "missing.jsonl"])
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rec.main(["--out", "o", "--out-dir", "d", "--task", "chess"])
    assert "task selector" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no model hub here: a base must be a local directory
        rec.main(["--out", "o", "--out-dir", "d", "--model", "meta-llama/Llama-3.2-1B"])
    assert "meta-llama/Llama-3.2-1B" in capsys.readouterr().err
    assert rec.main(["--out", "o", "--out-dir", "d", "--r", "8", "--dry-run"]) == 0
    assert '"task": [\n    "arithmetic/1-8",\n    "countdown/1-5"\n  ]' in capsys.readouterr().out
