"""What a real chat model needs from the API, on scripted engines (no vLLM): the step delimiter,
max_step_tokens and answer extractor as settings and request fields, the request's stop strings
in a search, reasoning_effort "none"/"minimal", a temperature-0 search seeded from the request,
and a thinking model's reasoning (whole, streamed, and a search's progress as increments)."""

from __future__ import annotations

import json

import httpx
import pytest

from server.app import create_app
from server.openai.chat.thinking import ThinkingStream, split_thinking
from server.reasoning.progress import Increments
from server.settings import Settings, parse_settings
from tests.search_fakes import TokenEngine

PROMPT = "<user>What is 1 plus 2?\n"
VOCAB = (".\n\n", "\n\n", "<think>", "</think>", "\\boxed{")
SOLUTIONS = ("One.\n\nTwo.\n\nSo \\boxed{3}.", "One.\n\nThree.\n\nSo \\boxed{4}.")
THINKING = ("<think>\nOne.\n\nTwo.\n</think>\n\nSo \\boxed{3}.",
            "<think>\nOne.\n\nFour.\n</think>\n\nSo \\boxed{4}.")


def chat(**extra) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": "What is 1 plus 2?"}],
            "max_tokens": 64, **extra}


def events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.fixture
def settings() -> dict:
    return {}


@pytest.fixture
def engine() -> TokenEngine:
    return TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=SOLUTIONS)


@pytest.fixture
async def client(engine, settings):
    app = create_app(Settings(max_n=4, default_strategy="greedy", search_verifiers={"logic": 1},
                              difficulty_estimators=["probe"],
                              difficulty_config={"probe": {"samples": 2}}, **settings), engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("strategy", ["beam", "mcts", "tot", "best_of_n"])
async def test_a_search_answers_with_the_text_the_model_wrote(client, engine, strategy):
    r = await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": strategy, "step_delimiter": "\n\n", "return_trace": True}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] in SOLUTIONS
    steps = [s["text"] for s in body["reasoning"]["steps"]]
    assert steps[:2] == ["One.", steps[1]] and steps[-1].startswith("So \\boxed{")
    # the trace holds each step's ids: what the model generated
    assert all("token_ids" in node for node in body["reasoning"]["trace"])


@pytest.mark.parametrize("settings", [{"step_delimiter": "\n\n", "max_step_tokens": 5}])
async def test_the_step_delimiter_and_step_cap_are_settings(client, engine):
    r = await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "beam"}))
    assert r.status_code == 200, r.text
    step_requests = [p for _, p in engine.calls if p.stop]
    assert step_requests and all(p.stop == ("\n\n",) and p.max_tokens <= 5
                                 for p in step_requests)
    # a request's own wins
    engine.calls.clear()
    await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": "beam", "step_delimiter": {"regex": r"\n\s*\n"}, "max_step_tokens": 9}))
    step_requests = [p for _, p in engine.calls if p.stop]
    assert all(p.stop == ("\n",) and p.max_tokens <= 9 for p in step_requests)


def test_the_step_delimiter_flag_takes_a_literal_or_json():
    assert parse_settings(["--step-delimiter", "\n\n"]).step_delimiter == "\n\n"
    assert parse_settings(["--step-delimiter", '"\\n\\n"']).step_delimiter == "\n\n"
    regex = parse_settings(["--step-delimiter", '{"regex": "\\\\n\\\\s*\\\\n"}']).step_delimiter
    assert regex.regex == "\\n\\s*\\n" and regex.triggers == ["\n"]


@pytest.mark.parametrize(("reasoning", "param"), [
    ({"strategy": "beam", "step_delimiter": ""}, "reasoning.step_delimiter"),
    ({"strategy": "beam", "step_delimiter": {"regex": "("}}, "reasoning.step_delimiter"),
    ({"strategy": "beam", "step_delimiter": {"regex": "\\n", "triggers": []}},
     "reasoning.step_delimiter"),
    ({"strategy": "beam", "max_step_tokens": 0}, "reasoning.max_step_tokens"),
    ({"strategy": "beam", "answer_extractor": "magic"}, "reasoning.answer_extractor"),
])
async def test_bad_step_and_answer_options_are_400s(client, reasoning, param):
    r = await client.post("/v1/chat/completions", json=chat(reasoning=reasoning))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith(param)


async def test_a_stop_string_of_the_request_ends_a_searchs_solution(client):
    r = await client.post("/v1/chat/completions", json=chat(stop=["Two"], reasoning={
        "strategy": "beam", "step_delimiter": "\n\n"}))
    assert r.status_code == 200, r.text
    answers = {"One.\n\n", "One.\n\nThree.\n\nSo \\boxed{4}."}
    assert r.json()["choices"][0]["message"]["content"] in answers
    assert r.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("effort", ["none", "minimal"])
async def test_no_reasoning_effort_means_greedy(client, effort):
    r = await client.post("/v1/chat/completions", json=chat(reasoning_effort=effort))
    assert r.status_code == 200 and r.headers["x-reasoning-strategy"] == "greedy"


async def test_a_temperature_0_search_is_seeded_from_the_request(client, engine):
    def search_seeds() -> list[int | None]:
        return [p.seed for _, p in engine.calls if p.temperature > 0]

    answers, seeds = [], []
    for _ in range(2):
        engine.calls.clear()
        r = await client.post("/v1/chat/completions", json=chat(
            temperature=0, reasoning={"strategy": "auto"}))
        answers.append(r.json()["choices"][0]["message"]["content"])
        seeds.append(search_seeds())
    assert seeds[0] == seeds[1] and all(s is not None for s in seeds[0])  # probe included
    assert answers[0] == answers[1]
    # another question, another seed; a sampled request without a seed stays unseeded
    engine.calls.clear()
    await client.post("/v1/chat/completions", json=chat(
        temperature=0, max_tokens=60, reasoning={"strategy": "beam"}))
    assert search_seeds()[0] != seeds[0][0]
    engine.calls.clear()
    await client.post("/v1/chat/completions", json=chat(temperature=1,
                                                        reasoning={"strategy": "beam"}))
    assert set(search_seeds()) == {None}


@pytest.mark.parametrize(("solutions", "difficulty", "strategy"), [
    (("The capital of France is Paris.",), 0.0, "greedy"),  # was 1.0 (no number) and mcts
    (("The capital of France is Paris.", "It is Lyon."), 1.0, "mcts"),
])
async def test_auto_routes_free_text_by_how_much_the_samples_disagree(solutions, difficulty,
                                                                      strategy):
    engine = TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=solutions)
    app = create_app(Settings(max_n=4, default_strategy="auto", search_verifiers={"logic": 1},
                              difficulty_estimators=["probe"],
                              difficulty_config={"probe": {"samples": 2}}), engine)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://test") as client:
        r = await client.post("/v1/chat/completions", json=chat(reasoning={"simulations": 2}))
    assert r.json()["reasoning"]["difficulty_estimator"] == "probe"
    assert r.json()["reasoning"]["difficulty"] == difficulty
    assert r.headers["x-reasoning-strategy"] == strategy


@pytest.mark.parametrize("settings", [{"reasoning_parser": "think"}])
@pytest.mark.parametrize("engine", [TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=THINKING)])
async def test_a_thinking_model_answers_in_content_and_thinks_in_reasoning(client):
    body = (await client.post("/v1/chat/completions", json=chat(temperature=0))).json()
    message = body["choices"][0]["message"]
    assert message["content"] == "So \\boxed{3}."
    assert message["reasoning"] == message["reasoning_content"] == "\nOne.\n\nTwo.\n"
    # streamed: increments of each, which add up to the same
    r = await client.post("/v1/chat/completions", json=chat(temperature=0, stream=True))
    deltas = [c["choices"][0]["delta"] for c in events(r.text) if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "So \\boxed{3}."
    assert "".join(d.get("reasoning") or "" for d in deltas) == "\nOne.\n\nTwo.\n"
    # a search: the answer's thinking and content, split the same way
    body = (await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": "best_of_n", "n_candidates": 2}))).json()
    message = body["choices"][0]["message"]
    assert message["content"].startswith("So \\boxed{") and "One." in message["reasoning"]


@pytest.mark.parametrize("settings", [{"reasoning_parser": "think"}])
@pytest.mark.parametrize("engine", [TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=THINKING)])
@pytest.mark.parametrize("strategy", ["beam", "mcts", "best_of_n"])
async def test_a_thinking_models_search_branches_over_its_thinking_only(client, engine,
                                                                       strategy):
    engine.calls.clear()
    r = await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": strategy, "step_delimiter": "\n\n", "seed": 1}))
    steps = [s["text"] for s in r.json()["reasoning"]["steps"]]
    assert steps[0] == "<think>\nOne."
    assert steps[-1] in ("Two.\n</think>\n\nSo \\boxed{3}.", "Four.\n</think>\n\nSo \\boxed{4}.")
    end = engine.encode("</think>")[0]
    prompt = engine.encode(PROMPT)
    # no step was sampled after the thinking ended: the answer came in one greedy request
    assert not any(end in ids[len(prompt):] for ids, params in engine.calls
                   if params.temperature > 0)


@pytest.mark.parametrize("settings", [{"reasoning_parser": "think"}])
@pytest.mark.parametrize("engine", [TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=THINKING)])
async def test_a_streamed_search_sends_reasoning_a_client_can_append(client):
    r = await client.post("/v1/chat/completions", json=chat(stream=True, reasoning={
        "strategy": "beam", "step_delimiter": "\n\n"}))
    deltas = [c["choices"][0]["delta"] for c in events(r.text) if c["choices"]]
    reasoning = "".join(d.get("reasoning") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert content.startswith("So \\boxed{") and "</think>" not in reasoning
    # appended, the deltas read as the paths the search tried, each once: a path that extends
    # the last one sends only what is new, another one starts after a blank line
    restarts = sum(d.get("reasoning", "").startswith("\n\n\nOne.") for d in deltas)
    assert reasoning.startswith("\nOne.") and reasoning.count("One.") == 1 + restarts


@pytest.mark.parametrize("settings", [{"reasoning_parser": "think"}])
@pytest.mark.parametrize("engine", [TokenEngine(prompt=PROMPT, vocab=VOCAB, solutions=THINKING)])
async def test_a_thinking_models_response_has_its_thinking_as_a_reasoning_item(client):
    ask = {"model": "demo", "input": "What is 1 plus 2?", "max_output_tokens": 64,
           "temperature": 0}
    body = (await client.post("/v1/responses", json=ask)).json()
    reasoning, message = body["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "\nOne.\n\nTwo.\n"}]
    assert message["content"][0]["text"] == "So \\boxed{3}."
    r = await client.post("/v1/responses", json={**ask, "stream": True})
    streamed = [e for e in events(r.text)]
    thinking = "".join(e["delta"] for e in streamed
                       if e["type"] == "response.reasoning_text.delta")
    answer = "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta")
    assert (thinking, answer) == ("\nOne.\n\nTwo.\n", "So \\boxed{3}.")
    assert streamed[-1]["response"]["output"] == [
        {**reasoning, "id": streamed[-1]["response"]["output"][0]["id"]},
        {**message, "id": streamed[-1]["response"]["output"][1]["id"]}]


def test_increments_extend_or_restart_after_a_blank_line():
    inc = Increments()
    assert inc.delta("a\nb") == "a\nb"
    assert inc.delta("a\nb\nc") == "\nc"
    assert inc.delta("a\nx") == "\n\na\nx"
    assert inc.delta("a\nx") == ""


@pytest.mark.parametrize(("text", "opened", "split"), [
    ("<think>\nhm\n</think>\n\nYes.", False, ("\nhm\n", "Yes.")),
    ("hm</think>\n\nYes.", True, ("hm", "Yes.")),  # an R1 template opened it in the prompt
    ("Yes.", False, (None, "Yes.")),  # no thinking at all
    ("<think>\nhm, cut off", False, ("\nhm, cut off", "")),
])
def test_thinking_is_split_whole_and_streamed_alike(text, opened, split):
    assert split_thinking(text, opened) == split
    for size in (1, 2, 3, 7):
        stream = ThinkingStream(opened)
        pieces = [stream.feed(text[i:i + size]) for i in range(0, len(text), size)]
        pieces.append(stream.close())
        assert ("".join(t for t, _ in pieces), "".join(a for _, a in pieces)) == \
            (split[0] or "", split[1])
