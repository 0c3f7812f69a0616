"""`python -m training.swarm_router` for real, on a few sub-problems: the base model and the
physics adapter answer and score them with vLLM offline, and the recipe writes a router the
server loads, with its held-out report and its labels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from search.swarm.router import LearnedRouter
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_recipe_measures_fits_and_writes_a_router_the_server_loads(tmp_path):
    out, labels = tmp_path / "router.json", tmp_path / "labels.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "training.swarm_router", "--adapter",
         "physics=models/demo/adapters/physics", "--task", "arithmetic/1", "--task", "physics/1",
         "--problems", "8", "--held-out", "4", "--steps", "200", "--out", str(out),
         "--labels-out", str(labels)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert len(rows) == 2 * (8 + 4)
    assert all(set(r["solved"]) == set(r["loglik"]) == {"base", "physics"} for r in rows)
    physics = [r for r in rows if r["task"] == "physics"]
    # the committed adapter solves its family's easiest level, which the base never does
    assert not any(r["solved"]["base"] for r in physics)
    assert sum(r["solved"]["physics"] for r in physics) >= len(physics) // 2
    data = json.loads(out.read_text())
    held = data["metrics"]["held_out"]
    assert held["n"] == 8 and {"learned", "oracle_by_family", "likelihood"} <= set(held)
    router = LearnedRouter.load(out)
    assert router.models == ["base", "physics"]
    assert router.choose(physics[0]["question"], ["base", "physics"]).model == "physics"
