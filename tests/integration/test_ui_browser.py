"""The /ui page in a real headless Chromium (tests/browser.py) against the session's server:
a beam search's tree drawn live, the chosen path, the JSON download reopened, closing the page
aborting the search in the engine, and markup in a prompt or a step shown as text."""

from __future__ import annotations

import json
import time

import pytest
from selenium.webdriver.common.by import By

from tests.browser import chromium, drawn_nodes, fill, open_page, status

pytestmark = pytest.mark.slow

COUNTDOWN = "Numbers: 3 7 25 50 Target: 353"
MARKUP = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    with chromium(downloads=str(downloads)) as driver:
        yield driver


def engine_busy(server) -> float:
    return (server.metric("vllm:num_requests_running")
            + server.metric("vllm:num_requests_waiting"))


def wait_for(predicate, timeout_s: float, what: str, poll=None):
    deadline = time.monotonic() + timeout_s
    while True:
        if poll is not None:
            poll()
        if predicate():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_done(browser, timeout_s: float = 240, poll=None) -> None:
    def done() -> bool:
        text = status(browser)
        assert not text.startswith("error"), text
        return text == "done"
    wait_for(done, timeout_s, "the search to finish", poll)


def path_to(trace: dict[int, dict], end: int) -> list[int]:
    ids = []
    while end is not None:
        ids.insert(0, end)
        end = trace[end]["parent"]
    return ids


def test_a_beam_search_draws_its_tree_live_and_its_chosen_path(server, browser, downloads):
    open_page(browser, server.url)
    fill(browser, prompt=COUNTDOWN, strategy="beam", seed=1, budget=3000, max_tokens=64,
         verifiers={"logic": 1, "syntax": 1, "prm": 1})
    browser.find_element(By.ID, "go").click()
    seen: set[int] = set()
    wait_done(browser, poll=lambda: seen.add(len(drawn_nodes(browser))))
    assert len(seen - {0, 1}) >= 2, seen  # the tree grew while the search ran

    reasoning = browser.execute_script("return run.reasoning")
    assert reasoning["strategy"] == "beam"
    nodes = drawn_nodes(browser)
    assert len(nodes) == len(reasoning["trace"]) > 3
    trace = {n["id"]: n for n in reasoning["trace"]}
    chosen = sorted(int(n.get_attribute("data-id")) for n in nodes
                    if n.get_attribute("data-chosen") == "true")
    path = path_to(trace, reasoning["answer_nodes"][0])
    assert chosen == sorted(path)
    steps = [trace[i]["text"] for i in path[1:]]
    assert steps == [s["text"] for s in reasoning["steps"]]
    answer = browser.find_element(By.ID, "answer").get_attribute("textContent")
    assert [line.strip() for line in answer.strip().split("\n")] == [s.strip() for s in steps]
    facts = {e.get_attribute("data-fact"): e.text
             for e in browser.find_elements(By.CSS_SELECTOR, "#facts dd")}
    assert facts["strategy"] == "beam" and int(facts["tokens"]) > 0
    assert int(facts["engine calls"]) == reasoning["engine_calls"] > 0
    assert 0 <= float(facts["confidence"].split()[0]) <= 1

    # the finished tree downloads as JSON and reopens as it was drawn
    browser.find_element(By.ID, "download").click()
    saved_path = downloads / "deliberate-search.json"
    wait_for(saved_path.exists, 10, "the download")
    saved = json.loads(saved_path.read_text())
    assert len(saved["trace"]) == len(nodes) and saved["answer"] == answer
    open_page(browser, server.url)
    browser.find_element(By.ID, "open").send_keys(str(saved_path))
    wait_for(lambda: status(browser).startswith("opened"), 10, "the saved tree")
    reopened = drawn_nodes(browser)
    assert len(reopened) == len(nodes)
    assert sorted(int(n.get_attribute("data-id")) for n in reopened
                  if n.get_attribute("data-chosen") == "true") == chosen


def test_closing_the_page_aborts_the_search_in_the_engine(server, browser):
    main = browser.current_window_handle
    browser.switch_to.new_window("tab")
    open_page(browser, server.url)
    # a search that would run for long (as test_disconnect's): no early stop, rollouts
    fill(browser, prompt=COUNTDOWN, strategy="mcts", budget=16000, max_tokens=64,
         extra='{"simulations": 64, "stop_score": 1.0, "evaluation": "rollout"}',
         verifiers={"logic": 1, "syntax": 1, "prm": 1})
    browser.find_element(By.ID, "go").click()
    wait_for(lambda: len(drawn_nodes(browser)) >= 3, 120, "the tree to start")
    wait_for(lambda: engine_busy(server) > 0, 30, "an engine request of the search")
    assert status(browser) == "running"
    browser.close()
    browser.switch_to.window(main)
    # the engine's own gauges: nothing of the search is left running or waiting
    wait_for(lambda: engine_busy(server) == 0, 5, "the engine to be idle")
    time.sleep(1.0)  # and the search starts nothing after that
    assert engine_busy(server) == 0


def test_markup_in_a_prompt_and_a_step_renders_as_text(server, browser, tmp_path):
    open_page(browser, server.url)
    prompt = f"{MARKUP} Compute: 1+2"
    fill(browser, prompt=prompt, strategy="beam", seed=1, budget=600, max_tokens=32,
         verifiers={"logic": 1, "syntax": 1})
    browser.find_element(By.ID, "go").click()
    wait_done(browser)
    assert browser.execute_script("return run.request.messages[0].content") == prompt

    # a step and an answer holding markup: a saved tree, reopened
    root = {"id": 0, "parent": None, "text": "", "token_ids": [], "score": None, "scores": {},
            "visits": 0, "value": None, "final": False}
    step = {**root, "id": 1, "parent": 0, "text": MARKUP, "score": 0.5,
            "scores": {"logic": 0.5}, "final": True}
    saved = tmp_path / "markup.json"
    saved.write_text(json.dumps({
        "deliberate_ui": 1, "answer": MARKUP, "strategy": "beam", "usage": None,
        "request": {"messages": [{"role": "user", "content": MARKUP}]},
        "reasoning": {"strategy": MARKUP, "answer_nodes": [1]}, "trace": [root, step]}))
    browser.find_element(By.ID, "open").send_keys(str(saved))
    wait_for(lambda: status(browser).startswith("opened"), 10, "the saved tree")
    assert browser.find_element(By.ID, "answer").get_attribute("textContent") == MARKUP
    assert browser.find_element(By.ID, "prompt").get_attribute("value") == MARKUP
    titles = [t.get_attribute("textContent")
              for t in browser.find_elements(By.CSS_SELECTOR, "#tree g.node title")]
    assert any(MARKUP in t for t in titles)
    assert browser.find_element(By.CSS_SELECTOR, '#facts dd[data-fact="strategy"]').text == MARKUP
    # nothing of it became an element, and nothing of it ran
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return [...document.scripts].map(s => s.src)") == \
        [f"{server.url}/ui/ui.js"]
    assert browser.execute_script("return window.__xss") is None
