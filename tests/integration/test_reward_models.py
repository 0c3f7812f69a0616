"""Reward models: the committed demo PRM scores through /v1/verify; adapters trained in the test
by `training.prm` and `training.reward` are served by the same engine."""

import asyncio
import json
import random

import httpx
import pytest

from tests.integration.conftest import DEMO_MODEL
from training.components.seeds import problem_seed
from training.tasks import get_task
from training.tasks.base import split_steps
from verifiers.reward_format import good_probability, step_query

pytestmark = pytest.mark.slow

PROBLEM = "Compute: 48+17*3-29*2+11"
GOOD = "17*3=51\n29*2=58\n48+51=99\n99-58=41\n41+11=52\nAnswer: 52"


def synthetic_step_labels(path, count: int) -> None:
    """Worked solutions, half with one corrupted result; labels from the exact step checker."""
    rng, task, rows = random.Random(0), get_task("arithmetic"), []
    for problem, worked in task.generate_worked(seed=problem_seed("tests", 0), count=count):
        steps = split_steps(worked)
        if rng.random() < 0.5 and len(steps) > 1:
            i = rng.randrange(len(steps) - 1)
            lhs, rhs = steps[i].split("=")
            steps[i] = f"{lhs}={int(rhs) + rng.choice([-10, -1, 1, 10])}"
        labels = [int(task.check_step(problem, steps[:k], s)) for k, s in enumerate(steps)]
        rows.append({"prompt": problem.prompt, "completions": steps, "labels": labels})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


async def verify(server, verifiers, prompt=PROBLEM, completion=GOOD):
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        r = await http.post("/v1/verify", json={"prompt": prompt, "completion": completion,
                                                "verifiers": verifiers})
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_demo_prm_scores_a_wrong_countdown_step_below_the_right_one(server):
    prompt = "Numbers: 3 7 25 50 Target: 353"
    right = await verify(server, {"prm": 1}, prompt, "50*7=350\n350+3=353\nAnswer: 353")
    wrong = await verify(server, {"prm": 1}, prompt, "50*7=350\n350+3=354\nAnswer: 354")
    right_scores = [step["scores"]["prm"] for step in right["steps"]]
    wrong_scores = [step["scores"]["prm"] for step in wrong["steps"]]
    assert right_scores[0] == pytest.approx(wrong_scores[0])  # the same first step
    assert right_scores[1] > wrong_scores[1] + 0.5


async def test_verify_ranks_worked_countdown_solutions_above_corrupted_copies(server):
    from training.components.corruption import corrupt
    from training.components.problems import worked_problems

    rng = random.Random(7)
    # the seed this test has always drawn from: one below 4_000_000, where the committed PRM's
    # corruptions were drawn, so these problems are not in its data
    for problem, worked in worked_problems("countdown/2-4", 3_999_999, 6):
        bad = None
        while bad is None:
            bad = corrupt(worked.split("\n"), rng, rng.choice(["digit", "operand", "answer"]))
        right = await verify(server, {"prm": 1}, problem.prompt, worked)
        wrong = await verify(server, {"prm": 1}, problem.prompt, "\n".join(bad))
        assert right["score"] > wrong["score"], (worked, bad)


async def test_the_demo_prm_scores_every_step(server):
    """The committed PRM (models/demo/adapters/prm) is resolved on demand and scores each step;
    a broken or missing reward model degrading to verifier_errors is tested in the unit tests."""
    scored = await verify(server, {"prm": 1, "logic": 1})
    assert scored["verifier_errors"] == {}
    scores = [step["scores"]["prm"] for step in scored["steps"]]
    assert len(scores) == 6 and all(0.0 < s < 1.0 for s in scores)


async def test_the_prm_recipe_trains_an_adapter_the_server_serves(server):
    from training import prm

    data, out = server.adapter_root / "steps.jsonl", server.adapter_root / "prm-small"
    synthetic_step_labels(data, 200)
    await asyncio.to_thread(prm.main, [
        "--model", str(DEMO_MODEL), "--dataset", str(data), "--out", str(out), "--r", "8",
        "--max-steps", "8", "--batch-size", "16", "--lr", "0.003", "--eval-fraction", "0.2"])
    manifest = json.loads((out / "deliberate_manifest.json").read_text())
    assert 0.0 <= manifest["metrics"]["step_auroc"] <= 1.0
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        r = await http.post("/v1/load_lora_adapter",
                            json={"lora_name": "prm-small", "lora_path": str(out)})
        assert r.status_code == 200, r.text
        # what the prm verifier asks: the next-token logprobs after a step's tag
        r = await http.post("/v1/completions", json={
            "model": "prm-small", "prompt": f"{PROBLEM}\n17*3=51 #", "max_tokens": 1,
            "temperature": 0, "logprobs": 5})
        assert r.status_code == 200, r.text
        assert len(r.json()["choices"][0]["logprobs"]["top_logprobs"][0]) == 5


def synthetic_pairs(path, count: int) -> None:
    """Right worked solutions (chosen) against ones with a wrong final answer (rejected)."""
    task, rows = get_task("arithmetic"), []
    for problem, worked in task.generate_worked(seed=5_100_000, count=count):
        steps = split_steps(worked)
        wrong = int(problem.answer) + 1
        rows.append({"prompt": problem.prompt, "chosen": worked,
                     "rejected": "\n".join(steps[:-2] + [f"{steps[-2].split('=')[0]}={wrong}",
                                                          f"Answer: {wrong}"])})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


async def test_orm_adapter_scores_the_finished_solution(server):
    from training import reward

    data, out = server.adapter_root / "pairs.jsonl", server.adapter_root / "orm-small"
    synthetic_pairs(data, 120)
    await asyncio.to_thread(reward.main, [
        "--model", str(DEMO_MODEL), "--dataset", str(data), "--out", str(out), "--r", "8",
        "--max-steps", "8", "--batch-size", "8", "--lr", "0.003", "--eval-fraction", "0.2"])
    manifest = json.loads((out / "deliberate_manifest.json").read_text())
    assert 0.0 <= manifest["metrics"]["pairwise_accuracy"] <= 1.0

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        # "orm" is the adapter the server's orm verifier scores with: not a client's to replace
        r = await http.post("/v1/load_lora_adapter", json={"lora_name": "orm", "lora_path": str(out)})
        assert r.status_code == 409 and r.json()["error"]["code"] == "adapter_reserved", r.text
        r = await http.post("/v1/load_lora_adapter",
                            json={"lora_name": "orm-small", "lora_path": str(out)})
        assert r.status_code == 200, r.text
        # the trained adapter answers the orm verifier's question about the finished path
        r = await http.post("/v1/completions", json={
            "model": "orm-small", "prompt": step_query(PROBLEM, [GOOD]), "max_tokens": 1,
            "temperature": 0, "logprobs": 5})
        assert r.status_code == 200, r.text
        top = r.json()["choices"][0]["logprobs"]["top_logprobs"][0]
        assert 0.0 < good_probability(top) < 1.0
    # and the server's orm (the demo's, served as `orm`) judges only the finished path
    scored = await verify(server, {"orm": 1})
    assert scored["verifier_errors"] == {}
    scores = [step["scores"]["orm"] for step in scored["steps"]]
    assert scores[:-1] == [1.0] * 5 and 0.0 < scores[-1] < 1.0
