"""The committed difficulty adapter (`python -m training.difficulty`), served by a real vLLM engine
through the `learned` estimator, ranks easy problems below hard ones."""

from __future__ import annotations

import contextlib
import statistics

import pytest

from search.difficulty.learned import LearnedEstimator
from search.problem import SearchProblem
from engine.local import LocalEngineConfig, open_local_engine
from tests.integration.conftest import DEMO_MODEL, MODEL, ROOT
from training.tasks import get_task
from verifiers.registry import VerifierDeps

ADAPTER = ROOT / "models" / "demo" / "adapters" / "difficulty"
SEED = 77  # an evaluation seed (< 1_000_000): none of the adapter's training problems
COUNT = 8

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(MODEL.resolve() != DEMO_MODEL.resolve(),
                       reason="the committed difficulty adapter belongs to the demo base model"),
]


@pytest.fixture(scope="module")
async def estimator():
    async with open_local_engine(LocalEngineConfig(model=str(MODEL), served_model_name="demo",
                                                   kv_cache_bytes=64 * 2**20)) as engine:
        await engine.add_adapter("difficulty", str(ADAPTER))

        @contextlib.asynccontextmanager
        async def adapter_scope(name: str):
            assert name == "difficulty"
            yield name

        yield LearnedEstimator(VerifierDeps(engine=engine, adapter_scope=adapter_scope))


async def mean_difficulty(estimator: LearnedEstimator, task: str, level: int) -> float:
    problems = get_task(task).generate(SEED, COUNT, level)
    values = [await estimator.estimate(SearchProblem(prompt=p.prompt + "\n", question=p.prompt))
              for p in problems]
    assert all(0.0 <= d <= 1.0 for d in values)
    return statistics.mean(values)


async def test_committed_adapter_rates_easy_below_hard(estimator):
    easy = await mean_difficulty(estimator, "arithmetic", 1)
    long_arithmetic = await mean_difficulty(estimator, "arithmetic", 8)
    countdown = await mean_difficulty(estimator, "countdown", 4)
    # measured greedy failure: about 0% at 1 op, 50% at 8 ops, 95% on countdown level 4
    assert easy < 0.3 <= long_arithmetic and easy < countdown
    assert long_arithmetic < countdown


async def test_served_difficulty_matches_the_training_readout(estimator):
    """vLLM applies the adapter as training computed it: same d as transformers + peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.components.difficulty_labels import predict

    problems = [get_task("arithmetic").generate(SEED, 1, 5)[0],
                get_task("countdown").generate(SEED, 1, 2)[0]]
    served = [await estimator.estimate(SearchProblem(prompt=p.prompt + "\n", question=p.prompt))
              for p in problems]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(MODEL)),
                                      str(ADAPTER))
    trained = predict(model, [{"prompt": p.prompt, "greedy_failure": 0} for p in problems],
                      AutoTokenizer.from_pretrained(str(MODEL)), max_length=256)
    assert served == pytest.approx(trained, abs=0.02)
