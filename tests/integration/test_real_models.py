"""Search, scoring and routing on real chat architectures: the fixture Qwen2 (ChatML) and Llama-3
models of tests/real_models, byte-level BPE tokenizers whose merges (".\\n\\n", "\\n\\n") break
text-level search, served by the real vLLM engine in this process (one per model) behind the
app (httpx's ASGI transport). The engine records every call, so a test can check that the model
read only what it wrote and that answers are its generated ids decoded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from transformers import AutoTokenizer

from engine.local import LocalEngineConfig, open_local_engine
from search.difficulty.probe import uncertainty
from search.router import route
from search.steps import StepDelimiter
from server.app import create_app
from server.settings import Settings
from tests.real_models.build import model_dir
from tests.real_models.chat_models import LLAMA3, QWEN2

pytestmark = pytest.mark.slow

SUM = "What is 23 plus 45?"
STRATEGIES = {"greedy": {}, "beam": {"beam_width": 2, "n_candidates": 2},
              "mcts": {"simulations": 3, "n_candidates": 2}, "tot": {"beam_width": 2},
              "best_of_n": {"n_candidates": 3}, "self_consistency": {"n_candidates": 3},
              "deepconf": {"n_candidates": 3, "warmup": 2}}


@dataclass
class Call:
    prompt: list[int]
    temperature: float
    seed: int | None
    outputs: dict[int, list[int]] = field(default_factory=dict)
    stops: dict[int, tuple[str | None, str | int | None]] = field(default_factory=dict)


class RecordingEngine:
    """The real engine, with every generate call's prompt ids and output ids recorded."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.calls: list[Call] = []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    async def generate(self, prompt, params, request_id, adapter=None):
        call = Call(list(prompt) if not isinstance(prompt, str) else self.encode(prompt),
                    params.temperature, params.seed)
        self.calls.append(call)
        async for out in self._engine.generate(prompt, params, request_id, adapter):
            for choice in out.choices:
                call.outputs.setdefault(choice.index, []).extend(choice.token_ids)
                if choice.finish_reason is not None:
                    call.stops[choice.index] = (choice.finish_reason, choice.stop_reason)
            yield out


@dataclass
class Served:
    name: str
    engine: RecordingEngine
    tokenizer: object

    def app(self, **settings) -> AppClient:
        defaults = dict(served_model_name=self.name, default_strategy="greedy", max_n=8,
                        enable_lora=False, search_verifiers={"syntax": 1, "logic": 1},
                        difficulty_estimators=["probe"], step_delimiter="\n\n",
                        confidence_file="")  # models/demo/confidence.json is the demo's
        return AppClient(create_app(Settings(**{**defaults, **settings}), self.engine))

    def prompt(self, question: str) -> list[int]:
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                  tokenize=False, add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def chat(self, question: str = SUM, **extra) -> dict:
        # branches sample at 0.5: a model this small rambles at 1.0
        return {"model": self.name, "messages": [{"role": "user", "content": question}],
                "max_tokens": 300, "temperature": 0.5, **extra}


class AppClient:
    """An httpx client on the app, its lifespan entered (the engine stays the module's)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                       base_url="http://test", timeout=120)
        return self._http

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()
        await self._lifespan.__aexit__(*exc)


@pytest.fixture(scope="module", params=[QWEN2.name, LLAMA3.name])
async def served(request) -> AsyncIterator[Served]:
    path = model_dir(request.param)
    config = LocalEngineConfig(model=str(path), served_model_name=request.param,
                               kv_cache_bytes=32 * 2**20, enable_lora=False, block_size=32)
    async with open_local_engine(config) as engine:
        yield Served(request.param, RecordingEngine(engine), AutoTokenizer.from_pretrained(path))


def _paths(trace: list[dict]) -> dict[int, list[int]]:
    """Each trace node's path: the ids from the first step to it."""
    nodes = {n["id"]: n for n in trace}
    paths: dict[int, list[int]] = {}
    for node in trace:  # parents come first
        parent = node["parent"]
        paths[node["id"]] = ([] if parent is None else paths[parent]) + node["token_ids"]
    assert set(paths) == set(nodes)
    return paths


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
async def test_every_strategy_answers_with_the_ids_the_model_generated(served, strategy):
    prompt = served.prompt(SUM)
    served.engine.calls.clear()
    async with served.app() as client:
        r = await client.post("/v1/chat/completions", json=served.chat(reasoning={
            "strategy": strategy, "seed": 3, "return_trace": True, **STRATEGIES[strategy]}))
    assert r.status_code == 200, r.text
    body = r.json()
    answer = body["choices"][0]["message"]["content"]
    calls = [c for c in served.engine.calls if c.prompt[: len(prompt)] == prompt]
    assert calls
    # Every call read the prompt and then only what the model wrote: a path is a prefix of an
    # earlier call's path and output (no text re-encoded).
    written = [c.prompt[len(prompt):] + out for c in calls for out in c.outputs.values()]
    for call in calls:
        path = call.prompt[len(prompt):]
        assert not path or any(w[: len(path)] == path for w in written), \
            served.tokenizer.decode(path)
    # a BPE model's answer says how sure it is, from its own tokens' top-k logprobs
    confidence = body["reasoning"]["confidence"]
    assert 0.0 <= confidence["value"] <= 1.0 and confidence["calibrated"] is False
    if strategy == "greedy":  # a single pass: no trace
        assert answer == served.tokenizer.decode(calls[0].outputs[0], skip_special_tokens=True)
        assert confidence["signals"]["tokens"] == len(calls[0].outputs[0])
        return
    # The answer is the decoding of a path the engine generated, byte for byte.
    paths = _paths(body["reasoning"]["trace"])
    decoded = {served.tokenizer.decode(ids, skip_special_tokens=True): ids
               for ids in paths.values()}
    assert answer in decoded, answer
    assert confidence["signals"]["tokens"] == len(decoded[answer])
    assert confidence["signals"]["verifier"] == pytest.approx(body["reasoning"]["score"],
                                                              abs=1e-4)
    assert any(w[: len(decoded[answer])] == decoded[answer] for w in written)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert answer.rstrip().endswith("}.")  # the whole solution, to its \boxed{} line


async def test_steps_split_at_blank_lines_and_a_long_step_survives(served):
    async with served.app() as client:
        body = (await client.post("/v1/chat/completions", json=served.chat(reasoning={
            "strategy": "beam", "seed": 1, **STRATEGIES["beam"]}))).json()
    answer = body["choices"][0]["message"]["content"]
    steps = [s["text"] for s in body["reasoning"]["steps"]]
    assert all(steps) and "\n\n" not in "".join(steps)
    assert len(steps) == len([p for p in answer.split("\n\n") if p.strip()])
    code = next(s for s in steps if s.lstrip().startswith("total ="))
    assert code.startswith("    total = ")  # indentation kept
    assert f"\n\n{code}" in answer  # and the blank line before the block
    long = max(steps, key=lambda s: len(served.tokenizer.encode(s, add_special_tokens=False)))
    assert len(served.tokenizer.encode(long, add_special_tokens=False)) > 64
    assert long in answer and body["choices"][0]["finish_reason"] == "stop"


# the Llama-3 fixture ends its turns with the second EOS, <|eot_id|>
@pytest.mark.parametrize("served", [LLAMA3.name], indirect=True)
async def test_the_second_eos_ends_the_solution(served):
    eot = served.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    served.engine.calls.clear()
    async with served.app() as client:
        body = (await client.post("/v1/chat/completions", json=served.chat(reasoning={
            "strategy": "beam", "seed": 1, **STRATEGIES["beam"]}))).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "<|eot_id|>" not in body["choices"][0]["message"]["content"]
    ended = [(c, i) for c in served.engine.calls for i, stop in c.stops.items()
             if stop == ("stop", eot)]
    assert ended, "no sample ended on <|eot_id|>"
    assert all(c.outputs[i][-1] == eot for c, i in ended)
    # nothing was asked to continue after it: it ended the solution, not a step
    prompt = served.prompt(SUM)
    assert not any(eot in c.prompt[len(prompt):] for c in served.engine.calls)


async def test_auto_routes_a_free_text_question_by_how_much_the_samples_disagree(served):
    question = "What is the capital of France?"
    served.engine.calls.clear()
    async with served.app(difficulty_config={"probe": {"samples": 4, "max_tokens": 32}}) as client:
        r = await client.post("/v1/chat/completions", json=served.chat(
            question, temperature=0, reasoning={"strategy": "auto", "simulations": 2}))
    reasoning = r.json()["reasoning"]
    assert reasoning["difficulty_estimator"] == "probe"
    (probe,) = [c for c in served.engine.calls if len(c.outputs) == 4]
    texts = [served.tokenizer.decode(ids, skip_special_tokens=True)
             for _, ids in sorted(probe.outputs.items())]
    assert all(text.startswith("The capital of ") for text in texts)  # free text, no number
    # the difficulty is the samples' disagreement, measured, not 1.0 for want of a number
    measured = uncertainty(texts, StepDelimiter.of("\n\n"), weight=0.75)
    assert reasoning["difficulty"] == pytest.approx(measured)
    assert r.headers["x-reasoning-strategy"] == route("auto", None, measured)
    if len(set(texts)) == 1:
        assert reasoning["difficulty"] == 0.0 and r.headers["x-reasoning-strategy"] == "greedy"


async def test_a_temperature_0_request_routed_to_a_search_answers_the_same_every_time(served):
    answers, seeds = [], []
    async with served.app(router_low=0.0, router_high=0.0) as client:  # auto: always mcts
        for _ in range(2):
            served.engine.calls.clear()
            r = await client.post("/v1/chat/completions", json=served.chat(
                temperature=0, reasoning={"strategy": "auto", "simulations": 3,
                                          "n_candidates": 2}))
            assert r.headers["x-reasoning-strategy"] == "mcts"
            answers.append(r.json()["choices"][0]["message"]["content"])
            seeds.append([c.seed for c in served.engine.calls if c.temperature > 0])
    assert answers[0] == answers[1]
    assert seeds[0] == seeds[1] and all(s is not None for s in seeds[0])


@pytest.mark.parametrize("served", [QWEN2.name], indirect=True)  # the thinking fixture
async def test_a_thinking_model_answers_in_content_and_thinks_in_reasoning(served):
    question = "Think about 12 plus 30."
    async with served.app(reasoning_parser="think") as client:
        body = (await client.post("/v1/chat/completions", json=served.chat(
            question, temperature=0))).json()
        message = body["choices"][0]["message"]
        assert "<think>" not in message["content"] and "\\boxed{" in message["content"]
        assert message["reasoning"] == message["reasoning_content"]
        assert message["reasoning"].strip() and "</think>" not in message["reasoning"]
        r = await client.post("/v1/chat/completions", json=served.chat(
            question, temperature=0, stream=True))
        deltas = [json.loads(line[6:])["choices"] for line in r.text.splitlines()
                  if line.startswith("data: {")]
        deltas = [c[0]["delta"] for c in deltas if c]
        assert "".join(d.get("content") or "" for d in deltas) == message["content"]
        assert "".join(d.get("reasoning") or "" for d in deltas) == message["reasoning"]
        body = (await client.post("/v1/chat/completions", json=served.chat(
            question, reasoning={"strategy": "best_of_n", "n_candidates": 3, "seed": 1}))).json()
        message = body["choices"][0]["message"]
        assert "\\boxed{" in message["content"] and message["reasoning"].strip()
