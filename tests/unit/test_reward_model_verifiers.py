"""The reward models of the ecosystem as verifiers, against a scripted engine: what each reads
(the conversation in its template, the steps and their markers), which rows or logprobs it
takes, and how they become scores."""

from __future__ import annotations

import math
import re

import pytest

from engine.protocol import Choice, GenerationOutput
from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_models import reward_model_verifier
from verifiers.reward_models.spec import (
    ClassifierORMSpec,
    PoolingPRMSpec,
    TokenPRMSpec,
)

SEPARATOR = "<extra_0>"
SEPARATOR_ID = 0xE000
SPECIAL = re.compile(r"(<extra_0>|<\|im_start\|>|<\|im_end\|>)")
SPECIAL_IDS = {SEPARATOR: SEPARATOR_ID, "<|im_start|>": 0xE001, "<|im_end|>": 0xE002}
ENGINE = {"model": "unused"}


class ScriptedRewardEngine:
    """A character tokenizer with three special tokens, a ChatML template, and heads that like
    steps ending in "=12": a token head (two classes), a sequence head (one reward), a language
    model whose next token after a tag is "Ġ+" or "Ġ-"."""

    model_name = "rm"

    def __init__(self, step_rows_only: bool = False, labels: int = 1):
        self.step_rows_only = step_rows_only  # vLLM's STEP pooler: only the separators' rows
        self.labels = labels
        self.pooled: list[tuple[str, str]] = []  # (decoded prompt, task)
        self.generated: list[str] = []

    def encode(self, text, add_special_tokens=True):
        ids = [1] if add_special_tokens else []  # a BOS
        for piece in SPECIAL.split(text):
            ids += [SPECIAL_IDS[piece]] if piece in SPECIAL_IDS else [ord(c) for c in piece]
        return ids

    def decode(self, ids):
        names = {v: k for k, v in SPECIAL_IDS.items()} | {1: "<s>"}
        return "".join(names.get(i) or chr(i) for i in ids)

    def render_chat(self, messages, add_generation_prompt=True):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    async def pool(self, prompt, task):
        text = self.decode(prompt)
        self.pooled.append((text, task))
        if task == "classify":
            good = 2.0 if "=12" in text.split("assistant\n")[-1] else -1.0
            return [[good]] if self.labels == 1 else [[0.0, good]]
        rows = []
        for i, token in enumerate(prompt):
            step = self.decode(prompt[:i]).split(SEPARATOR)[-1]
            if self.step_rows_only and token != SEPARATOR_ID:
                continue
            rows.append([0.0, 1.5 if step.endswith("=12") else -1.5])
        return rows

    async def generate(self, prompt, params, request_id, adapter=None):
        text = self.decode(prompt)
        self.generated.append(text)
        positions = [None] + [self._next(self.decode(prompt[:i])) for i in range(1, len(prompt))]
        yield GenerationOutput(request_id, prompt, [Choice(0, "x", [120], None, "length")], True,
                               prompt_logprobs=positions)

    async def next_token_logprobs(self, prompt, k, adapter=None):
        text = prompt if isinstance(prompt, str) else self.decode(prompt)
        self.generated.append(text)
        return self._next(text)

    @staticmethod
    def _next(context: str) -> dict[str, float]:
        good = 0.8 if context.endswith("=12 ки") else 0.3
        return {"Ġ+": math.log(good), "Ġ-": math.log(1 - good), "\n": -6.0}


def softmax1(logit: float) -> float:
    return math.exp(logit) / (1 + math.exp(logit))


PROBLEM = "Compute: 2+3*4"
PATH = ("3*4=12", "2+12=15")
ITEMS = [StepItem(PROBLEM, PATH[:1]), StepItem(PROBLEM, PATH, is_final=True)]
CHAT = ScoringContext(messages=({"role": "system", "content": "Be brief."},
                                {"role": "user", "content": PROBLEM}))


async def test_the_pooling_prm_reads_the_conversation_and_takes_each_separators_positive_class():
    engine = ScriptedRewardEngine()
    verifier = reward_model_verifier("math_prm", PoolingPRMSpec(kind="pooling_prm",
                                                                engine=ENGINE), engine)
    scores = await verifier.score(ITEMS, CHAT)
    assert scores == pytest.approx([softmax1(1.5), softmax1(-1.5)])
    # one request for the path (the shorter item is its prefix), in the model's template
    assert engine.pooled == [(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCompute: 2+3*4<|im_end|>\n"
        "<|im_start|>assistant\n3*4=12<extra_0>2+12=15<extra_0><|im_end|>\n", "token_classify")]
    assert verifier.name == "math_prm" and verifier.cost == 1


async def test_the_pooling_prm_takes_a_step_poolers_rows_as_they_come_and_the_reply_s_own():
    """A remote vLLM with the STEP pooler sends only the separators' rows; a separator in the
    question comes before the reply's and is not a step."""
    engine = ScriptedRewardEngine(step_rows_only=True)
    spec = PoolingPRMSpec(kind="pooling_prm", engine=ENGINE, system_prompt="Reason.")
    verifier = reward_model_verifier("p", spec, engine)
    items = [StepItem("What is <extra_0>=12?", ("x=12",), is_final=True)]
    assert await verifier.score(items, ScoringContext()) == pytest.approx([softmax1(1.5)])
    assert engine.pooled[0][0].startswith("<|im_start|>system\nReason.<|im_end|>\n"
                                          "<|im_start|>user\nWhat is <extra_0>=12?")


async def test_a_separator_that_is_not_one_token_is_an_error_that_names_it():
    verifier = reward_model_verifier(
        "p", PoolingPRMSpec(kind="pooling_prm", engine=ENGINE, separator="<step>"),
        ScriptedRewardEngine())
    with pytest.raises(ValueError, match="'<step>' is 6 tokens"):
        await verifier.score(ITEMS, CHAT)


async def test_the_classifier_orm_judges_finished_solutions_in_the_conversation():
    engine = ScriptedRewardEngine()
    spec = ClassifierORMSpec(kind="classifier_orm", engine=ENGINE, center=1.0, scale=2.0)
    verifier = reward_model_verifier("rm", spec, engine)
    scores = await verifier.score(ITEMS, CHAT)
    assert scores == pytest.approx([1.0, softmax1((2.0 - 1.0) / 2.0)])
    assert engine.pooled == [(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCompute: 2+3*4<|im_end|>\n"
        "<|im_start|>assistant\n3*4=12\n2+12=15<|im_end|>\n", "classify")]
    assert verifier.cost == 2


async def test_a_two_class_orm_scores_its_positive_class_and_a_bare_prompt_is_the_user_turn():
    engine = ScriptedRewardEngine(labels=2)
    spec = ClassifierORMSpec(kind="classifier_orm", engine=ENGINE)
    verifier = reward_model_verifier("rm", spec, engine)
    assert await verifier.score([ITEMS[1]], ScoringContext()) == pytest.approx([softmax1(2.0)])
    assert engine.pooled[0][0].startswith("<|im_start|>user\nCompute: 2+3*4<|im_end|>")


async def test_the_token_prm_reads_math_shepherd_text_and_matches_labels_as_the_vocab_names_them():
    engine = ScriptedRewardEngine()
    verifier = reward_model_verifier("shepherd", TokenPRMSpec(kind="token_prm", engine=ENGINE),
                                     engine)
    scores = await verifier.score(ITEMS, CHAT)
    assert scores == pytest.approx([0.8, 0.3])
    # plain text, "{question} {steps with tags}", one request for the path
    assert engine.generated == ["<s>Compute: 2+3*4 3*4=12 ки\n2+12=15 ки\n"]


async def test_a_lone_token_prm_step_is_one_next_token_request_up_to_its_tag():
    engine = ScriptedRewardEngine()
    spec = TokenPRMSpec(kind="token_prm", engine=ENGINE, prompt_format="chat")
    verifier = reward_model_verifier("shepherd", spec, engine)
    assert await verifier.score([StepItem(PROBLEM, ("3*4=12",))], CHAT) == pytest.approx([0.8])
    assert engine.generated == ["<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                                "Compute: 2+3*4<|im_end|>\n<|im_start|>assistant\n3*4=12 ки"]


@pytest.mark.parametrize("fields, words", [
    ({"kind": "prm"}, "does not match any of the expected tags"),
    ({"kind": "token_prm", "plain_format": "{question}"}, "{solution}"),
    ({"kind": "token_prm", "plain_format": "{question} {answer} {solution}"}, "answer"),
    ({"kind": "classifier_orm", "scale": 0}, "greater than 0"),
    ({"kind": "pooling_prm", "engine": {"model": "m", "gpu": 1}}, "Extra inputs"),
])
def test_bad_reward_model_settings_say_what_is_wrong(fields, words):
    from server.settings import Settings

    with pytest.raises(ValueError, match=re.escape(words)):
        Settings(reward_models={"rm": {"engine": ENGINE, **fields}})
