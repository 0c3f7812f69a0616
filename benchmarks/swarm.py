"""Swarm (issue 36): composite problems solved by specialist adapters, against the base alone and
each specialist alone, with oracle, learned and declared routing, and Self-MoA.

    /work/bin/heavy python -m benchmarks swarm [--problems 8] [--concurrency 4]
        [--target arithmetic|physics] [--numbers 1|2|3]

The composite demo task (`training.tasks.composite`, seed stream 560_000+) is a countdown
problem whose target and one of whose numbers are problems in brackets; the `brackets`
decomposer splits it into two independent parts and the countdown part that needs their
answers. The number is always an arithmetic problem; the target is one too (`--target
arithmetic`, the default: every part is within the base model's reach) or a physics problem
(`--target physics`: a part only the physics adapter solves, while that adapter solves no other
kind of part); `--numbers 3` brackets three of the countdown's numbers (four independent parts,
for the concurrency measurement). One server (the demo model, its adapters from the resolver root, the
learned router models/demo/swarm_router.json) answers every configuration through the HTTP API:

- `whole, single pass`: the base model given the composite question as it is (no swarm);
- `base alone`, `arithmetic alone`, `countdown alone` (and `physics alone` with a physics
  target): the swarm's decomposition, every part answered by that one model
  (`specialists: [model]`);
- `oracle routing`: each part to its family's adapter (`routes` by the question's family);
- `learned router`, `declared skills`: the swarm's own routing among the base and the adapters;
- `self_moa/4`: each part answered by 4 samples of the learned router's pick, voted by the
  verifiers' weighted vote;
each `greedy` (every part one greedy pass) and `search` (every part best_of_n/4 with the
weighted vote), under the verifiers prm x orm x logic. Measured per configuration: accuracy
(the exact composite checker), the parts' accuracies, engine calls, tokens, latency.

Concurrency: the learned-router swarm is run again one request at a time, with its parts
concurrent and then one after another (`concurrent: false`): the independent parts' wall time
(the arithmetic wave) and the whole request's, against each other.

Writes benchmarks/results/swarm.{md,json,png} (`--out` names them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.harness.chat import WITH_LOGIC
from benchmarks.harness.publish import publish
from benchmarks.harness.servers import SERVED_NAME, UNBOUNDED_ADMISSION
from search.answers import normalize
from tests.servers import free_port, running_server
from training.tasks import composite
from training.tasks.composite import Composite

RESULTS = Path(__file__).parent / "results"
SWARM_SEED = 560_000
N = 4  # samples per part with search (sized for a shared 2-core machine)
ORACLE = {"Compute": "arithmetic", "Numbers": "countdown", "Physics": "physics"}
SPECIALISTS = {"arithmetic": ["arithmetic", "countdown"],
               "physics": ["arithmetic", "countdown", "physics"]}  # per target


def routings(target: str = "arithmetic") -> list[tuple[str, dict | None]]:
    """name -> the request's reasoning.swarm (None: no swarm, the whole question in one pass)."""
    return [("whole, single pass", None),
            ("base alone", {"specialists": [SERVED_NAME]}),
            *[(f"{m} alone", {"specialists": [m]}) for m in SPECIALISTS[target]],
            ("oracle routing", {"routes": ORACLE}),
            ("learned router", {"routing": "learned"}),
            ("declared skills", {"routing": "declared"})]


MODES = {"greedy": {"strategy": "greedy"},
         "search": {"strategy": "best_of_n", "n_candidates": N, "selection": "weighted_vote"}}
TARGET_ROUTER_GAP, TARGET_GAIN, TARGET_WALL = 0.02, 0.15, 0.6


@dataclass
class Outcome:
    config: str
    mode: str
    problem: str
    level: int
    correct: bool
    parts_correct: dict  # "number", "target", "countdown" -> right or not (None: no swarm)
    models: dict  # part id -> who answered it
    tokens: int
    engine_calls: int
    latency_s: float
    wall_s: float | None  # the swarm's own, and its independent parts'
    independent_s: float | None
    part_s: dict | None = None  # each independent part's own time (ended - started)


def request(item: Composite, swarm: dict | None, mode: str) -> dict:
    part = MODES[mode]
    if swarm is None:
        reasoning = {"strategy": part["strategy"], "verifiers": WITH_LOGIC,
                     **{k: v for k, v in part.items() if k != "strategy"}}
    else:
        swarm = dict(swarm)
        if swarm.get("mode") != "self_moa":
            swarm["strategy"] = part["strategy"]
        reasoning = {"strategy": "swarm", "verifiers": WITH_LOGIC, "swarm": swarm,
                     **{k: v for k, v in part.items() if k != "strategy"}}
    return {"model": SERVED_NAME, "max_tokens": 256, "temperature": 0,
            "messages": [{"role": "user", "content": item.problem.prompt}],
            "reasoning": reasoning}


async def ask(http: httpx.AsyncClient, item: Composite, config: str, swarm: dict | None,
              mode: str) -> Outcome:
    started = time.monotonic()
    r = await http.post("/v1/chat/completions", json=request(item, swarm, mode))
    latency = time.monotonic() - started
    r.raise_for_status()
    body = r.json()
    info = body["reasoning"]
    text = body["choices"][0]["message"]["content"]
    report = info.get("swarm")
    parts, models, wall, independent, part_s = {}, {}, None, None, None
    if report is not None:
        by_id = {p["id"]: p for p in report["parts"]}
        # the root's children in the order they are written: the numbers', then the target's
        children = [f"0.{i}" for i in range(len(item.parts))]
        target, numbers = item.parts[0], item.parts[1:]
        parts = {"number": all(by_id[i]["answer"] == n.answer
                               for i, n in zip(children, numbers)),
                 "target": by_id[children[-1]]["answer"] == normalize(target.answer),
                 "countdown": composite.check(item, text)}
        models = {i: p["model"] for i, p in by_id.items()}
        wall = report["wall_s"]
        independent = max(by_id[i]["ended_s"] for i in children) - min(
            by_id[i]["started_s"] for i in children)
        part_s = {i: by_id[i]["ended_s"] - by_id[i]["started_s"] for i in children}
    return Outcome(config, mode, item.problem.id, item.problem.difficulty,
                   composite.check(item, text), parts, models,
                   body["usage"]["completion_tokens"], info.get("engine_calls", 1), latency,
                   wall, independent, part_s)


async def run_config(url: str, items: list[Composite], config: str, swarm: dict | None,
                     mode: str, concurrency: int) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def one(http: httpx.AsyncClient, item: Composite) -> Outcome:
        async with gate:
            return await ask(http, item, config, swarm, mode)

    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        started = time.monotonic()
        outcomes = await asyncio.gather(*(one(http, item) for item in items))
    print(f"{mode:6s} {config:22s} accuracy {summarize(outcomes)['accuracy']:.3f} "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    return list(outcomes)


def configs(target: str = "arithmetic") -> list[tuple[str, str, dict | None]]:
    out = [(name, mode, swarm) for mode in MODES for name, swarm in routings(target)
           if not (mode == "search" and name == "declared skills")]  # greedy shows it
    out.append((f"self_moa/{N}", "search", {"mode": "self_moa", "routing": "learned"}))
    return out


async def run(url: str, items: list[Composite], concurrency: int, wave: int,
              target: str) -> dict:
    outcomes: list[Outcome] = []
    for name, mode, swarm in configs(target):
        outcomes += await run_config(url, items, name, swarm, mode, concurrency)
    # one request at a time: parts concurrent, then one after another
    timing: list[Outcome] = []
    for name, concurrent in (("learned, parts concurrent", True),
                             ("learned, parts one by one", False)):
        for mode in MODES:
            timing += await run_config(url, items[:wave], name,
                                       {"routing": "learned", "concurrent": concurrent},
                                       mode, 1)
    return {"outcomes": outcomes, "timing": timing}


def summarize(outcomes: list[Outcome]) -> dict:
    n = len(outcomes)
    swarm = [o for o in outcomes if o.parts_correct]
    return {"n": n, "accuracy": sum(o.correct for o in outcomes) / n,
            **{f"{k}_accuracy": (sum(o.parts_correct[k] for o in swarm) / len(swarm)
                                 if swarm else None) for k in ("number", "target")},
            "tokens": statistics.fmean(o.tokens for o in outcomes),
            "engine_calls": statistics.fmean(o.engine_calls for o in outcomes),
            "latency_s": statistics.fmean(o.latency_s for o in outcomes),
            "wall_s": statistics.fmean(o.wall_s for o in swarm) if swarm else None,
            "independent_s": (statistics.fmean(o.independent_s for o in swarm)
                              if swarm else None),
            # the floor of the parts' concurrent time: the longest of them
            "longest_part_s": (statistics.fmean(max(o.part_s.values()) for o in timed)
                               if (timed := [o for o in swarm if o.part_s]) else None)}


def compute(outcomes: list[Outcome], timing: list[Outcome]) -> dict:
    table: dict[str, dict[str, dict]] = {}
    for o in outcomes:
        table.setdefault(o.mode, {}).setdefault(o.config, []).append(o)
    table = {mode: {c: summarize(v) for c, v in rows.items()} for mode, rows in table.items()}
    timings: dict[str, dict[str, dict]] = {}
    for o in timing:
        timings.setdefault(o.mode, {}).setdefault(o.config, []).append(o)
    timings = {mode: {c: summarize(v) for c, v in rows.items()} for mode, rows in timings.items()}
    learned_models: dict[str, int] = {}
    for o in outcomes:
        if o.config == "learned router":
            for model in o.models.values():
                learned_models[model] = learned_models.get(model, 0) + 1
    return {"table": table, "timing": timings, "learned_router_picks": learned_models}


def targets(results: dict) -> list[str]:
    lines = []
    for mode, rows in results["table"].items():
        acc = {c: r["accuracy"] for c, r in rows.items()}
        gap = acc["oracle routing"] - acc["learned router"]
        single = max(acc[c] for c in acc if c.endswith(" alone") or c == "whole, single pass")
        best_swarm = max(acc["learned router"], acc["oracle routing"])
        lines.append(f"- {mode}: learned router {acc['learned router']:.3f} against oracle "
                     f"{acc['oracle routing']:.3f} (gap {gap:+.3f}; target <= "
                     f"{TARGET_ROUTER_GAP}: {'met' if gap <= TARGET_ROUTER_GAP else 'missed'})"
                     f"; swarm {best_swarm:.3f} against the best single model {single:.3f} "
                     f"({best_swarm - single:+.3f}; target >= +{TARGET_GAIN}: "
                     f"{'met' if best_swarm - single >= TARGET_GAIN else 'missed'})")
    for mode, rows in results["timing"].items():
        con, seq = rows["learned, parts concurrent"], rows["learned, parts one by one"]
        ratio = con["independent_s"] / seq["independent_s"]
        whole = con["wall_s"] / seq["wall_s"]
        floor = ("" if seq.get("longest_part_s") is None else
                 f"; the longest part alone took {seq['longest_part_s'] / seq['independent_s']:.2f}x"
                 " of them all one after another, the least concurrency can take")
        lines.append(f"- {mode}: the independent parts took {con['independent_s']:.2f} s "
                     f"concurrently against {seq['independent_s']:.2f} s one after another "
                     f"({ratio:.2f}x; target <= {TARGET_WALL}x: "
                     f"{'met' if ratio <= TARGET_WALL else 'missed'}){floor}; the whole swarm "
                     f"{whole:.2f}x")
    return lines


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def report(results: dict, meta: dict) -> str:
    lines = ["# Swarm: specialists on composite problems (issue 36)", "",
             f"`{meta['command']}`, {meta['problems']} fresh composite problems (seed "
             f"{meta['seed']}, countdown levels 1-3 evenly drawn; the target part "
             f"{meta.get('target', 'arithmetic')}, {meta.get('numbers', 1)} bracketed "
             f"number(s)), {meta['machine']}, "
             f"{meta['wall_min']:.1f} min, started {meta['started']}; verifiers prm x orm x "
             f"logic; search = every part best_of_n/{N} with the weighted vote. "
             "A problem is right when its final countdown block solves the true resolved "
             "countdown problem (every bracketed part answered right) and states the target.", "",
             "| mode | configuration | accuracy | number part | target part | tokens | "
             "engine calls | latency s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for mode, rows in results["table"].items():
        for config, r in rows.items():
            lines.append(f"| {mode} | {config} | {_pct(r['accuracy'])} | "
                         f"{_pct(r['number_accuracy'])} | {_pct(r['target_accuracy'])} | "
                         f"{r['tokens']:.0f} | {r['engine_calls']:.1f} | {r['latency_s']:.2f} |")
    lines += ["", "Concurrency, one request at a time (the learned router's swarm):", "",
              "| mode | parts | independent parts s | the longest of them s | whole swarm s |",
              "|---|---|---:|---:|---:|"]
    for mode, rows in results["timing"].items():
        for config, r in rows.items():
            longest = "" if r.get("longest_part_s") is None else f"{r['longest_part_s']:.3f}"
            lines.append(f"| {mode} | {config} | {r['independent_s']:.3f} | {longest} | "
                         f"{r['wall_s']:.3f} |")
    lines += ["", f"The learned router's picks (all parts, both modes): "
              f"{json.dumps(results['learned_router_picks'])}", "", "Targets:", "",
              *targets(results), ""]
    return "\n".join(lines)


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = list(dict.fromkeys(c for rows in results["table"].values() for c in rows))
    width = 0.4
    for i, mode in enumerate(MODES):
        rows = results["table"].get(mode, {})
        xs = [k + (i - 0.5) * width for k in range(len(names))]
        left.bar(xs, [100 * rows[c]["accuracy"] if c in rows else 0 for c in names], width,
                 label=mode)
        right.scatter([rows[c]["tokens"] for c in names if c in rows],
                      [100 * rows[c]["accuracy"] for c in names if c in rows], label=mode)
        for c in names:
            if c in rows:
                right.annotate(c, (rows[c]["tokens"], 100 * rows[c]["accuracy"]), fontsize=7)
    left.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    left.set_ylabel("composite accuracy (%)")
    left.legend()
    right.set_xlabel("completion tokens per problem (all parts)")
    right.set_ylabel("composite accuracy (%)")
    right.set_xscale("log")
    right.legend()
    fig.suptitle("Swarm on composite problems: routing and search")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--seed", type=int, default=SWARM_SEED)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--wave", type=int, default=3,
                        help="problems of the one-at-a-time concurrency measurement")
    parser.add_argument("--target", choices=sorted(composite.TARGETS), default="arithmetic",
                        help="the family of each problem's target part")
    parser.add_argument("--numbers", type=int, choices=(1, 2, 3), default=1,
                        help="bracketed numbers per problem (independent parts beside the "
                             "target)")
    parser.add_argument("--out", default="swarm")
    parser.add_argument("--from-json", default=None,
                        help="recompute the tables from a saved run's answers")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        runs = {k: [Outcome(**o) for o in saved[k]] for k in ("outcomes", "timing")}
        meta = saved["meta"]
    else:
        items = composite.generate(args.seed, args.problems, target=args.target,
                                   numbers=args.numbers)
        started = time.time()
        port = free_port()
        log = RESULTS / "logs" / "swarm-server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = ["-m", "server", "--model", args.model, "--port", str(port),
                   "--log-level", "warning", *UNBOUNDED_ADMISSION]
        with running_server(command, port, log, timeout_s=600) as url:
            runs = asyncio.run(run(url, items, args.concurrency, args.wave, args.target))
        meta = {"command": f"python -m benchmarks swarm --problems {args.problems} "
                           f"--concurrency {args.concurrency} --wave {args.wave} "
                           f"--target {args.target} --numbers {args.numbers} --out {args.out}",
                "target": args.target, "numbers": args.numbers,
                "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
                "wall_min": (time.time() - started) / 60, "problems": len(items),
                "seed": args.seed}
    results = compute(runs["outcomes"], runs["timing"])
    publish(args.out, {"meta": meta, **results,
                       **{k: [asdict(o) for o in v] for k, v in runs.items()}},
            results, meta, figure, report, RESULTS)


if __name__ == "__main__":
    main()
