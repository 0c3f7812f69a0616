"""What bounds `auto`'s saving against always-mcts (issue 7 asks for at most 0.5x its generated
tokens at 0.97x its accuracy), on the router's calibration problems, through the HTTP API.

    python -m benchmarks.studies.auto_limits [--per-level 30] [--countdown 120] [--concurrency 16]

One server answers the calibration problems (seed stream 800_000+, as
`benchmarks.calibrate_router`) four ways: `auto` routed to greedy, for each problem's estimated
difficulty d; greedy, each answer then scored by the PRM (`POST /v1/verify`); mcts (depth 5,
learned verifiers); and mcts with its token budget capped. On those outcomes it evaluates routings
`auto` could use:

- task oracle: greedy on arithmetic, mcts on countdown (a router that knew each problem's task);
- instance oracle: greedy where greedy is right, else mcts (a perfect estimate of greedy's fate);
- a family: d >= high -> mcts with budget B; otherwise greedy, escalated to mcts with budget B
  when d >= escalate and the PRM scores the greedy answer below accept (verify, then search).

and reports the cheapest member within 0.97x always-mcts's accuracy, and the task oracle on the
held-out problems of `benchmarks/results/reasoning.json`. Writes
benchmarks/studies/results/auto_limits.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks import reasoning
from benchmarks.harness.chat import LEARNED, Outcome, chat_request, run_config
from benchmarks.harness.problems import CALIBRATION_SEED, add_run_arguments, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server
from training.tasks import Problem

RESULTS = Path(__file__).parent / "results"

CAPS = (None, 400, 550, 700)  # mcts token budgets; None: the server's default
TOLERANCE = 0.03
GRID = dict(high=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.01),
            escalate=(0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 1.01),
            accept=(1e-6, 1e-4, 1e-2, 0.1, 0.5), cap=CAPS)


@dataclass(frozen=True)
class Row:
    """One calibration problem: what each route would have cost and answered."""
    task: str
    difficulty: float
    greedy: tuple[bool, int]  # (right, generated tokens)
    prm: float  # the PRM's score of the greedy answer
    mcts: dict  # budget cap -> (right, generated tokens)


@dataclass(frozen=True)
class Routing:
    name: str
    accuracy: float
    tokens: float


def cascade(rows: list[Row], high: float, escalate: float, accept: float, cap) -> Routing:
    right = tokens = 0
    for row in rows:
        if row.difficulty >= high:
            ok, spent = row.mcts[cap]
        else:
            ok, spent = row.greedy
            if row.difficulty >= escalate and row.prm < accept:
                ok, searched = row.mcts[cap]
                spent += searched
        right += ok
        tokens += spent
    name = f"high {high:g}, escalate {escalate:g}, accept {accept:g}, budget {cap or 'default'}"
    return Routing(name, right / len(rows), tokens / len(rows))


def oracles(rows: list[Row]) -> list[Routing]:
    n = len(rows)
    task = [r.greedy if r.task == "arithmetic" else r.mcts[None] for r in rows]
    instance = [r.greedy if r.greedy[0] else r.mcts[None] for r in rows]
    return [Routing(name, sum(ok for ok, _ in picks) / n, sum(t for _, t in picks) / n)
            for name, picks in (("always mcts", [r.mcts[None] for r in rows]),
                                ("always greedy", [r.greedy for r in rows]),
                                ("task oracle", task), ("instance oracle", instance))]


def cheapest(rows: list[Row], floor: float) -> Routing | None:
    """The family member with the fewest tokens whose accuracy is at least `floor`."""
    members = (cascade(rows, *point) for point in itertools.product(*GRID.values()))
    eligible = [m for m in members if m.accuracy >= floor - 1e-12]
    return min(eligible, key=lambda m: (m.tokens, -m.accuracy), default=None)


def held_out_task_oracle(path: Path = reasoning.RESULTS / "reasoning.json"
                         ) -> tuple[Routing, Routing] | None:
    """(always mcts, task oracle) on the reasoning benchmark's outcomes, learned verifiers."""
    if not path.exists():
        return None
    rows = [o for o in json.loads(path.read_text())["outcomes"] if o["verifiers"] == "learned"]
    pick = {(o["config"], o["problem"]): o for o in rows}
    mcts = [o for o in rows if o["config"] == "mcts/5"]
    task = [pick[("greedy", o["problem"])] if o["task"] == "arithmetic" else o for o in mcts]
    n = len(mcts)
    return tuple(Routing(name, sum(o["correct"] for o in picks) / n,
                         sum(o["completion_tokens"] for o in picks) / n)
                 for name, picks in (("always mcts", mcts), ("task oracle", task)))


async def prm_scores(url: str, problems: list[Problem], concurrency: int) -> list[float]:
    """Each problem's greedy answer (temperature 0, as the benchmarks ask), scored by the PRM."""
    gate = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient, problem: Problem) -> float:
        async with gate:
            r = await http.post("/v1/chat/completions",
                                json=chat_request(problem, {"strategy": "greedy"}))
            r.raise_for_status()
            answer = r.json()["choices"][0]["message"]["content"]
            r = await http.post("/v1/verify", json={"prompt": problem.prompt,
                                                    "completion": answer,
                                                    "verifiers": {"prm": 1.0}})
            r.raise_for_status()
            return r.json()["score"]

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        return list(await asyncio.gather(*(one(http, p) for p in problems)))


async def measure(args: argparse.Namespace) -> list[Row]:
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    # low = high = 1: `auto` answers greedily and reports each problem's difficulty
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--log-level",
               "warning", "--router-low", "1", "--router-high", "1"]
    with running_server(command, port, RESULTS / "logs" / "auto-limits-server.log") as url:
        async def phase(name: str, reasoning: dict) -> list[Outcome]:
            rows, info = await run_config(url, problems, name, {**reasoning, "seed": 1},
                                          "learned", args.concurrency)
            print(f"{name:14s} accuracy {sum(o.correct for o in rows) / len(rows):.1%} "
                  f"wall {info['wall_s']} s", flush=True)
            return rows

        auto = await phase("difficulty", {"strategy": "auto"})
        greedy = await phase("greedy", {"strategy": "greedy"})
        prm = await prm_scores(url, problems, args.concurrency)
        mcts = {}
        for cap in CAPS:
            budget = {} if cap is None else {"budget_tokens": cap}
            mcts[cap] = await phase(f"mcts/{cap or 'default'}",
                                    {"strategy": "mcts", "max_depth": 5, "verifiers": LEARNED,
                                     **budget})
    if any(o.difficulty is None for o in auto):
        raise RuntimeError("no difficulty estimator answered; see the server log")
    return [Row(task=p.task, difficulty=auto[i].difficulty, prm=prm[i],
                greedy=(greedy[i].correct, greedy[i].completion_tokens),
                mcts={cap: (runs[i].correct, runs[i].completion_tokens)
                      for cap, runs in mcts.items()})
            for i, p in enumerate(problems)]


def report(rows: list[Row], args: argparse.Namespace, wall_s: float) -> tuple[str, dict]:
    reference = oracles(rows)
    mcts = reference[0]
    floor = (1 - TOLERANCE) * mcts.accuracy
    best = cheapest(rows, floor)
    capped = [Routing(f"always mcts, budget {cap}", *(
        sum(r.mcts[cap][k] for r in rows) / len(rows) for k in (0, 1))) for cap in CAPS if cap]
    held_out = held_out_task_oracle()

    def line(r: Routing, base: Routing) -> str:
        return (f"| {r.name} | {r.accuracy:.1%} | {r.tokens:.0f} | {r.accuracy / base.accuracy:.3f} "
                f"| {r.tokens / base.tokens:.3f} |")

    head = ["| routing | accuracy | tokens | accuracy / always-mcts | tokens / always-mcts |",
            "|---|---:|---:|---:|---:|"]
    lines = ["# Limits of auto's saving", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {wall_s / 60:.1f} min. Command: "
             f"`python -m benchmarks.studies.auto_limits --per-level {args.per_level} --countdown "
             f"{args.countdown}`.", "",
             f"{len(rows)} calibration problems (seed stream {args.seed}+), learned verifiers "
             "(prm x orm). Target: tokens at most 0.5x always-mcts's at accuracy at least "
             f"{1 - TOLERANCE:.2f}x.", "", *head,
             *(line(r, mcts) for r in [*reference, *capped]),
             line(best, mcts) if best else "| (no member reaches the accuracy) | | | | |", ""]
    if best:
        lines += [f"The cheapest routing of the family ({len(list(itertools.product(*GRID.values())))} "
                  f"members, last row) within {1 - TOLERANCE:.2f}x always-mcts's accuracy spends "
                  f"{best.tokens / mcts.tokens:.3f}x its tokens.", ""]
    if held_out:
        lines += ["Held out (`benchmarks/results/reasoning.json`, learned verifiers):", "", *head,
                  *(line(r, held_out[0]) for r in held_out), ""]
    data = {"rows": [asdict(r) | {"mcts": {str(k): v for k, v in r.mcts.items()}} for r in rows],
            "routings": [asdict(r) for r in [*reference, *capped, *([best] if best else [])]],
            "held_out": [asdict(r) for r in held_out or ()]}
    return "\n".join(lines), data


async def main_async(args: argparse.Namespace) -> None:
    started = time.monotonic()
    rows = await measure(args)
    text, data = report(rows, args, time.monotonic() - started)
    (RESULTS / "auto_limits.json").write_text(json.dumps(data))
    (RESULTS / "auto_limits.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.auto_limits",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, CALIBRATION_SEED)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
