"""Bounded-context reasoning on a real byte-level BPE tokenizer (the qwen2-chat fixture, a
thinking model: `<think>` and `</think>` are whole tokens) with a think section longer than
several chunks: Delethink's carried prompt is the chat prompt, the opening `<think>`, and the
last m ids of the thinking, exactly as the model wrote them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import AutoTokenizer

from engine.protocol import Choice, GenerationOutput, SamplingParams
from search.chunking import Chunker, Chunking
from search.problem import SearchProblem
from search.strategies import greedy
from tests.fakes import FakeEngine
from tests.real_models.build import model_dir
from tests.real_models.chat_models import QWEN2
from verifiers.scorer import Scorer

TOKENIZER = AutoTokenizer.from_pretrained(model_dir(QWEN2.name))
QUESTION = "Think about 23 plus 45."
PROMPT = TOKENIZER.apply_chat_template([{"role": "user", "content": QUESTION}],
                                       tokenize=False, add_generation_prompt=True)
THOUGHTS = "\n\n".join(f"Step {i}: the tens give {20 + i}0, so the sum moves on to {i}."
                       for i in range(1, 25))
REPLY = f"<think>\n{THOUGHTS}\n</think>\n\nThe answer is 68."
C, M = 96, 32


def encode(text: str) -> list[int]:
    return TOKENIZER.encode(text, add_special_tokens=False)


@dataclass
class ScriptedThinker(FakeEngine):
    """Writes REPLY's ids, reading only its prompt: the chat prompt, then (in a chunk after
    the first) the opening `<think>`, then a run of REPLY's ids found exactly once in it."""

    max_model_len: int = 4096
    calls: list[list[int]] = field(default_factory=list)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return TOKENIZER.encode(text, add_special_tokens=add_special_tokens)

    def decode(self, token_ids: Sequence[int]) -> str:
        return TOKENIZER.decode(token_ids, skip_special_tokens=True)

    async def generate(self, prompt, params: SamplingParams, request_id: str, adapter=None):
        ids, reply, head = list(prompt), encode(REPLY), encode(PROMPT)
        self.calls.append(ids)
        assert ids[:len(head)] == head
        seen = ids[len(head):]
        if len(self.calls) > 1:  # a carried chunk: the opening, then the tail
            assert seen[0] == reply[0] and TOKENIZER.decode(seen[:1]) == "<think>"
            seen = seen[1:]
        at = [i for i in range(len(reply) - len(seen) + 1) if reply[i:i + len(seen)] == seen]
        assert len(at) == 1 or not seen, f"{TOKENIZER.decode(seen)!r} is not in the reply once"
        start = at[0] + len(seen) if seen else 0
        out = reply[start:start + params.max_tokens]
        done = start + len(out) == len(reply)
        yield GenerationOutput(request_id, ids, [Choice(
            0, TOKENIZER.decode(out), out + ([TOKENIZER.eos_token_id] if done else []), None,
            "stop" if done else "length", None)], True)


def test_the_carried_prompt_keeps_the_think_opening_and_the_last_m_ids():
    prompt_ids = encode(PROMPT)
    reply = encode(REPLY)
    assert len(reply) > 4 * C  # several chunks of thinking
    chunker = Chunker(Chunking(chunk_tokens=C, carry_tokens=M, opening="<think>"), QUESTION,
                      prompt_ids, TOKENIZER.decode)
    path = reply[:C + 10]
    view = chunker.view(path)
    assert view.index == 1 and view.start == C - M
    carried = view.prompt(path)
    assert carried == prompt_ids + reply[:1] + reply[C - M:C + 10]
    assert TOKENIZER.decode(carried).startswith(PROMPT + "<think>")
    assert "</think>" not in TOKENIZER.decode(carried)  # the boundary is inside the thinking


def test_a_thinking_path_longer_than_several_chunks_is_answered_whole():
    engine = ScriptedThinker()
    problem = SearchProblem(prompt=PROMPT, question=QUESTION, add_special_tokens=False,
                            thinking_end="</think>",
                            chunking=Chunking(chunk_tokens=C, carry_tokens=M,
                                              opening="<think>"))
    params = greedy.Params(max_tokens=2000, confidence_top_k=0)
    result = asyncio.run(greedy.run(problem, engine, Scorer({}, {}), params))
    assert result.best.text == TOKENIZER.decode(encode(REPLY))
    assert result.best.token_ids == tuple(encode(REPLY)) + (TOKENIZER.eos_token_id,)
    assert len(engine.calls) == result.details["context"]["chunks"] > 4
    for ids in engine.calls[1:]:
        assert len(ids) == len(encode(PROMPT)) + 1 + M  # prompt, <think>, the last m ids
