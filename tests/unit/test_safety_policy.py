"""The safety policy per API key and per `user`, on every answer (greedy, search, streamed), in the
safety verifier, and reloaded from its file without a restart."""

from __future__ import annotations

import json
import time

import pytest
import regex

from engine.protocol import Choice, GenerationOutput
from server.safety import AnswerFilter
from server.settings import Settings
from tests.fakes import FakeEngine
from tests.search_fakes import StepEngine
from verifiers.builtin.safety import (MATCH_TIMEOUT_S, SLOW_POLICY_REASON, Rule, SafetyPolicy,
                                      StaticPolicy, load_policy)

PROMPT = "Compute: 2+3*4\n"
SCRIPT = {(): ["3*4=12"], ("3*4=12",): ["2+12=14"], ("3*4=12", "2+12=14"): ["Answer: 14"]}
KEYS = {"acme": "acme-key", "globex": "globex-key"}
POLICY = {
    "blocked": [{"pattern": r"\bforbidden\b", "reason": "house rule"}],
    "keys": {"acme": {"blocked": [r"2\+12"]}},
    "users": {"kid": {"blocked": [{"pattern": "Answer: 14", "reason": "no spoilers"}]}},
}


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(POLICY))  # JSON is YAML
    return path


@pytest.fixture
def engine() -> StepEngine:
    return StepEngine(prompt=PROMPT, script=SCRIPT)


@pytest.fixture
def settings(policy_file) -> Settings:
    return Settings(api_keys=KEYS, admin_api_key="root", default_strategy="greedy",
                    search_verifiers={"logic": 1.0}, safety_policy_file=str(policy_file))


def ask(client, key: str, reasoning: dict | None = None, **extra):
    body = {"model": "demo", "prompt": PROMPT, "max_tokens": 64,
            "reasoning": reasoning or {"strategy": "greedy"}, **extra}
    return client.post("/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def test_a_policy_names_the_first_rule_that_matches():
    policy = SafetyPolicy.from_dict(POLICY)
    assert policy.check("this is FORBIDDEN") == "house rule"
    assert policy.check("2+12=14") is None
    assert policy.check("2+12=14", key="acme") == "blocked by the policy of API key 'acme'"
    assert policy.check("Answer: 14", key="globex", user="kid") == "no spoilers"
    assert policy.check("Answer: 14", key="globex", user="adult") is None


def test_a_rule_that_backtracks_without_end_blocks_the_text_in_time():
    # `re` spends ~5 CPU seconds on this text (1.6 times more for each 'a' more); `regex` stops
    # at the limit (in the process's CPU time, which it counts)
    policy = SafetyPolicy.from_dict({"blocked": [r"\bforbidden\b", r"(a|aa)+b"]})
    started = time.process_time()
    assert policy.check("a" * 34 + "!") == SLOW_POLICY_REASON
    assert time.process_time() - started < MATCH_TIMEOUT_S + 0.25
    assert policy.check("this is forbidden") == "blocked by the safety policy"


@pytest.mark.parametrize(("data", "where"), [
    ({"blocked": "x"}, "`blocked` is a list"),
    ({"blocked": ["("]}, "`blocked[0]` is not a regular expression"),
    ({"keys": ["acme"]}, "`keys` maps names"),
    ({"users": {"kid": {"blocked": [3]}}}, "`users.kid[0]`"),
])
def test_a_bad_policy_says_where(data, where):
    with pytest.raises(ValueError, match=where.replace("[", r"\[").replace("]", r"\]")):
        SafetyPolicy.from_dict(data)


async def test_a_greedy_answer_is_screened_by_the_callers_key(client):
    # the scripted model's greedy answer is the whole path, "3*4=12\n2+12=14\nAnswer: 14"
    allowed = (await ask(client, "globex-key")).json()["choices"][0]
    assert allowed["text"].endswith("Answer: 14") and "content_filter_reason" not in allowed
    blocked = (await ask(client, "acme-key")).json()["choices"][0]
    assert blocked == {"index": 0, "text": "", "logprobs": None,
                       "finish_reason": "content_filter", "prompt_logprobs": None,
                       "content_filter_reason": "blocked by the policy of API key 'acme'"}


async def test_the_user_field_selects_its_policy_for_chat_too(client):
    body = {"model": "demo", "messages": [{"role": "user", "content": PROMPT.strip()}],
            "max_tokens": 64, "user": "kid", "reasoning": {"strategy": "greedy"}}
    r = await client.post("/v1/chat/completions", json=body,
                          headers={"Authorization": "Bearer globex-key"})
    choice = r.json()["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"],
            choice["content_filter_reason"]) == ("", "content_filter", "no spoilers")


@pytest.mark.parametrize("strategy", ["beam", "best_of_n", "mcts"])
async def test_search_answers_are_screened(client, strategy):
    r = await ask(client, "globex-key", {"strategy": strategy}, user="kid")
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("", "content_filter")


async def test_the_safety_verifier_prunes_by_the_callers_policy(client):
    r = await ask(client, "acme-key", {"strategy": "beam", "verifiers": {"safety": 1}})
    # every path passes through the step acme's policy blocks: each scores 0
    assert r.json()["reasoning"]["verifier_scores"] == {"safety": 0.0}
    r = await ask(client, "globex-key", {"strategy": "beam", "verifiers": {"safety": 1}})
    assert r.json()["reasoning"]["verifier_scores"] == {"safety": 1.0}


@pytest.mark.parametrize("engine", [FakeEngine()])  # one token per delta
async def test_a_stream_is_cut_at_the_delta_that_completes_a_match(client, app, engine):
    app.state.safety_policy.policy = SafetyPolicy.from_dict({"blocked": ["Answer"]})
    async with client.stream("POST", "/v1/completions", headers={
            "Authorization": "Bearer globex-key"}, json={
            "model": "demo", "prompt": "x", "max_tokens": 32, "stream": True,
            "reasoning": {"strategy": "greedy"}}) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in [line async for line in r.aiter_lines()]
                  if line.startswith("data: {")]
    choices = [e["choices"][0] for e in events if e["choices"]]
    # one token per delta: "1+1=2\nAnswe" went out; the "r" that completed "Answer" did not
    assert "".join(c["text"] for c in choices) == "1+1=2\nAnswe"
    assert choices[-1]["finish_reason"] == "content_filter"
    assert choices[-1]["content_filter_reason"] == "blocked by the safety policy"
    assert engine.aborted  # the rest was never generated


async def test_the_admin_reloads_the_policy_and_a_bad_file_changes_nothing(client, policy_file):
    admin = {"Authorization": "Bearer root"}
    assert (await ask(client, "globex-key")).json()["choices"][0]["finish_reason"] == "stop"
    policy_file.write_text("blocked: ['Answer']\n")
    r = await client.post("/v1/reload_safety_policy", headers=admin)
    assert r.status_code == 200 and r.json()["rules"] == 1
    assert (await ask(client, "globex-key")).json()["choices"][0]["finish_reason"] == \
        "content_filter"
    policy_file.write_text("blocked: ['(']\n")
    r = await client.post("/v1/reload_safety_policy", headers=admin)
    assert r.status_code == 400 and "unchanged" in r.json()["error"]["message"]
    assert (await ask(client, "globex-key")).json()["choices"][0]["finish_reason"] == \
        "content_filter"
    tenant = await client.post("/v1/reload_safety_policy",
                               headers={"Authorization": "Bearer acme-key"})
    assert tenant.status_code == 401


def test_a_policy_file_that_does_not_parse_stops_start_up(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("blocked: [")
    with pytest.raises(ValueError, match="cannot read the safety policy"):
        load_policy(bad)


def blocking(*patterns: str) -> SafetyPolicy:
    return SafetyPolicy.from_dict({"blocked": list(patterns)})


async def screened(policy: SafetyPolicy, deltas: list[str], window: int) -> tuple[str, Choice]:
    """What a stream of `deltas` sends through the filter: its text and its last choice."""
    async def outputs():
        for delta in deltas:
            yield GenerationOutput("r", (), [Choice(index=0, text=delta, token_ids=())], False)

    screen = AnswerFilter(StaticPolicy(policy), window)
    sent = [c for out in [o async for o in screen.screen(outputs(), 1, None)] for c in out.choices]
    return "".join(c.text for c in sent), sent[-1]


async def test_a_match_spanning_deltas_is_caught_and_context_before_the_window_counts():
    text = "filler " * 30 + "the password is swordfish, and more"
    deltas = [text[i:i + 3] for i in range(0, len(text), 3)]
    sent, last = await screened(blocking(r"password is swordfish"), deltas, window=20)
    assert text.startswith(sent) and sent.endswith("is swordfis")  # "h, " never went out
    assert last.finish_reason == "content_filter"
    # one character a delta, the window starting at the 's': the 'x' before it still counts
    text = "filler " * 10 + "a xswordfish."
    sent, last = await screened(blocking(r"\bswordfish\b"), list(text), window=9)
    assert (sent, last.finish_reason) == (text, None)
    sent, last = await screened(blocking(r"\bswordfish\b"),
                                list("filler " * 10 + "a swordfish."), window=9)
    assert sent.endswith("a swordfis") and last.finish_reason == "content_filter"


class CountingPattern:
    """A rule's pattern that counts the characters each search is given and may scan."""

    def __init__(self, pattern: str) -> None:
        self.inner, self.pattern = regex.compile(pattern), pattern
        self.given, self.scanned = [], []

    def search(self, text, pos=0, endpos=None, timeout=None):
        self.given.append(len(text))
        self.scanned.append(len(text) - pos)
        return self.inner.search(text, pos, timeout=timeout)


async def test_each_delta_scans_the_window_not_the_whole_text():
    counting = CountingPattern("swordfish")
    deltas = ["word "] * 2000  # 10,000 characters
    sent, last = await screened(SafetyPolicy(everyone=(Rule(counting, "no fish"),)), deltas,
                                window=64)
    assert sent == "word " * 2000 and last.finish_reason is None
    assert len(counting.scanned) == 2000 and max(counting.scanned) <= 64 + 5
    assert max(counting.given) <= 2 * 64 + 5  # the text before is not kept either


async def test_a_rule_that_backtracks_without_end_ends_the_stream_in_time():
    started = time.process_time()
    sent, last = await screened(blocking(r"(a|aa)+b"), ["a" * 16, "a" * 24], window=1024)
    assert time.process_time() - started < MATCH_TIMEOUT_S + 0.25
    assert (sent, last.finish_reason, last.stop_reason) == ("a" * 16, "content_filter",
                                                            SLOW_POLICY_REASON)
