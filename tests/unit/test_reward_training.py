"""The ORM recipe's pieces and the orm verifier against a scripted engine."""

import contextlib
import math

import pytest
import torch

from training.components.batches import collate_pairs as collate
from training.components.losses import bradley_terry_loss, rewards_and_label_mass
from training.components.tokenizer import build_tokenizer
from search.steps import StepDelimiter, split_text
from training.reward import encode_pair
from verifiers.builtin.orm import ORMVerifier
from verifiers.protocol import ScoringContext, StepItem
from verifiers.registry import VerifierDeps

PAIR = {"prompt": "Compute: 2+3", "chosen": "2+3=5\nAnswer: 5", "rejected": "2+3=6\nAnswer: 6"}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_pairs_end_at_the_tag_even_when_truncated(tokenizer):
    row = encode_pair(PAIR, tokenizer, 256)
    assert tokenizer.decode(row["chosen_ids"]) == "Compute: 2+3\n2+3=5\nAnswer: 5 #"
    short = encode_pair(PAIR, tokenizer, 6)
    assert tokenizer.decode(short["rejected_ids"]).endswith("6 #") and len(short["rejected_ids"]) == 6


def test_collate_and_bradley_terry(tokenizer):
    batch = collate([encode_pair(PAIR, tokenizer, 256)] * 2, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 4  # chosen, chosen, rejected, rejected
    assert batch["last"].tolist() == [len("Compute: 2+3\n2+3=5\nAnswer: 5 #") - 1] * 4
    good, bad = tokenizer.convert_tokens_to_ids(["+", "-"])
    logits = torch.zeros(4, batch["input_ids"].shape[1], 100)
    reward, mass = rewards_and_label_mass(logits, batch["last"], good, bad)
    assert reward.tolist() == [0.0] * 4 and mass[0].item() == pytest.approx(math.log(2 / 100))
    ranked = logits.clone()
    ranked[:2, :, good] = 3.0  # chosen rated good, rejected neutral
    assert bradley_terry_loss(*rewards_and_label_mass(ranked, batch["last"], good, bad)) < \
        bradley_terry_loss(reward, mass)


def scripted_orm(queries: list) -> ORMVerifier:
    class Engine:
        async def next_token_logprobs(self, prompt, k, adapter=None):
            queries.append((prompt, adapter))
            return {"+": math.log(0.7), "-": math.log(0.3)}

    @contextlib.asynccontextmanager
    async def scope(name):
        yield name

    return ORMVerifier(VerifierDeps(engine=Engine(), adapter_scope=scope))


async def test_a_pair_is_the_query_the_orm_verifier_sends_for_the_same_text(tokenizer):
    solution = "2+3=5 \n\n Answer: 5\n"  # a blank line, a space after a step, an indent
    queries = []
    steps = tuple(split_text(solution, StepDelimiter()))  # as /v1/verify cuts it
    await scripted_orm(queries).score([StepItem(PAIR["prompt"], steps, is_final=True)],
                                      ScoringContext())
    row = encode_pair({**PAIR, "chosen": solution}, tokenizer, 256)
    assert tokenizer.decode(row["chosen_ids"]) == queries[0][0] == \
        "Compute: 2+3\n2+3=5\n Answer: 5 #"


async def test_orm_verifier_scores_only_finished_solutions():
    queries = []
    verifier = scripted_orm(queries)
    items = [StepItem("Compute: 2+3", ("2+3=5",)),
             StepItem("Compute: 2+3", ("2+3=5", "Answer: 5"), is_final=True)]
    assert await verifier.score(items, ScoringContext()) == [1.0, pytest.approx(0.7)]
    assert queries == [("Compute: 2+3\n2+3=5\nAnswer: 5 #", "orm")]
