"""POST /v1/verify on the real server: correct solutions outrank corrupted ones."""

import httpx
import pytest

pytestmark = pytest.mark.slow

CASES = [
    ("Compute: 48+17*3-29*2+11", "17*3=51\n29*2=58\n48+51=99\n99-58=41\n41+11=52\nAnswer: 52",
     "17*3=51\n29*2=58\n48+51=98\n98-58=40\n40+11=51\nAnswer: 51"),
    ("Numbers: 3 7 25 50 Target: 353", "50*7=350\n350+3=353\nAnswer: 353",
     "50*7=350\n350+3=354\nAnswer: 354"),
]


@pytest.mark.parametrize("prompt, good, bad", CASES)
def test_verify_ranks_correct_above_corrupted(server, prompt, good, bad):
    scores = {}
    for name, completion in (("good", good), ("bad", bad)):
        r = httpx.post(f"{server.url}/v1/verify", json={"prompt": prompt, "completion": completion})
        assert r.status_code == 200, r.text
        scores[name] = r.json()["score"]
    assert scores["good"] > scores["bad"]


@pytest.mark.parametrize("verifiers", [{"prm": 1}, {"orm": 1}, {"prm": 1, "logic": 1}])
def test_a_completion_past_the_reward_models_context_is_a_400(server, verifiers):
    # 130 steps of 6 characters: past the demo model's 512-token context once tagged
    completion = "2+3=5\n" * 130 + "Answer: 5"
    r = httpx.post(f"{server.url}/v1/verify", json={
        "prompt": "Compute: 2+3", "completion": completion, "verifiers": verifiers})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "completion" and "maximum context length" in error["message"]
    # the engine still serves
    r = httpx.post(f"{server.url}/v1/verify", json={
        "prompt": "Compute: 2+3", "completion": "2+3=5\nAnswer: 5", "verifiers": verifiers})
    assert r.status_code == 200 and r.json()["verifier_errors"] == {}
