"""The remote engine against scripted vLLM servers (tests/upstream_fakes.py): the wire format,
routing, failover, upstream errors, fleet adapters and health."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from transformers import AutoTokenizer

from engine.protocol import (ContextExceeded, EngineUnavailable, InvalidEngineRequest,
                             SamplingParams, TokenLogprob)
from engine.remote.engine import RemoteEngine, RemoteEngineConfig
from engine.remote.health import HealthChecker
from engine.remote.routing import Replica, choose, rendezvous_order
from engine.remote.wire import completion_body, generation_output
from engine.scope import RequestScope, request_scope
from tests.upstream_fakes import FakeReplica, Fleet

DEMO = str(Path(__file__).resolve().parents[2] / "models" / "demo" / "base")
A, B = "http://a:1", "http://b:2"


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(DEMO)


@pytest.fixture
def replicas(tokenizer) -> tuple[FakeReplica, FakeReplica]:
    return FakeReplica(A, tokenizer=tokenizer), FakeReplica(B, tokenizer=tokenizer)


async def started(tokenizer, *fakes: FakeReplica, **config) -> RemoteEngine:
    http = httpx.AsyncClient(transport=Fleet(*fakes).transport())
    engine = RemoteEngine(RemoteEngineConfig(
        upstreams=tuple(f.url for f in fakes), tokenizer=DEMO, served_model_name="demo",
        start_timeout_s=0, health_interval_s=60, **config), http, tokenizer)
    await engine.start()
    return engine


async def run(engine: RemoteEngine, prompt: list[int], params: SamplingParams,
              adapter: str | None = None) -> tuple[str, list[int], list]:
    text, ids, outs = "", [], []
    async for out in engine.generate(prompt, params, "r1", adapter):
        outs.append(out)
        for choice in out.choices:
            text += choice.text
            ids += list(choice.token_ids)
    return text, ids, outs


def metric(name: str, replica: str) -> float:
    return REGISTRY.get_sample_value(name, {"replica": replica}) or 0.0


# --- the wire format ---------------------------------------------------------------------------

# SamplingParams fields with no body key of their own: how they are carried instead.
NOT_IN_BODY = {"final_only": "stream", "detokenize": None, "name_prompt_tokens": None}


def test_every_sampling_param_reaches_the_completions_body():
    """A field added to SamplingParams must be translated in completion_body (or listed here)."""
    params = SamplingParams(max_tokens=7, temperature=0.5, top_p=0.9, n=2, stop=("\n",), seed=3,
                            logprobs=2, prompt_logprobs=1, ignore_eos=True, presence_penalty=0.1,
                            frequency_penalty=0.2, logit_bias=((5, 1.5),), final_only=True,
                            priority=-1)
    body = completion_body("m", [1, 2], params, stream=not params.final_only)
    for field in dataclasses.fields(SamplingParams):
        assert field.name in body or field.name in NOT_IN_BODY, field.name
    assert body["prompt"] == [1, 2] and body["logit_bias"] == {"5": 1.5}
    assert body["stop"] == ["\n"] and body["stream"] is False and body["return_token_ids"]
    # the server's generation_config defaults never apply: sampling is fully specified
    assert (body["top_k"], body["min_p"], body["repetition_penalty"]) == (0, 0.0, 1.0)
    assert body["priority"] == -1
    # the default priority is vLLM's own: left out
    assert "priority" not in completion_body("m", [1], SamplingParams(max_tokens=1), False)


def test_prompt_logprobs_name_each_positions_own_token_from_the_wire():
    # vLLM's prompt logprobs: {token id: {logprob, rank, decoded_token}}, the own token included
    # even when it ranks below the top k
    positions = [None,
                 {"7": {"logprob": -3.0, "rank": 4, "decoded_token": "b"},
                  "9": {"logprob": -0.1, "rank": 1, "decoded_token": "x"}},
                 {"8": {"logprob": -0.2, "rank": 1, "decoded_token": "c"}}]
    body = {"choices": [{"index": 0, "text": "", "prompt_logprobs": positions}]}
    out = generation_output("r", body, None, [5, 7, 8], prompt_k=1)
    assert out.prompt_token_logprobs == [None, TokenLogprob("b", -3.0, {"x": -0.1}),
                                         TokenLogprob("c", -0.2, {"c": -0.2})]
    assert out.prompt_logprobs[1] == {"b": -3.0, "x": -0.1}


# --- routing -----------------------------------------------------------------------------------

def test_rendezvous_moves_only_the_removed_replicas_prefixes():
    three = [Replica(f"http://r{i}:1", healthy=True) for i in range(3)]
    keys = [str(i).encode() for i in range(300)]
    before = {k: rendezvous_order(k, three)[0].url for k in keys}
    after = {k: rendezvous_order(k, three[:2])[0].url for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == three[2].url for k in moved)
    assert len(set(before.values())) == 3  # spread over all


def test_a_busy_replica_is_passed_over_unless_the_request_is_already_on_it():
    a, b = Replica(A, healthy=True), Replica(B, healthy=True)
    prompt = [5, 6, 7]
    first = choose([a, b], prompt, None, set(), 64, slack=2)
    other = b if first is a else a
    assert choose([a, b], prompt, None, set(), 64, 2) is first  # stable
    first.in_flight = 10  # busier than the other by more than the slack
    assert choose([a, b], prompt, None, set(), 64, 2) is other
    assert choose([a, b], [9, 9, 9], first.url, set(), 64, 2) is first  # the request stays put
    with pytest.raises(EngineUnavailable):
        choose([a, b], prompt, None, {A, B}, 64, 2)


async def test_calls_inside_one_request_scope_go_to_one_replica(tokenizer, replicas):
    engine = await started(tokenizer, *replicas)
    params = SamplingParams(max_tokens=2, final_only=True)
    with request_scope(RequestScope("one")):
        for prompt in ([1, 2, 3], [40, 41], [7] * 9, [60]):
            await run(engine, prompt, params)
    assert sorted(r.completions() for r in replicas) == [0, 4]
    assert len(engine._sticky) == 1


async def test_a_tenants_cache_salt_reaches_the_replica(tokenizer, replicas):
    """Per-tenant prefix caches hold on the fleet too: the scope's salt is in every call's body,
    and a call outside a tenant's scope sends none (the shared cache)."""
    engine = await started(tokenizer, *replicas)
    params = SamplingParams(max_tokens=2, final_only=True)

    def salts() -> list:
        return [body.get("cache_salt") for r in replicas for body in r.bodies]

    with request_scope(RequestScope("one", cache_salt="tenant-a-salt")):
        await run(engine, [1, 2, 3], params)
    assert salts() == ["tenant-a-salt"]
    await run(engine, [1, 2, 3], params)
    assert sorted(salts(), key=str) == [None, "tenant-a-salt"]


# --- failover ----------------------------------------------------------------------------------

async def test_a_call_to_a_dead_replica_is_retried_on_the_other(tokenizer, replicas):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    with request_scope(RequestScope("one")) as scope:
        engine._sticky[scope] = A
        a.up = False
        retries = metric("deliberate_upstream_retries_total", A)
        text, _, outs = await run(engine, [1, 2], SamplingParams(max_tokens=2, final_only=True))
        assert engine._sticky[scope] == B  # the request's later calls follow it
    assert text == "12" and outs[-1].finished and b.completions() == 1
    assert not engine.replicas[0].healthy
    assert metric("deliberate_upstream_retries_total", A) == retries + 1


async def test_a_stream_cut_midway_continues_on_the_other_replica(tokenizer, replicas):
    a, b = replicas
    a.reply = b.reply = "abcdef"
    a.break_stream_after = 2
    engine = await started(tokenizer, a, b)
    with request_scope(RequestScope("one")) as scope:
        engine._sticky[scope] = A
        text, ids, outs = await run(engine, [1, 2], SamplingParams(max_tokens=6))
    # b continued from the two tokens a had sent, with the room they left
    assert b.bodies[-1]["prompt"] == [1, 2, ord("a"), ord("b")]
    assert b.bodies[-1]["max_tokens"] == 4
    assert text == "ab" + "abcd" and len(ids) == 6
    assert all(list(out.prompt_token_ids) == [1, 2] for out in outs)
    assert outs[-1].finished and outs[-1].choices[-1].finish_reason == "length"


async def test_with_no_replica_up_calls_fail_at_once_with_retry_after(tokenizer, replicas):
    engine = await started(tokenizer, *replicas)
    for r in replicas:
        r.up = False
    with pytest.raises(EngineUnavailable) as failure:
        await run(engine, [1], SamplingParams(max_tokens=2, final_only=True))
    assert failure.value.retry_after_s > 0
    with pytest.raises(EngineUnavailable):  # /health is 503 from here
        await engine.check_health()


async def test_an_upstream_4xx_is_the_callers_and_keeps_its_status(tokenizer, replicas):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    for fake in (a, b):
        fake.status, fake.error = 400, "This model's maximum context length is 64 tokens"
    with pytest.raises(ContextExceeded):
        await run(engine, [1], SamplingParams(max_tokens=2, final_only=True))
    for fake in (a, b):
        fake.status, fake.error = 422, "top_p must be in (0, 1]"
    with pytest.raises(InvalidEngineRequest) as refusal:
        await run(engine, [1], SamplingParams(max_tokens=2))
    assert refusal.value.status == 422 and "top_p" in str(refusal.value)
    assert all(r.healthy for r in engine.replicas)  # the caller's fault ejects nobody
    assert a.completions() + b.completions() == 2  # and is not retried


async def test_a_5xx_ejects_the_replica_and_the_request_succeeds(tokenizer, replicas):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    a.status = b.status = 500
    with pytest.raises(EngineUnavailable, match="every replica"):
        await run(engine, [1], SamplingParams(max_tokens=2, final_only=True))
    assert not any(r.healthy for r in engine.replicas)


# --- pooling (a reward model's fleet) ----------------------------------------------------------

async def test_pool_asks_a_replicas_pooling_route_for_raw_logits_of_the_token_ids(tokenizer,
                                                                                replicas):
    a, b = replicas
    a.pooled = b.pooled = [0.5, -1.0]  # "classify": one row of class logits
    engine = await started(tokenizer, a, b)
    assert await engine.pool("Compute: 1+2", "classify") == [[0.5, -1.0]]
    [body] = a.pooling_bodies + b.pooling_bodies
    assert body == {"model": "demo", "input": tokenizer.encode("Compute: 1+2"),
                    "task": "classify", "use_activation": False}  # the local engine's params
    a.pooled = b.pooled = [[1.0, 2.0], [3.0, 4.0]]  # "token_classify": a row per token kept
    with request_scope(RequestScope("one", cache_salt="tenant-a-salt")):
        assert await engine.pool([5, 6], "token_classify") == [[1.0, 2.0], [3.0, 4.0]]
    body = (a.pooling_bodies + b.pooling_bodies)[-1]
    assert (body["input"], body["cache_salt"]) == ([5, 6], "tenant-a-salt")
    a.pooled = b.pooled = []  # a STEP pooler that found no step tag
    assert await engine.pool([5, 6], "token_classify") == []


async def test_a_pooling_call_is_retried_on_another_replica_and_the_callers_4xx_is_not(
        tokenizer, replicas):
    a, b = replicas
    a.pooled = b.pooled = [0.5]
    engine = await started(tokenizer, a, b)
    a.status = 500
    with request_scope(RequestScope("one")) as scope:
        engine._sticky[scope] = A
        assert await engine.pool([1, 2], "classify") == [[0.5]]
        assert engine._sticky[scope] == B
    assert not engine.replicas[0].healthy and len(b.pooling_bodies) == 1
    b.status, b.error = 400, "This model's maximum context length is 64 tokens"
    with pytest.raises(ContextExceeded):
        await engine.pool([1] * 70, "classify")
    assert len(b.pooling_bodies) == 2 and engine.replicas[1].healthy


async def test_pooling_on_a_generating_fleet_is_refused_naming_the_runner(tokenizer, replicas):
    engine = await started(tokenizer, *replicas)  # no /pooling route on either
    with pytest.raises(InvalidEngineRequest, match="no pooling model.*--runner pooling"):
        await engine.pool([1, 2], "token_classify")
    assert all(r.healthy for r in engine.replicas)


# --- start, adapters, health -------------------------------------------------------------------

async def test_start_reads_the_model_and_checks_the_tokenizer(tokenizer, replicas):
    engine = await started(tokenizer, *replicas)
    assert (engine.upstream_model, engine.max_model_len) == ("demo", 64)

    class Other:
        def encode(self, text, add_special_tokens=True):
            return [1, *tokenizer.encode(text)]
    replicas[0].tokenizer = Other()
    with pytest.raises(RuntimeError, match="does not match upstream"):
        await started(tokenizer, replicas[0])


async def test_adapters_reach_every_replica_and_a_refusal_names_the_replica(tokenizer, replicas):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    await engine.add_adapter("x", "/shared/x")
    assert a.adapters == b.adapters == {"x"}
    text, _, _ = await run(engine, [1], SamplingParams(max_tokens=1, final_only=True), "x")
    assert text == "1"
    b.refuse_adapters = True
    with pytest.raises(InvalidEngineRequest, match=f"upstream {B} refused adapter 'y'.*shared"):
        await engine.add_adapter("y", "/not/shared/y")
    assert "y" not in a.adapters  # all or none
    await engine.remove_adapter("x")
    assert a.adapters == b.adapters == set()


async def test_a_replica_is_ejected_by_its_probe_and_rejoins_with_the_adapters(tokenizer,
                                                                             replicas):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    await engine.add_adapter("x", "/shared/x")
    assert engine.replicas_in_rotation() == 2
    b.up = False
    await engine.health.probe_all()
    assert [r.healthy for r in engine.replicas] == [True, False]
    assert engine.replicas_in_rotation() == 1  # what admission sizes its lanes by
    b.up, b.adapters = True, set()  # restarted, empty
    reloads = metric("deliberate_upstream_adapter_reloads_total", B)
    await engine.health.probe_all()
    assert engine.replicas[1].healthy and b.adapters == {"x"}
    assert engine.replicas_in_rotation() == 2
    assert metric("deliberate_upstream_adapter_reloads_total", B) == reloads + 1


async def test_a_replica_that_lost_an_adapter_between_probes_is_reconciled(tokenizer, replicas):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    await engine.add_adapter("x", "/shared/x")
    b.adapters.clear()  # restarted faster than the probe interval
    with request_scope(RequestScope("one")) as scope:
        engine._sticky[scope] = B
        text, _, _ = await run(engine, [1], SamplingParams(max_tokens=1, final_only=True), "x")
    assert text == "1"  # served by a meanwhile
    await asyncio.sleep(0)  # the reconciliation task
    await asyncio.sleep(0.01)
    assert b.adapters == {"x"} and engine.replicas[1].healthy


async def test_adapter_reconciliations_are_kept_one_per_replica_and_cancelled_at_shutdown(
        tokenizer, replicas):
    a, b = replicas
    before = asyncio.all_tasks()
    engine = await started(tokenizer, a, b)
    await engine.add_adapter("x", "/shared/x")
    b.adapters.clear()
    b.held["/v1/models"] = asyncio.Event()  # the reconciliation waits on b's model list
    for key in ("one", "two", "three"):  # three requests find x missing on b
        with request_scope(RequestScope(key)) as scope:
            engine._sticky[scope] = B
            text, _, _ = await run(engine, [1], SamplingParams(max_tokens=1, final_only=True),
                                   "x")
        assert text == "1"  # served by a meanwhile
    await asyncio.sleep(0.01)
    assert b.paths.count("/v1/models") == 1  # one reconciliation, the others joined it
    await engine.shutdown()
    assert asyncio.all_tasks() - before == set()  # nothing of the engine's left running


async def test_a_failed_reconciliation_is_logged(tokenizer, replicas, caplog):
    a, b = replicas
    engine = await started(tokenizer, a, b)
    await engine.add_adapter("x", "/shared/x")
    b.adapters.clear()
    b.refuse_adapters = True  # b cannot load x again
    with request_scope(RequestScope("one")) as scope:
        engine._sticky[scope] = B
        await run(engine, [1], SamplingParams(max_tokens=1, final_only=True), "x")
    await asyncio.sleep(0.01)
    assert f"reconciling the adapters of {B} failed" in caplog.text
    assert "reloading adapter 'x' failed" in caplog.text


async def test_the_health_loop_logs_a_round_that_fails_and_goes_on(caplog):
    rounds = []

    async def broken_round():
        rounds.append(1)
        raise RuntimeError("probe bug")

    async def rejoin(replica):
        pass

    async with httpx.AsyncClient() as http:
        health = HealthChecker([Replica(A)], http, 0.001, on_rejoin=rejoin)
        health.probe_all = broken_round
        health.start()
        await asyncio.sleep(0.05)
        await health.stop()
    assert len(rounds) > 1 and "upstream health probes failed" in caplog.text
    assert "probe bug" in caplog.text


async def test_a_slow_metrics_read_keeps_a_replica_that_answers_health_in_rotation(
        tokenizer, replicas, caplog):
    caplog.set_level(logging.INFO, logger="engine.remote.health")
    a, b = replicas
    engine = await started(tokenizer, a, b)
    engine.replicas[1].reported_load = 3
    b.metrics_timeout = True
    for _ in range(2):
        await engine.health.probe_all()
        assert [r.healthy for r in engine.replicas] == [True, True]
    assert engine.replicas[1].reported_load == 3  # the load last read
    assert caplog.text.count(f"upstream {B}: /metrics unread (ReadTimeout") == 1  # not per round
    b.metrics_timeout = False
    await engine.health.probe_all()
    assert engine.replicas[1].reported_load == 0 and "/metrics read again" in caplog.text


async def test_probes_have_their_own_pool_and_a_full_pool_ejects_nobody(tokenizer, replicas):
    """Under a burst the engine calls hold every connection of their pool: a probe waiting for
    one timed out and ejected every healthy replica (48 503s in a 640-request burst). Probes
    go through the control client; an engine call that finds its own pool full retries
    elsewhere and ejects nobody."""
    a, b = replicas

    async def full(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection free in the pool")

    working = httpx.AsyncClient(transport=Fleet(a, b).transport())
    engine = RemoteEngine(RemoteEngineConfig(
        upstreams=(A, B), tokenizer=DEMO, served_model_name="demo", start_timeout_s=0,
        health_interval_s=60, congestion_backoff_s=0), working, tokenizer,
        control=httpx.AsyncClient(transport=Fleet(a, b).transport()))
    await engine.start()
    engine._http = httpx.AsyncClient(transport=httpx.MockTransport(full))  # the burst's pool
    await engine.health.probe_all()
    assert [r.healthy for r in engine.replicas] == [True, True]
    with pytest.raises(EngineUnavailable, match="every replica"):
        await run(engine, [1], SamplingParams(max_tokens=2, final_only=True))
    assert [r.healthy for r in engine.replicas] == [True, True]
    await engine.shutdown()


async def test_connect_timeouts_eject_nobody_and_the_call_waits_them_out(tokenizer, replicas):
    """A burst of 640 on two cores timed out connects to both replicas (this process's loop
    too busy to see them complete); ejecting on those answered 279 requests 503. The call now
    tries every replica, waits, and tries again."""
    a, b = replicas
    fleet = Fleet(a, b).transport()
    timeouts = []

    async def slow_connects(request: httpx.Request) -> httpx.Response:
        if len(timeouts) < 3:  # both replicas, then one more: the second round's first try
            timeouts.append(request.url.host)
            raise httpx.ConnectTimeout("timed out")
        return await fleet.handle_async_request(request)

    engine = await started(tokenizer, a, b, congestion_backoff_s=0.01)
    engine._http = httpx.AsyncClient(transport=httpx.MockTransport(slow_connects))
    text, _, outs = await run(engine, [1, 2], SamplingParams(max_tokens=2, final_only=True))
    assert text == "12" and outs[-1].finished and len(timeouts) == 3
    assert sorted(timeouts[:2]) == ["a", "b"]
    assert [r.healthy for r in engine.replicas] == [True, True]
    await engine.shutdown()


async def test_connect_timeouts_fail_the_call_after_the_configured_waits(tokenizer, replicas):
    calls = []

    async def never(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        raise httpx.ConnectTimeout("timed out")

    engine = await started(tokenizer, *replicas, congestion_backoff_s=0, congestion_retries=2)
    engine._http = httpx.AsyncClient(transport=httpx.MockTransport(never))
    with pytest.raises(EngineUnavailable, match="every replica"):
        await run(engine, [1], SamplingParams(max_tokens=2, final_only=True))
    assert len(calls) == 2 * (1 + 2)  # each replica, in the first round and after each wait
    assert [r.healthy for r in engine.replicas] == [True, True]
    await engine.shutdown()


async def test_a_probe_that_times_out_ejects_on_the_second_in_a_row():
    replica = Replica(A, healthy=True)
    answers = iter(["timeout", "ok", "timeout", "timeout"])

    async def health(request: httpx.Request) -> httpx.Response:
        if next(answers) == "timeout":
            raise httpx.ReadTimeout("slow")
        return httpx.Response(200)

    async def rejoin(_replica: Replica) -> None:
        return None

    checker = HealthChecker([replica], httpx.AsyncClient(transport=httpx.MockTransport(health)),
                            60, on_rejoin=rejoin)
    checker._read_load = lambda r: asyncio.sleep(0)  # this test is about /health alone
    await checker.probe_all()
    assert replica.healthy  # once: a busy replica
    await checker.probe_all()  # answers: the count starts again
    await checker.probe_all()
    assert replica.healthy
    await checker.probe_all()  # twice in a row
    assert not replica.healthy
