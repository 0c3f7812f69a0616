"""A label-token reward model read offline (training) and online (the verifiers) the same way,
on a BPE tokenizer that merges the step tag with the newline after it and adds a BOS."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from tests.label_models import ModelEngine, ModelLLM, merging_tokenizer, tiny_label_models
from training.components.reward_eval import Sample, score_paths
from training.prm import encode_rows
from training.tasks import Problem
from verifiers.builtin.orm import ORMVerifier
from verifiers.builtin.prm import PRMVerifier
from verifiers.label_reading import find_tags, prompt_encoder
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierDeps
from verifiers.reward_format import step_query, written_path

PROBLEM = "Compute: 2+3*4"
STEPS = ["3*4=12", "2+12=14", "Answer: 14"]
PATHS = [(PROBLEM, STEPS), (PROBLEM, ["3*4=13", "2+13=15", "Answer: 15"]),
         ("Compute: 7+8", ["7+8=15", "Answer: 15"])]


@pytest.fixture(scope="module")
def tokenizer():
    return merging_tokenizer()


def test_the_tokenizer_merges_the_tag_with_the_newline_and_adds_a_bos(tokenizer):
    ids = tokenizer(written_path(PROBLEM, STEPS).text)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == tokenizer.bos_token and tokens.count("Ġ#Ċ") == 3


def test_a_tag_merged_with_what_follows_is_read_after_its_own_query(tokenizer):
    encode = prompt_encoder(tokenizer)
    merged = find_tags(written_path(PROBLEM, STEPS), encode)
    assert merged.positions == [None, None, None]  # no prefix of the path ends at a tag
    # with a character-level view of the same text every tag is found, at its query's end
    chars = find_tags(written_path(PROBLEM, STEPS), lambda text: [ord(c) for c in text])
    assert chars.positions == [len(step_query(PROBLEM, STEPS[:i + 1])) - 1 for i in range(3)]


def test_training_trains_every_step_where_the_server_reads_it(tokenizer):
    row = {"prompt": PROBLEM, "completions": STEPS, "labels": [1, 1, 0]}
    rows = encode_rows(row, tokenizer, 256)
    # each step on a row of its own: its query as the engine tokenizes it (BOS first), the
    # label read after its last token, as the prm verifier's next-token request reads it
    assert [r["input_ids"] for r in rows] == [
        tokenizer(step_query(PROBLEM, STEPS[:i + 1]))["input_ids"] for i in range(3)]
    assert [r["tag_positions"] for r in rows] == [[len(r["input_ids"]) - 1] for r in rows]
    assert [r["tag_targets"] for r in rows] == [[1.0], [1.0], [0.0]]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer):
    from training.components.rl_rewards import RewardModels

    base, adapters = tiny_label_models(tmp_path_factory.mktemp("label-models"), tokenizer)
    return RewardModels(str(base), adapters)


def served(models, verifier_class, items):
    """The verifier's scores, served by an engine over the very model training reads (every
    token's logprob listed, so nothing rests on the top-k estimate)."""
    @contextlib.asynccontextmanager
    async def scope(name):
        yield name

    config = {name: {"top_k": len(models.tokenizer)} for name in ("prm", "orm")}
    deps = VerifierDeps(engine=ModelEngine(models.model, models.tokenizer), config=config,
                        adapter_scope=scope)
    return verifier_class(deps).score(items, ScoringContext())


async def test_the_prm_reads_the_same_offline_and_online(models):
    offline = models.step_scores("prm", PATHS)
    items = [StepItem(q, tuple(steps[:i + 1])) for q, steps in PATHS for i in range(len(steps))]
    online = await served(models, PRMVerifier, items)
    assert [s for path in offline for s in path] == pytest.approx(online, abs=1e-5)
    assert len(set(round(s, 3) for s in online)) > 3  # scores that tell steps apart


async def test_the_orm_reads_the_same_offline_and_online(models):
    offline = models.outcome_scores("orm", PATHS)
    items = [StepItem(q, tuple(steps), is_final=True) for q, steps in PATHS]
    online = await served(models, ORMVerifier, items)
    assert offline == pytest.approx(online, abs=1e-5)
    assert len(set(round(s, 3) for s in online)) == 3


async def test_the_reward_evaluation_reads_as_the_verifiers_do(models):
    samples = [Sample(Problem(f"p{i}", "arithmetic", q, "0", 1), "\n".join(steps), list(steps),
                      False, [], []) for i, (q, steps) in enumerate(PATHS)]
    score_paths(ModelLLM(models.model, models.tokenizer), samples, "prm", "orm",
                models.tokenizer, SimpleNamespace)
    steps = [StepItem(q, tuple(s[:i + 1])) for q, s in PATHS for i in range(len(s))]
    assert [p for s in samples for p in s.prm] == pytest.approx(
        await served(models, PRMVerifier, steps), abs=1e-5)
    finals = [StepItem(q, tuple(s), is_final=True) for q, s in PATHS]
    assert [s.orm for s in samples] == pytest.approx(await served(models, ORMVerifier, finals),
                                                     abs=1e-5)
