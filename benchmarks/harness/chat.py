"""The chat requests the reasoning benchmarks send through the HTTP API: a strategy configuration
asked to solve demo problems, what each answer measured (`Outcome`), and the vLLM prefix-cache
counters read around a configuration's requests."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass

import httpx

from benchmarks.harness.problems import bucket_of
from benchmarks.harness.servers import SERVED_NAME
from training.tasks import Problem, get_task

LEARNED = {"prm": 1.0, "orm": 1.0}
WITH_LOGIC = {"prm": 1.0, "orm": 1.0, "logic": 1.0}
# The strategy configurations, by name (benchmarks.reasoning runs them all):
# (name, reasoning object without verifiers, uses verifiers to select)
CONFIGS: list[tuple[str, dict, bool]] = [
    ("greedy", {"strategy": "greedy"}, False),
    *[(f"best_of_n/{n}", {"strategy": "best_of_n", "n_candidates": n}, True) for n in (4, 8, 16)],
    *[(f"self_consistency/{n}", {"strategy": "self_consistency", "n_candidates": n}, False)
      for n in (4, 8, 16)],
    # best_of_n's samples, the answer chosen by summed path score (two N: `make bench` < 30 min)
    *[(f"weighted_vote/{n}", {"strategy": "best_of_n", "n_candidates": n,
                              "selection": "weighted_vote"}, True) for n in (4, 16)],
    ("beam/3", {"strategy": "beam", "beam_width": 3}, True),
    ("mcts/5", {"strategy": "mcts", "max_depth": 5}, True),
    ("tot", {"strategy": "tot"}, True),
    ("auto", {"strategy": "auto"}, True),
]


@dataclass
class Outcome:
    config: str
    verifiers: str
    problem: str
    task: str
    bucket: str
    correct: bool
    strategy: str
    difficulty: float | None
    difficulty_estimator: str | None
    completion_tokens: int
    reasoning_tokens: int
    engine_calls: int
    nodes: int
    time_s: float
    busy_s: float
    latency_s: float


def chat_request(problem: Problem, reasoning: dict | None, model: str = SERVED_NAME,
                 fields: dict | None = None) -> dict:
    """The benchmark's chat request for `problem` to `model` (the base or an adapter's name),
    reasoning as `reasoning` says (None: no `reasoning` field), with `fields` set over it (a
    None value leaves that field out)."""
    request = {"model": model, "messages": [{"role": "user", "content": problem.prompt}],
               # temperature 0: a single pass (greedy, or auto routed to greedy) decodes
               # greedily; a search samples its branches at the server's search temperature.
               "max_tokens": 256, "temperature": 0, "reasoning": reasoning, **(fields or {})}
    return {key: value for key, value in request.items() if value is not None}


async def ask(http: httpx.AsyncClient, problem: Problem, reasoning: dict | None, config: str,
              verifiers: str, model: str = SERVED_NAME, fields: dict | None = None) -> Outcome:
    started = time.monotonic()
    r = await http.post("/v1/chat/completions",
                        json=chat_request(problem, reasoning, model, fields))
    latency = time.monotonic() - started
    r.raise_for_status()
    body = r.json()
    info, usage = body["reasoning"], body["usage"]
    answer = body["choices"][0]["message"]["content"]
    return Outcome(
        config=config, verifiers=verifiers, problem=problem.id, task=problem.task,
        bucket=bucket_of(problem), correct=get_task(problem.task).check(problem, answer),
        strategy=info["strategy"], difficulty=info.get("difficulty"),
        difficulty_estimator=info.get("difficulty_estimator"),
        completion_tokens=usage["completion_tokens"],
        reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        engine_calls=info.get("engine_calls", 1), nodes=info.get("nodes", 0),
        time_s=info.get("time_s", latency), busy_s=info.get("engine_busy_s", latency),
        latency_s=latency)


def metric_total(text: str, name: str) -> float:
    """The sum of a Prometheus exposition's samples of `name`, over all its labels."""
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def prefix_cache(base_url: str) -> tuple[float, float, float]:
    """vLLM's (hits, queries) prefix-cache token counters, and our ceiling of the hits (the
    whole blocks before each counted prompt's last token: what 32-token blocks allow)."""
    text = httpx.get(f"{base_url}/metrics").text
    return (metric_total(text, "vllm:prefix_cache_hits_total"),
            metric_total(text, "vllm:prefix_cache_queries_total"),
            metric_total(text, "deliberate_prefix_cache_ceiling_tokens_total"))


async def run_config(base_url: str, problems: list[Problem], name: str, reasoning: dict | None,
                     verifiers: str, concurrency: int, model: str = SERVED_NAME,
                     fields: dict | None = None) -> tuple[list[Outcome], dict]:
    gate = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient, problem: Problem) -> Outcome:
        async with gate:
            return await ask(http, problem, reasoning, name, verifiers, model, fields)

    hits0, queries0, ceiling0 = prefix_cache(base_url)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
        outcomes = await asyncio.gather(*(one(http, p) for p in problems))
    wall = time.monotonic() - started
    hits1, queries1, ceiling1 = prefix_cache(base_url)
    queries = queries1 - queries0
    phase = {"config": name, "verifiers": verifiers, "wall_s": round(wall, 1),
             "prefix_cache_hit_rate": round((hits1 - hits0) / queries, 4) if queries else None,
             "prefix_cache_ceiling": round((ceiling1 - ceiling0) / queries, 4) if queries else None}
    return list(outcomes), phase


def summarize(outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    return {"n": n, "accuracy": sum(o.correct for o in outcomes) / n,
            "tokens": statistics.fmean(o.completion_tokens for o in outcomes),
            "reasoning_tokens": statistics.fmean(o.reasoning_tokens for o in outcomes),
            "engine_calls": statistics.fmean(o.engine_calls for o in outcomes),
            "time_s": statistics.fmean(o.time_s for o in outcomes),
            "busy_fraction": (sum(o.busy_s for o in outcomes)
                              / max(sum(o.time_s for o in outcomes), 1e-9))}
