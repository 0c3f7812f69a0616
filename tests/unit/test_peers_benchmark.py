"""benchmarks.peers' bookkeeping: its_hub's scorers over /v1/verify, the answer projection, the
goal's judgement."""

from __future__ import annotations

import json

import httpx

from benchmarks.harness.its_hub_side import (VERIFIERS, VerifyORM, VerifyPRM, VerifyScorer,
                                             project_answer)
from benchmarks.peers import judge


def test_the_projection_votes_on_the_last_answer_line():
    assert project_answer("2+3=5\nAnswer: 5") == "5"
    assert project_answer("Answer: 4\nAnswer: -12") == "-12"
    assert project_answer("2+3=5") == ""


def scorer_answering(scores: dict[str, float]) -> tuple[VerifyScorer, list[dict]]:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(200, json={"score": scores[body["completion"]]})

    scorer = VerifyScorer("http://verify")
    scorer.http = httpx.AsyncClient(base_url="http://verify",
                                    transport=httpx.MockTransport(handler))
    return scorer, sent


async def test_the_prm_scores_each_partial_path_with_deliberates_search_verifiers():
    scorer, sent = scorer_answering({"1+1=2\n": 0.9, "1+1=3\n": 0.1})
    prm = VerifyPRM(scorer)
    assert await prm.ascore("Compute: 1+1", ["1+1=2\n", "1+1=3\n"]) == [0.9, 0.1]
    assert await prm.ascore("Compute: 1+1", "1+1=3\n") == 0.1
    assert sent[0] == {"prompt": "Compute: 1+1", "completion": "1+1=2\n",
                       "verifiers": VERIFIERS}
    assert scorer.calls == 3
    # an empty path is scored 0 without a call (verify asks for a non-empty completion)
    assert await prm.ascore("Compute: 1+1", [""]) == [0.0] and scorer.calls == 3


async def test_the_orm_scores_a_conversation_by_its_question_and_last_reply():
    scorer, sent = scorer_answering({"Answer: 2": 1.0, "Answer: 3": 0.0})
    orm = VerifyORM(scorer)
    conversations = [[{"role": "user", "content": "Compute: 1+1"},
                      {"role": "assistant", "content": reply}]
                     for reply in ("Answer: 2", "Answer: 3")]
    assert await orm.ascore(conversations) == [1.0, 0.0]
    assert await orm.ascore(conversations[1]) == 0.0
    assert {s["prompt"] for s in sent} == {"Compute: 1+1"}


def result(side: str, config: str, task: str, accuracy: float, tokens: float,
           errors: int = 0) -> dict:
    return {"side": side, "config": config, "task": task, "accuracy": accuracy,
            "tokens": tokens, "errors": errors, "n": 10}


def test_the_goal_is_met_only_at_the_best_peers_accuracy_and_no_more_tokens():
    results = [result("deliberate", "auto", "arithmetic", 0.8, 100),
               result("optillm", "none", "arithmetic", 0.7, 50),
               result("its_hub", "best_of_n/8", "arithmetic", 0.8, 400),
               result("deliberate", "auto", "countdown", 0.5, 300),
               result("its_hub", "best_of_n/8", "countdown", 0.6, 400),
               # a peer approach that answered nothing is not the best peer
               result("optillm", "moa", "countdown", 1.0, 10, errors=10)]
    arithmetic, countdown = judge(results)
    assert "best_of_n/8 80.0% at 400" in arithmetic and arithmetic.endswith("**met**")
    assert "best_of_n/8 60.0%" in countdown and countdown.endswith("**missed**")


def test_sides_run_apart_merge_into_one_report_with_one_row_per_phase(tmp_path, monkeypatch):
    import argparse

    import benchmarks.peers as peers

    monkeypatch.setattr(peers, "RESULTS", tmp_path)
    args = argparse.Namespace(per_level=1, countdown=1, seed=5, concurrency=2, model="m")

    def run(side: str, configs: list[str], accuracy: float, name: str) -> None:
        rows, answers = [], []
        for config in configs:
            for task in ("arithmetic", "countdown"):
                rows.append({**result(side, config, task, accuracy, 100.0), "engine_calls": 1.0,
                             "usage_tokens": None, "latency_s": 1.0, "wall_s": 2.0})
                answers.append(peers.Answer(side, config, task, f"{task}-0", True, 200, None, 1.0))
        peers.save(rows, [], answers, args, 60.0, name)

    run("deliberate", ["auto"], 0.5, "first")
    run("its_hub", ["best_of_n/8"], 0.25, "first_its_hub")  # cut short in the first run
    run("its_hub", ["best_of_n/8"], 0.75, "second")
    peers.render([tmp_path / "first.json", tmp_path / "first_its_hub.json",
                  tmp_path / "second.json"])
    text = (tmp_path / "peers.md").read_text()
    assert text.count("| its_hub | best_of_n/8 |") == 2  # one per task, the later run's
    assert "| its_hub | best_of_n/8 | 75.0% |" in text and "25.0%" not in text
    merged = json.loads((tmp_path / "peers.json").read_text())
    assert len(merged["results"]) == 4 and len(merged["answers"]) == 4
    assert merged["wall_s"] == 180.0 and (tmp_path / "peers.png").exists()
