"""Every bad input gets its status and OpenAI-shaped error from the real engine, which keeps
serving afterwards."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow

GOOD = {"model": "demo", "prompt": "Compute: 2+3\n", "max_tokens": 16, "temperature": 0}
CHAT = {"model": "demo", "messages": [{"role": "user", "content": "Compute: 2+3"}],
        "max_tokens": 16}

BAD = [
    # (path, body, status, param)
    ("/v1/completions", {**GOOD, "model": "nope"}, 404, "model"),
    ("/v1/completions", {**GOOD, "prompt": "1+" * 300}, 400, "prompt"),  # 600 > 512 tokens
    ("/v1/completions", {**GOOD, "max_tokens": 600}, 400, "max_tokens"),
    ("/v1/completions", {**GOOD, "prompt": ""}, 400, "prompt"),
    ("/v1/completions", {**GOOD, "prompt": [5, 6, 100000]}, 400, None),  # not in the vocabulary
    ("/v1/completions", {**GOOD, "prompt": [5, 6, 100000], "stream": True}, 400, None),
    ("/v1/completions", {**GOOD, "n": 0}, 400, "n"),
    ("/v1/completions", {**GOOD, "n": 1000}, 400, "n"),
    ("/v1/completions", {**GOOD, "n": 2}, 400, "n"),  # greedy
    ("/v1/completions", {**GOOD, "temperature": -1}, 400, "temperature"),
    ("/v1/completions", {**GOOD, "top_p": 0}, 400, "top_p"),
    ("/v1/completions", {**GOOD, "logprobs": 50}, 400, "logprobs"),
    ("/v1/completions", {**GOOD, "max_tokens": 0}, 400, "max_tokens"),
    ("/v1/completions", {**GOOD, "seed": "x"}, 400, "seed"),
    ("/v1/completions", {**GOOD, "stop": ["", "x"]}, 400, "stop"),  # found by the fuzzer: a 500
    ("/v1/completions", {**GOOD, "prompt": [5, -3]}, 400, None),
    ("/v1/chat/completions", {**CHAT, "messages": []}, 400, "messages"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"content": "hi"}]}, 400, "messages.0.role"),
    ("/v1/chat/completions", {**CHAT, "max_completion_tokens": 10**6}, 400,
     "max_completion_tokens"),
    ("/v1/chat/completions", {**CHAT, "logprobs": True, "top_logprobs": 21}, 400,
     "top_logprobs"),
]


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def assert_serving(http) -> None:
    assert http.get("/health").status_code == 200
    r = http.post("/v1/completions", json=GOOD)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(("path", "body", "status", "param"), BAD)
def test_bad_request(http, path, body, status, param):
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"] and error["type"]
    assert_serving(http)


@pytest.mark.parametrize("content", [b"{", b"null", b"[]"])
def test_malformed_json(http, content):
    r = http.post("/v1/completions", content=content,
                  headers={"content-type": "application/json"})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert_serving(http)


def test_oversize_body(http):
    r = http.post("/v1/completions", json={**GOOD, "prompt": "x" * (2 * 2**20)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert_serving(http)


def test_unknown_route_and_method(http):
    assert http.get("/v2/anything").json()["error"]["code"] == "not_found"
    assert http.get("/v1/completions").status_code == 405
    assert_serving(http)
