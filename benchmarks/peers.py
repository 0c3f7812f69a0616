"""Deliberate side by side with optillm and its_hub: same model, problems, max_tokens, concurrency.

    make peers-venv          # optillm 0.4.0 in .venv-peers (its pins clash with ours)
    python -m benchmarks.peers [--per-level 5] [--countdown 40] [--concurrency 8]

The peers sit in front of one `vllm serve` replica of the demo model, as their READMEs run them
(optillm as its proxy, its_hub as a library with its OpenAI-compatible LM); Deliberate serves the
same model with its in-process engine (its searches need their verifiers next to the engine).
its_hub's PRM and ORM interfaces are given Deliberate's /v1/verify with Deliberate's own search
verifiers (prm x logic), the best judge there is for this model. Every optillm approach is first
tried on two problems; those that answer run on all. Tokens and engine calls are read from the
engines' own counters (vllm:generation_tokens_total, vllm:request_success_total) of both servers
around each (configuration, task) phase, so every call counts: optillm's rating and critique
calls, its_hub's verify calls, Deliberate's verifier calls and difficulty probe.

Writes benchmarks/results/peers.md, peers.json and peers.png (accuracy against tokens per task).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.chat import chat_request, metric_total
from benchmarks.harness.problems import load_problems
from benchmarks.harness.servers import SERVED_NAME, UNBOUNDED_ADMISSION
from tests.servers import free_port, replica_args, replica_env, running_server
from training.tasks import Problem, get_task

RESULTS = Path(__file__).parent / "results"
LOGS = RESULTS / "logs"
PEERS_SEED = 500_000  # fresh: apart from every other benchmark's stream (training.components.seeds)
MAX_TOKENS = 256
# Deliberate's search temperature (server.settings.search_temperature); given to every peer
# sampler whose temperature a caller can set
TEMPERATURE = 0.7
N = 8  # samples per problem for the sampling approaches of all three

DELIBERATE: list[tuple[str, dict]] = [
    ("greedy", {"strategy": "greedy"}),
    (f"self_consistency/{N}", {"strategy": "self_consistency", "n_candidates": N}),
    (f"best_of_n/{N}", {"strategy": "best_of_n", "n_candidates": N}),
    ("beam/3", {"strategy": "beam", "beam_width": 3}),
    ("mcts/5", {"strategy": "mcts", "max_depth": 5}),
    ("auto", {"strategy": "auto"}),  # the server's default verifiers, routed by difficulty
]
# optillm 0.4.0's approaches (server.known_approaches) and its plugins that reason over one
# question (plugins that read URLs, search the web, run code, route or anonymize are not
# reasoning approaches), each with the fields its best honest run sets.
OPTILLM: dict[str, dict] = {
    "none": {"temperature": 0},  # its pass-through: greedy, the baseline
    "majority_voting": {"k": N, "temperature": TEMPERATURE},  # plugin: k and temperature settable
    "self_consistency": {},  # 5 samples at temperature 1, fixed in optillm/self_consistency.py
    "bon": {},  # --best-of-n (3) samples at temperature 1, fixed in optillm/bon.py
    "mcts": {}, "moa": {}, "rto": {}, "z3": {}, "pvg": {}, "rstar": {}, "cot_reflection": {},
    "plansearch": {}, "leap": {}, "re2": {}, "cepo": {}, "mars": {},
    "genselect": {}, "deepthink": {}, "coc": {}, "spl": {},
}
# Not run, from their source: (peer, approach, why)
NOT_RUN = [
    ("optillm", "cot_decoding, entropy_decoding, thinkdeeper, autothink, deepconf",
     "decoding-level: only in optillm's own local engine (optillm/inference.py, a Hugging Face "
     "model in-process), not in front of an OpenAI-compatible upstream"),
    ("optillm", "readurls, web_search, executecode, mcp, memory, privacy, router, json, compact, "
     "proxy, deep_research, longcepo", "plugins that fetch, run code, route, anonymise, or "
     "work on long documents: not reasoning over one question"),
    ("its_hub", "PlanningWrapper", "asks the model to write a plan first (a meta-instruction)"),
    ("its_hub", "LLMJudge", "asks the model to grade answers; the PRM over /v1/verify stands in"),
    ("its_hub", "LocalVllmProcessRewardModel", "needs reward_hub and a Qwen-PRM-style model; the "
     "demo PRM is a LoRA served by Deliberate (given to its_hub over /v1/verify instead)"),
]
PROBE_TIMEOUT_S = 120.0
# the most one optillm approach may take per task, judged by its probe (a run must fit ~25 min)
PHASE_BUDGET_S = 150.0


@dataclass
class Answer:
    side: str
    config: str
    task: str
    problem: str
    correct: bool
    status: int
    error: str | None
    latency_s: float
    usage_tokens: int | None = None
    reported_calls: int | None = None  # Deliberate's reasoning.engine_calls


# status, text, and what the answer reports of itself: usage tokens and engine calls, or None
Solver = Callable[[Problem], Awaitable[tuple[int, str, int | None, int | None]]]


def engine_counters(urls: list[str]) -> tuple[float, float]:
    """Generated tokens and finished engine requests so far, summed over the servers' engines."""
    tokens = calls = 0.0
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=30).text
        tokens += metric_total(text, "vllm:generation_tokens_total")
        calls += metric_total(text, "vllm:request_success_total")
    return tokens, calls


async def run_phase(side: str, config: str, task: str, problems: list[Problem], solve: Solver,
                    engines: list[str], concurrency: int) -> tuple[list[Answer], dict]:
    """Every problem through `solve`, `concurrency` at a time, alone on the engines."""
    gate = asyncio.Semaphore(concurrency)

    async def one(problem: Problem) -> Answer:
        async with gate:
            started = time.monotonic()
            try:
                status, text, usage, calls = await solve(problem)
            except Exception as exc:  # a peer's failure is a result, not a crash
                status, text, usage, calls = 0, f"{type(exc).__name__}: {exc}", None, None
            latency = time.monotonic() - started
        ok = status == 200
        return Answer(side, config, task, problem.id,
                      ok and get_task(problem.task).check(problem, text), status,
                      None if ok else text[:300], round(latency, 2), usage, calls)

    tokens0, calls0 = engine_counters(engines)
    started = time.monotonic()
    answers = list(await asyncio.gather(*(one(p) for p in problems)))
    wall = time.monotonic() - started
    await asyncio.sleep(0.5)  # the counters of the last finished requests
    tokens1, calls1 = engine_counters(engines)
    n = len(answers)
    usage = [a.usage_tokens for a in answers if a.usage_tokens is not None]
    reported = [a.reported_calls for a in answers if a.reported_calls is not None]
    return answers, {
        "side": side, "config": config, "task": task, "n": n,
        "accuracy": sum(a.correct for a in answers) / n,
        "errors": sum(a.status != 200 for a in answers),
        "tokens": (tokens1 - tokens0) / n, "engine_calls": (calls1 - calls0) / n,
        "usage_tokens": statistics.fmean(usage) if usage else None,
        "reported_calls": statistics.fmean(reported) if reported else None,
        "latency_s": statistics.fmean(a.latency_s for a in answers), "wall_s": round(wall, 1)}


def deliberate_solver(http: httpx.AsyncClient, reasoning: dict) -> Solver:
    async def solve(problem: Problem) -> tuple[int, str, int | None, int | None]:
        r = await http.post("/v1/chat/completions", json=chat_request(
            problem, {**reasoning, "seed": 1}, fields={"max_tokens": MAX_TOKENS}))
        if r.status_code != 200:
            return r.status_code, r.text, None, None
        body = r.json()
        return (200, body["choices"][0]["message"]["content"], body["usage"]["completion_tokens"],
                body["reasoning"].get("engine_calls", 1))
    return solve


def optillm_solver(http: httpx.AsyncClient, approach: str, fields: dict) -> Solver:
    from benchmarks.harness.optillm_side import optillm_request

    async def solve(problem: Problem) -> tuple[int, str, int | None, int | None]:
        r = await http.post("/v1/chat/completions", json=optillm_request(
            problem.prompt, approach, SERVED_NAME, MAX_TOKENS, fields))
        if r.status_code != 200:
            return r.status_code, r.text, None, None
        body = r.json()
        usage = (body.get("usage") or {}).get("completion_tokens")
        return 200, body["choices"][0]["message"]["content"] or "", usage, None
    return solve


def its_hub_configs(scorer) -> dict[str, tuple[Callable[[], object], int]]:
    """its_hub's algorithms that run on a model that follows no meta-prompt: name -> (a factory
    of the algorithm, budget)."""
    from its_hub import AdaptiveSelfConsistency, BestOfN, BetaSelfConsistency, SelfConsistency
    from its_hub.core.algorithms.beam_search import BeamSearch
    from its_hub.core.algorithms.particle_gibbs import ParticleFiltering
    from its_hub.core.lms.step_generation import StepGeneration

    from benchmarks.harness.its_hub_side import VerifyORM, VerifyPRM, project_answer

    def steps() -> StepGeneration:
        # a step is a line; a solution ends with its `Answer: N` line (then eos)
        return StepGeneration(max_steps=16, step_token="\n", stop_token="Answer:",
                              temperature=TEMPERATURE)

    return {
        f"self_consistency/{N}": (lambda: SelfConsistency(project_answer), N),
        f"adaptive_self_consistency/{N}": (
            lambda: AdaptiveSelfConsistency(consistency_space_projection_func=project_answer), N),
        f"beta_self_consistency/{N}": (
            lambda: BetaSelfConsistency(consistency_space_projection_func=project_answer), N),
        f"best_of_n/{N}": (lambda: BestOfN(VerifyORM(scorer)), N),
        f"beam_search/2x{N // 2}": (lambda: BeamSearch(steps(), VerifyPRM(scorer), 2), N),
        f"particle_filtering/{N}": (lambda: ParticleFiltering(steps(), VerifyPRM(scorer)), N),
    }


def its_hub_lm(replica: str):
    """its_hub's OpenAI-compatible LM on the replica, sampling at TEMPERATURE."""
    from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel

    return OpenAICompatibleLanguageModel(endpoint=f"{replica}/v1", api_key="none",
                                         model_name=SERVED_NAME, temperature=TEMPERATURE,
                                         max_tokens=MAX_TOKENS, max_tries=1)


def its_hub_solver(lm, factory: Callable[[], object], budget: int) -> Solver:
    async def solve(problem: Problem) -> tuple[int, str, int | None, int | None]:
        result = await factory().ainfer(lm, problem.prompt, budget)
        return 200, result.get("content") or "", None, None
    return solve


def phase_size(latency_s: float, concurrency: int) -> int | None:
    """Problems per task for an optillm approach: all (None), unless its slowest probe answer
    says a task would take more than PHASE_BUDGET_S; then as many as fit (at least 8)."""
    fit = int(PHASE_BUDGET_S * concurrency / max(latency_s, 1.0))
    return None if fit >= 1000 else max(8, fit)


def probe_problems(problems: list[Problem]) -> list[Problem]:
    """One mid-level arithmetic and one countdown problem: enough to tell whether it runs."""
    arithmetic = [p for p in problems if p.task == "arithmetic" and (p.difficulty or 0) == 4]
    countdown = [p for p in problems if p.task == "countdown"]
    return [arithmetic[0], countdown[0]]


def judge(results: list[dict]) -> list[str]:
    """Issue 34's goal per task: auto at least matches the best peer's accuracy at no more
    tokens."""
    lines = []
    for task in ("arithmetic", "countdown"):
        rows = [r for r in results if r["task"] == task]
        auto = next((r for r in rows if r["side"] == "deliberate" and r["config"] == "auto"),
                    None)
        peers = [r for r in rows if r["side"] != "deliberate" and r["errors"] < r["n"]]
        if auto is None or not peers:
            missing = "auto" if auto is None else "no peer approach"
            lines.append(f"- {task}: not judged: {missing} was measured in this run"
                         if auto is not None else
                         f"- {task}: not judged: {missing} was not measured in this run")
            continue
        def accuracy(r: dict) -> float:  # on the problems all ran, where sides ran apart
            common = r.get("common_accuracy")
            return r["accuracy"] if common is None else common

        best = max(peers, key=lambda r: (accuracy(r), -r["tokens"]))
        met = accuracy(auto) >= accuracy(best) and auto["tokens"] <= best["tokens"]
        on = f" (on the {auto['common_n']} problems all ran)" if auto.get("common_n") else ""
        lines.append(
            f"- {task}{on}: auto {accuracy(auto):.1%} at {auto['tokens']:.0f} tokens; best "
            f"peer {best['side']} {best['config']} {accuracy(best):.1%} at "
            f"{best['tokens']:.0f} tokens: **{'met' if met else 'missed'}**")
    return lines


def _selection(args: argparse.Namespace) -> str:
    """The command's flags that chose what ran (absent from runs saved before they existed)."""
    flags = []
    if getattr(args, "sides", None) and set(args.sides) != {"deliberate", "optillm", "its_hub"}:
        flags.append(f"--sides {','.join(args.sides)}")
    for flag in ("deliberate", "its_hub"):
        if getattr(args, flag, None):
            flags.append(f"--{flag.replace('_', '-')} '{','.join(getattr(args, flag))}'")
    if getattr(args, "out", "peers") != "peers":
        flags.append(f"--out {args.out}")
    return "".join(f" {f}" for f in flags)


def report(results: list[dict], probes: list[dict], args: argparse.Namespace, wall_s: float,
           counts: dict[str, int], figure: Path) -> str:
    lines = [
        "# Deliberate beside optillm and its_hub", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}), {wall_s / 60:.1f} min in all. Command: "
        f"`python -m benchmarks.peers --per-level {args.per_level} --countdown {args.countdown} "
        f"--concurrency {args.concurrency}{_selection(args)}`.", "",
        f"Problems: {counts['arithmetic']} arithmetic ({args.per_level} per level 1-8) and "
        f"{counts['countdown']} countdown, seed stream {args.seed}+ (fresh), the same for every "
        f"configuration; max_tokens {MAX_TOKENS}; {args.concurrency} problems in flight. "
        "Accuracy by the tasks' exact checkers. Tokens and engine calls per problem are the "
        "deltas of the engines' counters around each phase (both servers' engines, so every "
        "call counts); `usage tokens` and `calls reported` are what the answer said of itself, "
        "where it did (Deliberate's usage and reasoning.engine_calls, optillm's usage).", "",
        "## Goal: auto with its default verifiers against the best peer approach", "",
        *judge(results), "", f"![accuracy against tokens per task]({figure.name})", ""]
    for task in ("arithmetic", "countdown"):
        lines += [f"## {task}", "",
                  "| side | configuration | accuracy | on common (n) | tokens | usage tokens | "
                  "engine calls | calls reported | latency s | wall s | errors |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sorted((r for r in results if r["task"] == task),
                        key=lambda r: (r["side"], -r["accuracy"])):
            usage = "" if r["usage_tokens"] is None else f"{r['usage_tokens']:.0f}"
            reported = "" if r.get("reported_calls") is None else f"{r['reported_calls']:.1f}"
            common = ("" if r.get("common_accuracy") is None
                      else f"{r['common_accuracy']:.1%} ({r['common_n']})")
            lines.append(f"| {r['side']} | {r['config']} | {r['accuracy']:.1%} | {common} | "
                         f"{r['tokens']:.0f} | {usage} | {r['engine_calls']:.1f} | {reported} | "
                         f"{r['latency_s']:.1f} | {r['wall_s']} | {r['errors']}/{r['n']} |")
        lines.append("")
    lines += ["## Not run, and why (from their source)", "", "| peer | approaches | why |",
              "|---|---|---|", *(f"| {p} | {a} | {why} |" for p, a, why in NOT_RUN), ""]
    lines += ["## optillm approaches tried on two problems", "",
              "| approach | answered | first error |", "|---|---:|---|"]
    for p in probes:
        error = (p["error"] or "").replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {p['approach']} | {p['answered']}/{p['n']} | {error} |")
    return "\n".join(lines) + "\n"


async def probe_optillm(url: str, problems: list[Problem]) -> list[dict]:
    """Every optillm approach on `problems`, all at once (whether it answers, not what it costs:
    the phases after measure that)."""
    gate = asyncio.Semaphore(8)

    async def probe(http: httpx.AsyncClient, approach: str, problem: Problem) -> Answer:
        async with gate:
            status, text, _ = 0, "", None
            started = time.monotonic()
            try:
                status, text, *_ = await optillm_solver(http, approach, OPTILLM[approach])(problem)
            except httpx.HTTPError as exc:
                text = f"{type(exc).__name__}: no answer within {PROBE_TIMEOUT_S:.0f} s"
            return Answer("optillm", approach, "probe", problem.id, False, status,
                          None if status == 200 else text[:300],
                          round(time.monotonic() - started, 1))

    async with httpx.AsyncClient(base_url=url, timeout=PROBE_TIMEOUT_S) as http:
        answers = await asyncio.gather(*(probe(http, a, p) for a in OPTILLM for p in problems))
    out = []
    for approach in OPTILLM:
        errors = [a.error for a in answers if a.config == approach and a.status != 200]
        latencies = [a.latency_s for a in answers if a.config == approach]
        out.append({"approach": approach, "n": len(problems),
                    "answered": len(problems) - len(errors),
                    "error": errors[0] if errors else None,
                    "latency_s": max(latencies)})
        print(f"probe optillm {approach:18s} {out[-1]['answered']}/{len(problems)} "
              f"{(errors[0] or '')[:120] if errors else ''}", flush=True)
    return out


async def main_async(args: argparse.Namespace) -> None:
    from benchmarks.harness.its_hub_side import VerifyScorer
    from benchmarks.harness.optillm_side import running_optillm

    problems = load_problems(args.per_level, args.countdown, args.seed)
    by_task = {t: [p for p in problems if p.task == t] for t in ("arithmetic", "countdown")}
    replica_port, deliberate_port, optillm_port = free_port(), free_port(), free_port()
    deliberate = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model,
                  "--port", str(deliberate_port), "--served-model-name", SERVED_NAME,
                  "--max-n", "16", "--log-level", "warning", "--default-strategy", "auto"]
    answers: list[Answer] = []
    results: list[dict] = []
    probes: list[dict] = []
    if args.merge and (RESULTS / "peers.json").exists():  # keep the other sides' phases
        saved = json.loads((RESULTS / "peers.json").read_text())
        results += [r for r in saved["results"] if r["side"] not in args.sides]
        answers += [Answer(**a) for a in saved["answers"] if a["side"] not in args.sides]
        probes += [] if "optillm" in args.sides else saved["probes"]
    started = time.monotonic()
    with running_server(replica_args(args.model, replica_port, lora=False), replica_port,
                        LOGS / "peers-replica.log", env=replica_env()) as replica, \
            running_server(deliberate, deliberate_port, LOGS / "peers-deliberate.log") as ours, \
            (running_optillm(replica, optillm_port, LOGS / "peers-optillm.log")
             if "optillm" in args.sides else contextlib.nullcontext("")) as optillm:
        engines = [replica, ours]

        async def phases(side: str, config: str, make_solver: Callable[[], Solver],
                         count: int | None = None) -> None:
            for task, task_problems in by_task.items():
                rows, summary = await run_phase(side, config, task, task_problems[:count],
                                                make_solver(), engines, args.concurrency)
                answers.extend(rows)
                results.append(summary)
                save(results, probes, answers, args, time.monotonic() - started, args.out)
                print(f"{side:10s} {config:28s} {task:10s} accuracy {summary['accuracy']:.1%} "
                      f"tokens {summary['tokens']:.0f} calls {summary['engine_calls']:.1f} "
                      f"errors {summary['errors']} wall {summary['wall_s']} s", flush=True)

        async with httpx.AsyncClient(base_url=ours, timeout=900) as http:
            for name, reasoning in DELIBERATE if "deliberate" in args.sides else []:
                if args.deliberate and name not in args.deliberate:
                    continue
                await phases("deliberate", name, lambda r=reasoning: deliberate_solver(http, r))
        scorer, lm = VerifyScorer(ours, args.concurrency), its_hub_lm(replica)
        configs = its_hub_configs(scorer) if "its_hub" in args.sides else {}
        for name, (factory, budget) in configs.items():
            if args.its_hub and name not in args.its_hub:
                continue
            await phases("its_hub", name, lambda f=factory, b=budget: its_hub_solver(lm, f, b))
        await scorer.aclose()
        await lm.close()
        if "optillm" in args.sides:
            probes += await probe_optillm(optillm, probe_problems(problems))
        async with httpx.AsyncClient(base_url=optillm or ours, timeout=900) as http:
            for p in probes if "optillm" in args.sides else []:
                if p["answered"]:
                    fields = OPTILLM[p["approach"]]
                    await phases("optillm", p["approach"],
                                 lambda a=p["approach"], f=fields: optillm_solver(http, a, f),
                                 phase_size(p["latency_s"], args.concurrency))
    save(results, probes, answers, args, time.monotonic() - started, args.out)
    render([RESULTS / f"{args.out}.json"], args.out)


def save(results: list[dict], probes: list[dict], answers: list[Answer],
         args: argparse.Namespace, wall_s: float, name: str = "peers") -> None:
    """Everything measured so far (after every phase: a run cut short keeps its phases)."""
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"results": results, "probes": probes, "answers": [asdict(a) for a in answers],
         "args": vars(args), "wall_s": wall_s}, indent=1, default=str))


def with_common_accuracy(results: list[dict], answers: list[dict]) -> list[dict]:
    """Each phase's accuracy on the problems every phase of its task answered (sides run apart
    may have run on a prefix of the same problems: the comparison is on what all ran)."""
    out = []
    for task in ("arithmetic", "countdown"):
        rows = [r for r in results if r["task"] == task]
        # phases cut to a few problems (a slow optillm approach) do not shrink the common set
        sets = [{a["problem"] for a in answers if a["task"] == task and a["side"] == r["side"]
                 and a["config"] == r["config"]} for r in rows if r["n"] >= 16]
        common = set.intersection(*sets) if sets else set()
        for r in rows:
            mine = [a for a in answers if a["task"] == task and a["side"] == r["side"]
                    and a["config"] == r["config"] and a["problem"] in common]
            out.append({**r, "common_n": len(mine),
                        "common_accuracy": (sum(a["correct"] for a in mine) / len(mine)
                                            if mine else None)})
    return out


def render(paths: list[Path], name: str = "peers") -> None:
    """NAME.md and NAME.png from saved runs (sides run apart, on the same problems, are
    merged: the first file's arguments, the runs' wall times added); NAME.json then holds the
    merged run."""
    from benchmarks.harness.plots import peers_figure

    runs = [json.loads(path.read_text()) for path in paths]

    # a phase run twice: the run with more problems, else the later one
    kept: dict[tuple, tuple[int, int, dict]] = {}
    for i, run in enumerate(runs):
        for r in run["results"]:
            key = (r["side"], r["config"], r["task"])
            if key not in kept or r["n"] >= kept[key][0]:
                kept[key] = (r["n"], i, r)
    probes = {p["approach"]: p for run in runs for p in run["probes"]}
    saved = {"results": [r for _, _, r in kept.values()], "probes": list(probes.values()),
             "answers": [a for i, run in enumerate(runs) for a in run["answers"]
                         if kept[(a["side"], a["config"], a["task"])][1] == i],
             "args": runs[0]["args"], "wall_s": sum(run["wall_s"] for run in runs)}
    if len(runs) > 1:
        (RESULTS / f"{name}.json").write_text(json.dumps(saved, indent=1))
    args = argparse.Namespace(**saved["args"])
    results = with_common_accuracy(saved["results"], saved["answers"])
    counts = {t: len({a["problem"] for a in saved["answers"] if a["task"] == t})
              for t in ("arithmetic", "countdown")}
    figure = peers_figure(results, RESULTS / f"{name}.png")
    (RESULTS / f"{name}.md").write_text(report(results, saved["probes"], args, saved["wall_s"],
                                               counts, figure))
    print((RESULTS / f"{name}.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--per-level", type=int, default=5, help="arithmetic problems per level")
    parser.add_argument("--countdown", type=int, default=40)
    parser.add_argument("--seed", type=int, default=PEERS_SEED)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sides", type=lambda v: v.split(","),
                        default=["deliberate", "optillm", "its_hub"],
                        help="comma-separated: which sides to run (default all three)")
    parser.add_argument("--deliberate", type=lambda v: v.split(","), default=None,
                        help="comma-separated: only these of Deliberate's configurations")
    parser.add_argument("--its-hub", type=lambda v: v.split(","), default=None,
                        help="comma-separated: only these of its_hub's configurations")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other sides' phases from the saved peers.json")
    parser.add_argument("--out", default="peers",
                        help="the saved run's name under benchmarks/results/ (NAME.json)")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="only rewrite peers.md and peers.png from saved runs (merged)")
    args = parser.parse_args(argv)
    if args.from_json:
        render(args.from_json, args.out)
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
