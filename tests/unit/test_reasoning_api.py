"""Routing and search through the HTTP API, on a scripted step engine (no vLLM)."""

from __future__ import annotations

import json

import httpx
import pytest

from search.router import Thresholds, route
from server.settings import Settings
from tests.search_fakes import StepEngine

PROMPT = "Compute: 2+3*4\n"
# The first (greedy) candidate is an arithmetic slip that `logic` rejects.
SCRIPT = {
    (): ["3*4=13", "3*4=12"],
    ("3*4=13",): ["2+13=15"], ("3*4=13", "2+13=15"): ["Answer: 15"],
    ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"],
}
LOGIC = {"verifiers": {"logic": 1}}


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=SCRIPT)


@pytest.fixture
def settings() -> Settings:
    return Settings(max_n=4, max_logprobs=2, max_beam_width=4, max_depth=6,
                    search_verifiers={"logic": 1.0}, difficulty_estimators=["probe"],
                    difficulty_config={"probe": {"samples": 2}})


def chat(**extra) -> dict:
    return {"model": "demo", "messages": [{"role": "user", "content": PROMPT.strip()}],
            "max_tokens": 64, **extra}


def events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.mark.parametrize(("difficulty", "strategy"), [
    (0.0, "greedy"), (0.29, "greedy"), (0.3, "beam"), (0.69, "beam"), (0.7, "mcts"),
    (1.0, "mcts")])
def test_router_maps_difficulty_by_the_thresholds(difficulty, strategy):
    assert route("auto", None, difficulty) == strategy
    assert route(None, None, difficulty, Thresholds(0.3, 0.7)) == strategy


def test_router_effort_and_explicit_strategy():
    assert [route(None, e, None) for e in ("low", "medium", "high")] == \
        ["greedy", "beam", "mcts"]
    assert route("tot", "low", 0.0) == "tot"  # an explicit strategy overrides the effort
    assert route("auto", "high", 0.0) == "mcts"
    with pytest.raises(ValueError):
        Thresholds(0.8, 0.2)


@pytest.mark.parametrize(("effort", "strategy"), [("low", "greedy"), ("medium", "beam"),
                                                  ("high", "mcts")])
async def test_effort_picks_the_strategy_and_says_so(client, effort, strategy):
    r = await client.post("/v1/chat/completions", json=chat(reasoning_effort=effort))
    assert r.status_code == 200, r.text
    assert r.headers["x-reasoning-strategy"] == strategy
    assert r.json()["reasoning"]["strategy"] == strategy


async def test_beam_answers_past_the_slip_greedy_makes(client):
    greedy = (await client.post("/v1/chat/completions", json=chat(
        temperature=0, reasoning={"strategy": "greedy"}))).json()
    assert greedy["choices"][0]["message"]["content"].endswith("Answer: 15")
    r = await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "beam",
                                                                        **LOGIC}))
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "3*4=12\n2+12=14\nAnswer: 14"
    assert body["choices"][0]["finish_reason"] == "stop"
    reasoning = body["reasoning"]
    assert reasoning["score"] == 1.0 and reasoning["verifier_scores"] == {"logic": 1.0}
    assert [s["text"] for s in reasoning["steps"]] == ["3*4=12", "2+12=14", "Answer: 14"]
    assert reasoning["nodes"] >= 4 and reasoning["engine_calls"] >= 3


@pytest.mark.parametrize("evaluation", ["scorer", "rollout"])
async def test_usage_counts_every_generated_token(client, engine, evaluation):
    body = (await client.post("/v1/completions", json={
        "model": "demo", "prompt": PROMPT, "max_tokens": 64,
        "reasoning": {"strategy": "mcts", "evaluation": evaluation, **LOGIC}})).json()
    answer = body["choices"][0]["text"]
    usage = body["usage"]
    # the scripted engine spends one token per character of every sample it returns, and one
    # for the delimiter it stops at or the EOS that ends it
    sampled = sum(len(s) + 1 for prompt, params in engine.calls
                  for s in _samples(engine, prompt, params))
    assert usage["completion_tokens"] == sampled > len(answer)
    # The answer's tokens are what the model wrote for it: its text, delimiters included,
    # and its EOS, however the steps were sampled.
    answer_tokens = usage["completion_tokens"] - \
        usage["completion_tokens_details"]["reasoning_tokens"]
    assert answer_tokens == len(answer) + 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_search_branches_sample_at_the_request_or_the_search_temperature(client, engine):
    for temperature, expected in ((0, 0.7), (1.3, 1.3)):
        engine.calls.clear()
        r = await client.post("/v1/chat/completions", json=chat(
            temperature=temperature, reasoning={"strategy": "beam", **LOGIC}))
        assert r.status_code == 200, r.text
        sampled = [params for _, params in engine.calls if params.n > 1]
        assert sampled and {p.temperature for p in sampled} == {expected}


async def test_best_of_n_selection_weighted_vote_goes_with_the_answer_most_paths_support(
        client, engine):
    # Three samples, all valid to `logic` (score 1): one says 5, two say 14.
    engine.script = {(): ["5*1=5", "3*4=12", "3*4=12"], ("5*1=5",): ["Answer: 5"],
                     ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"]}
    answers = {}
    for selection in ("best", "weighted_vote"):
        r = await client.post("/v1/chat/completions", json=chat(reasoning={
            "strategy": "best_of_n", "n_candidates": 3, "selection": selection, **LOGIC}))
        assert r.status_code == 200, r.text
        answers[selection] = r.json()["choices"][0]["message"]["content"].split("\n")[-1]
    assert answers == {"best": "Answer: 5", "weighted_vote": "Answer: 14"}


@pytest.mark.parametrize("strategy, default", [("beam", 3), ("mcts", 2), ("tot", 3)])
async def test_n_candidates_is_the_branching_of_the_step_searches(client, engine, strategy,
                                                                  default):
    for n_candidates, expected in ((None, default), (4, 4)):
        engine.calls.clear()
        r = await client.post("/v1/chat/completions", json=chat(reasoning={
            "strategy": strategy, "n_candidates": n_candidates, **LOGIC}))
        assert r.status_code == 200, r.text
        # every step expansion asks for `expected` samples (finishing a path asks for one)
        assert {params.n for _, params in engine.calls if params.n > 1} == {expected}


async def test_mcts_evaluates_by_rollout_unless_the_request_says_scorer(client, engine):
    def rollouts() -> int:  # greedy requests without a stop: completions to the end
        return sum(1 for _, params in engine.calls if params.temperature == 0 and not params.stop)

    counts = {}
    for evaluation in (None, "scorer", "rollout"):
        engine.calls.clear()
        r = await client.post("/v1/chat/completions", json=chat(reasoning={
            "strategy": "mcts", "evaluation": evaluation, **LOGIC}))
        assert r.status_code == 200, r.text
        counts[evaluation] = rollouts()
    # scorer: only the chosen path is finished; rollout: every new node is
    assert counts[None] == counts["rollout"] > counts["scorer"]


@pytest.mark.parametrize("settings, stopped_by", [
    (Settings(search_verifiers={"logic": 1.0}), "stop_score"),  # the default bar, 0.9
    (Settings(search_verifiers={"logic": 1.0}, search_stop_score=None), None),
])
async def test_a_confident_finished_path_ends_the_search_early(client, engine, stopped_by):
    r = await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": "mcts", "simulations": 30, **LOGIC}))
    assert r.status_code == 200, r.text
    assert r.json()["reasoning"]["stopped_by"] == stopped_by
    assert r.json()["choices"][0]["message"]["content"].endswith("Answer: 14")
    # the request's own bar wins over the server's
    r = await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": "mcts", "simulations": 30, "stop_score": 0.5, **LOGIC}))
    assert r.json()["reasoning"]["stopped_by"] == "stop_score"


def _samples(engine: StepEngine, prompt: str, params) -> list[str]:
    steps = engine.steps_of(prompt)
    return [engine.continuation(steps, i, params)[0] for i in range(params.n)]


async def test_auto_routes_by_the_probe_difficulty(client, engine):
    # Two probe samples that disagree (12 vs 13): the highest difficulty, so mcts.
    r = await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "auto"}))
    assert r.headers["x-reasoning-strategy"] == "mcts"
    assert r.json()["reasoning"]["difficulty"] == 1.0
    assert r.json()["reasoning"]["difficulty_estimator"] == "probe"
    # One path only: the samples agree, difficulty 0, so greedy.
    engine.script = {(): ["3*4=12"], ("3*4=12",): ["2+12=14"],
                     ("3*4=12", "2+12=14"): ["Answer: 14"]}
    r = await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "auto"}))
    assert r.headers["x-reasoning-strategy"] == "greedy"
    body = r.json()
    assert body["reasoning"]["difficulty"] == 0.0
    # the probe's samples are reasoning tokens of this request
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


async def test_the_default_strategy_setting_applies_when_a_request_names_none(client):
    r = await client.post("/v1/chat/completions", json=chat())
    assert r.headers["x-reasoning-strategy"] == "mcts"  # default "auto": routed by the probe


async def test_an_effort_wins_over_the_default_strategy(settings, engine):
    from server.app import create_app

    settings = settings.model_copy(update={"default_strategy": "greedy"})
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://test") as client:
        r = await client.post("/v1/chat/completions", json=chat(reasoning_effort="medium"))
        assert r.headers["x-reasoning-strategy"] == "beam"
        r = await client.post("/v1/chat/completions", json=chat())
        assert r.headers["x-reasoning-strategy"] == "greedy"


def test_the_default_strategy_must_be_a_strategy():
    with pytest.raises(ValueError, match="default_strategy"):
        Settings(default_strategy="dfs")


@pytest.mark.parametrize(("reasoning", "param"), [
    ({"strategy": "dfs"}, "reasoning.strategy"),
    ({"strategy": "beam", "verifiers": {"oracle": 1}}, "reasoning.verifiers"),
    ({"strategy": "beam", "beam_width": 0}, "reasoning.beam_width"),
    ({"strategy": "beam", "beam_width": 5}, "reasoning.beam_width"),
    ({"strategy": "mcts", "max_depth": 7}, "reasoning.max_depth"),
    ({"strategy": "mcts", "budget_tokens": -5}, "reasoning.budget_tokens"),
    ({"strategy": "mcts", "timeout_s": 0}, "reasoning.timeout_s"),
    ({"strategy": "mcts", "max_nodes": 10**9}, "reasoning.max_nodes"),
    ({"strategy": "beam", "beam_widht": 2}, "reasoning.beam_widht"),
    ({"strategy": "best_of_n", "selection": "vote"}, "reasoning.selection"),
    ({"strategy": "mcts", "evaluation": "playout"}, "reasoning.evaluation"),
    ({"strategy": "mcts", "stop_score": 0}, "reasoning.stop_score"),
    ({"strategy": "mcts", "stop_score": 1.5}, "reasoning.stop_score"),
    ({"strategy": "beam", "n_candidates": 0}, "reasoning.n_candidates"),
])
async def test_bad_reasoning_options_are_400_naming_the_parameter(client, reasoning, param):
    r = await client.post("/v1/chat/completions", json=chat(reasoning=reasoning))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_single_pass_fields_route_auto_to_greedy_and_refuse_a_search(client):
    r = await client.post("/v1/chat/completions", json=chat(logprobs=True,
                                                            reasoning={"strategy": "auto"}))
    assert r.status_code == 200 and r.headers["x-reasoning-strategy"] == "greedy"
    r = await client.post("/v1/chat/completions", json=chat(logprobs=True,
                                                            reasoning={"strategy": "beam"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "logprobs"
    for field, value in (("logit_bias", {"5": -100}), ("presence_penalty", 0.5),
                         ("frequency_penalty", -0.5)):
        r = await client.post("/v1/chat/completions", json=chat(**{field: value},
                                                                reasoning={"strategy": "mcts"}))
        assert r.status_code == 400 and r.json()["error"]["param"] == field, r.text
    r = await client.post("/v1/completions", json={"model": "demo", "prompt": [1, 2, 3],
                                                   "reasoning_effort": "high"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


async def test_n_returns_distinct_answers(client):
    body = (await client.post("/v1/chat/completions", json=chat(
        n=2, reasoning={"strategy": "best_of_n", "n_candidates": 2, **LOGIC}))).json()
    texts = [c["message"]["content"] for c in body["choices"]]
    assert texts[0].endswith("Answer: 14") and texts[1].endswith("Answer: 15")
    assert body["choices"][0]["index"] == 0 and body["choices"][1]["index"] == 1


async def test_a_node_budget_stops_the_search_and_still_answers(client):
    body = (await client.post("/v1/chat/completions", json=chat(
        reasoning={"strategy": "mcts", "max_nodes": 2, "simulations": 50, **LOGIC}))).json()
    assert body["reasoning"]["stopped_by"] == "max_nodes"
    assert body["choices"][0]["message"]["content"].startswith("3*4=")


async def test_return_trace_returns_the_tree(client):
    body = (await client.post("/v1/chat/completions", json=chat(
        reasoning={"strategy": "mcts", "return_trace": True, **LOGIC}))).json()
    trace = body["reasoning"]["trace"]
    assert trace[0]["parent"] is None and trace[0]["visits"] >= 1
    assert {"3*4=12", "3*4=13"} <= {n["text"] for n in trace}
    assert next(n for n in trace if n["text"] == "3*4=13")["score"] == 0.0


async def test_streaming_a_search_sends_progress_then_the_answer(client):
    r = await client.post("/v1/chat/completions", json=chat(
        stream=True, stream_options={"include_usage": True},
        reasoning={"strategy": "beam", **LOGIC}))
    assert r.headers["x-reasoning-strategy"] == "beam"
    chunks = events(r.text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    progress = [d["reasoning_content"] for d in deltas if d.get("reasoning_content")]
    assert [d["reasoning"] for d in deltas if d.get("reasoning")] == progress  # vLLM's name
    content = [d["content"] for d in deltas if d.get("content")]
    # Increments a client appends: each best path once, a switch of branch after a blank line.
    paths = "".join(progress).split("\n\n")
    assert paths[-1] == "3*4=12\n2+12=14\nAnswer: 14"
    assert all(len(p.split("\n")) <= 3 for p in paths)
    assert content == ["3*4=12\n2+12=14\nAnswer: 14"]
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
    assert last["reasoning"]["strategy"] == "beam"


async def test_search_metrics(client):
    await client.post("/v1/chat/completions", json=chat(reasoning={"strategy": "tot", **LOGIC}))
    text = (await client.get("/metrics")).text
    assert 'deliberate_reasoning_requests_total{strategy="tot"}' in text
    assert 'deliberate_search_nodes_count{strategy="tot"}' in text
    assert 'deliberate_reasoning_tokens_total{kind="reasoning"}' in text
    assert "deliberate_difficulty_bucket" in text


class CostlyJudge:
    """A costly plugin (like the orm) that records the last step of each item it judges."""

    name = "judge"
    cost = 2

    def __init__(self):
        self.seen = []

    async def score(self, items, context):
        self.seen += [item.step for item in items]
        return [0.9] * len(items)


@pytest.mark.parametrize("gate, judges_the_slip", [(1e-3, False), (0, True)])
async def test_a_search_asks_costly_verifiers_only_about_steps_the_cheap_ones_allow(
        app, client, gate, judges_the_slip):
    app.state.settings.search_verifier_gate = gate  # the object the reasoning service reads
    judge = CostlyJudge()
    app.state.verify_service.registry.verifiers["judge"] = judge
    r = await client.post("/v1/chat/completions", json=chat(reasoning={
        "strategy": "beam", "verifiers": {"logic": 1, "judge": 1}}))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].endswith("Answer: 14")
    assert "3*4=12" in judge.seen and ("3*4=13" in judge.seen) == judges_the_slip
    # /v1/verify reports every verifier's own score: no gate there
    judge.seen.clear()
    r = await client.post("/v1/verify", json={"prompt": PROMPT, "completion": "3*4=13",
                                              "verifiers": {"logic": 1, "judge": 1}})
    assert r.json()["steps"][0]["scores"] == {"logic": 0.0, "judge": 0.9}


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
async def test_stream_trace_sends_the_tree_as_it_grows(client, strategy):
    options = {"strategy": strategy, **LOGIC, "return_trace": True}
    r = await client.post("/v1/chat/completions", json=chat(
        stream=True, reasoning={**options, "stream_trace": True}))
    chunks = events(r.text)
    updates = [c["reasoning_trace"] for c in chunks if "reasoning_trace" in c]
    assert len(updates) >= 2  # sent as the tree grows, not once at the end
    assert all(c["choices"] == [] for c in chunks if "reasoning_trace" in c)
    # replaying the updates (a node's latest entry wins) gives the final tree's nodes
    tree: dict[int, dict] = {}
    for nodes in updates:
        tree.update({n["id"]: n for n in nodes})
    reasoning = chunks[-1]["reasoning"]
    final = {n["id"]: n for n in reasoning["trace"]}
    assert tree.keys() == final.keys()
    assert {i: n["text"] for i, n in tree.items()} == {i: n["text"] for i, n in final.items()}
    # the answer ends at the node answer_nodes names: its path is the answer's steps
    node, steps = final[reasoning["answer_nodes"][0]], []
    while node["parent"] is not None:
        steps.insert(0, node["text"])
        node = final[node["parent"]]
    assert steps == [s["text"] for s in reasoning["steps"]]
    content = "".join(c["choices"][0]["delta"].get("content") or ""
                      for c in chunks if c["choices"])
    assert content == "\n".join(steps)
    # watching does not change what the search finds
    plain = (await client.post("/v1/chat/completions", json=chat(reasoning=options))).json()
    assert plain["choices"][0]["message"]["content"] == content
    assert plain["reasoning"]["trace"] == reasoning["trace"]


async def test_without_stream_trace_no_trace_chunks_are_sent(client):
    r = await client.post("/v1/chat/completions", json=chat(
        stream=True, reasoning={"strategy": "beam", **LOGIC}))
    assert not any("reasoning_trace" in c for c in events(r.text))


def test_watching_a_search_leaves_its_seed_as_it_is():
    from server.openai.protocol import ChatCompletionRequest
    from server.reasoning.service import request_seed

    body = chat(reasoning={"strategy": "mcts", "return_trace": True})
    watched = chat(reasoning={"strategy": "mcts", "return_trace": True, "stream_trace": True})
    seeds = [request_seed(ChatCompletionRequest.model_validate(b), [1, 2, 3])
             for b in (body, watched)]
    assert seeds[0] is not None and seeds[0] == seeds[1]
