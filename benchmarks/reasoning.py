"""Accuracy against compute: every strategy on fresh demo problems, through the HTTP API.

    python -m benchmarks.reasoning [--per-level 30] [--countdown 120] [--concurrency 16]

One server (the demo model with its PRM, ORM and difficulty adapters) answers held-out problems
(seed stream 900_000+, below the training streams) with greedy, best_of_n and self_consistency
(N = 4, 8, 16), best_of_n's weighted vote (N = 4, 16), beam (width 3), mcts (depth 5), tot and
auto, under two verifier settings: learned only (prm x orm) and learned plus the exact `logic`
checker. Greedy and
self_consistency do not select by verifiers, so they run once and count for both.
Each configuration runs alone over all problems (`--concurrency` requests at a time), so the
vLLM prefix-cache counters read before and after it belong to its requests.

Writes benchmarks/results/reasoning.md, reasoning.json and reasoning.png (accuracy against
generated tokens per strategy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import CONFIGS, LEARNED, WITH_LOGIC, Outcome, run_config, summarize
from benchmarks.harness.plots import accuracy_compute_figure
from benchmarks.harness.problems import HELD_OUT_SEED, add_run_arguments, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from server.settings import Settings
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
# issue 7's auto target: at least AUTO_ACCURACY x always-mcts's accuracy, at most AUTO_TOKENS x
# its generated tokens (also judged by benchmarks.studies.auto_target)
AUTO_ACCURACY = 0.97
AUTO_TOKENS = 0.5


def table(outcomes: list[Outcome], settings: list[str], buckets: list[str]) -> dict:
    """{setting: {config: {bucket or "all" or "hard": summary}}}."""
    out: dict = {}
    for setting in settings:
        for name, _, selects in CONFIGS:
            rows = [o for o in outcomes if o.config == name
                    and (o.verifiers == setting or not selects)]
            if not rows:
                continue
            groups = {b: [o for o in rows if o.bucket == b] for b in buckets}
            groups["hard"] = [o for o in rows if o.bucket in ("arith 6-8", "countdown")]
            groups["all"] = rows
            out.setdefault(setting, {})[name] = {b: summarize(g) for b, g in groups.items() if g}
    return out


def targets(results: dict, phases: list[dict]) -> list[str]:
    learned = results["learned"]
    greedy_hard = learned["greedy"]["hard"]["accuracy"]
    best_name, best = max(((n, r["hard"]["accuracy"]) for n, r in learned.items()
                           if n not in ("greedy", "auto")), key=lambda x: x[1])
    auto, mcts = learned["auto"]["all"], learned["mcts/5"]["all"]
    beam = learned["beam/3"]["all"]
    # best_of_n at the budget nearest beam's tokens
    bon = min((learned[f"best_of_n/{n}"]["all"] for n in (4, 8, 16)),
              key=lambda r: abs(r["tokens"] - beam["tokens"]))
    search = [p for p in phases if p["config"] in ("beam/3", "mcts/5")]
    busy = [learned[c]["all"]["busy_fraction"] for c in ("beam/3", "mcts/5")]
    hit_rates = [p["prefix_cache_hit_rate"] for p in search if p["prefix_cache_hit_rate"]]
    ceilings = [p.get("prefix_cache_ceiling") for p in search if p["prefix_cache_hit_rate"]]

    auto_met = (auto["accuracy"] >= AUTO_ACCURACY * mcts["accuracy"]
                and auto["tokens"] <= AUTO_TOKENS * mcts["tokens"])

    def mark(ok: bool) -> str:
        return "met" if ok else "missed"

    return [
        f"- Hard bucket: best search ({best_name}) {best:.1%} vs greedy {greedy_hard:.1%}: "
        f"{(best - greedy_hard) * 100:+.1f} points (target +30): "
        f"**{mark(best - greedy_hard >= 0.30)}**",
        f"- auto vs always-mcts: accuracy {auto['accuracy']:.1%} vs {mcts['accuracy']:.1%} "
        f"({auto['accuracy'] / max(mcts['accuracy'], 1e-9):.3f}x, target >= {AUTO_ACCURACY:g}x), "
        f"tokens {auto['tokens']:.0f} vs {mcts['tokens']:.0f} "
        f"({auto['tokens'] / mcts['tokens']:.3f}x, target <= {AUTO_TOKENS:g}x): "
        f"**{mark(auto_met)}**",
        f"- beam/3 {beam['accuracy']:.1%} at {beam['tokens']:.0f} tokens vs best_of_n nearest in "
        f"tokens {bon['accuracy']:.1%} at {bon['tokens']:.0f}: "
        f"**{mark(beam['accuracy'] >= bon['accuracy'])}**",
        f"- Engine busy fraction (beam, mcts): {', '.join(f'{b:.2f}' for b in busy)} "
        f"(target >= 0.8): **{mark(min(busy) >= 0.8)}**",
        f"- Prefix-cache hit rate (beam, mcts; learned, then learned+logic): "
        f"{', '.join(f'{h:.2f}' for h in hit_rates) or 'n/a'} (target >= 0.7): "
        f"**{mark(bool(hit_rates) and min(hit_rates) >= 0.7)}**; the most whole 32-token blocks "
        f"allow: {', '.join('n/a' if c is None else f'{c:.2f}' for c in ceilings) or 'n/a'}",
    ]


def router_line() -> str:
    """How `auto` routed: the server's router table, when there is one."""
    path = Path(Settings().router_file or "")
    if not path.is_file():
        return "`auto` routes with the default thresholds (d < 0.3 greedy, d < 0.7 beam, else mcts)."
    table = json.loads(path.read_text())
    routes = "; ".join(f"{'+'.join(r['verifiers'])}: low {r['low']:g}, high {r['high']:g}"
                       + "".join(f", mcts {k} {v:g}" for k, v in (r.get("mcts") or {}).items())
                       for r in table["routes"])
    return (f"`auto` routes with the fitted router table `{path}` ({routes}), fitted on "
            f"calibration problems apart from these: `{table.get('fitted_by', '?')}`.")


def report(results: dict, phases: list[dict], args: argparse.Namespace, wall_s: float,
           buckets: list[str], figure: Path) -> str:
    lines = [
        "# Reasoning: accuracy against compute", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}), {wall_s / 60:.1f} min in all. "
        f"Command: `python -m benchmarks.reasoning --per-level {args.per_level} "
        f"--countdown {args.countdown} --concurrency {args.concurrency}`.", "",
        f"Problems: {args.per_level * 8} arithmetic ({args.per_level} per level 1-8) and "
        f"{args.countdown} countdown, seed stream {args.seed}+ (held out). Chat requests with "
        "max_tokens 256 through the HTTP API; accuracy by the tasks' exact checkers. Tokens are "
        "`usage.completion_tokens` (everything generated, difficulty probe included), mean per "
        "request.", "", router_line(), "", "## Targets (learned verifiers)", "",
        *targets(results, phases), "",
        f"![accuracy against generated tokens]({figure.name})", ""]
    for setting, configs in results.items():
        lines += [f"## Verifiers: {setting} ({json.dumps(LEARNED if setting == 'learned' else WITH_LOGIC)})",
                  "", "Accuracy by bucket (n per bucket in the header):", ""]
        first = next(iter(configs.values()))
        cols = [b for b in [*buckets, "hard", "all"] if b in first]
        lines.append("| config | " + " | ".join(f"{c} (n={first[c]['n']})" for c in cols)
                     + " | tokens | reasoning tokens | engine calls | time s | busy |")
        lines.append("|---" * (len(cols) + 6) + "|")
        for name, rows in configs.items():
            a = rows["all"]
            lines.append(f"| {name} | " + " | ".join(f"{rows[c]['accuracy']:.1%}" for c in cols)
                         + f" | {a['tokens']:.0f} | {a['reasoning_tokens']:.0f} | "
                         f"{a['engine_calls']:.1f} | {a['time_s']:.2f} | "
                         f"{a['busy_fraction']:.2f} |")
        lines.append("")
    lines += ["## Phases", "", "Prefix-cache ceiling: the hit rate if every whole KV block before "
              "each counted prompt's last token had been cached (vLLM caches whole blocks only, "
              "and recomputes a prompt's last token).", "",
              "| config | verifiers | wall s | prefix-cache hit rate | ceiling |",
              "|---|---|---:|---:|---:|"]
    lines += [f"| {p['config']} | {p['verifiers']} | {p['wall_s']} | "
              f"{p['prefix_cache_hit_rate']} | {p.get('prefix_cache_ceiling')} |" for p in phases]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--max-n", "16",
               "--log-level", "warning", "--default-strategy", "auto"]
    outcomes: list[Outcome] = []
    phases: list[dict] = []
    started = time.monotonic()
    with running_server(command, port, RESULTS / "logs" / "reasoning-server.log") as url:
        for name, reasoning, selects in CONFIGS:
            for setting, weights in (("learned", LEARNED), ("learned+logic", WITH_LOGIC)):
                if setting != "learned" and not selects:
                    continue
                rows, phase = await run_config(url, problems, name,
                                               {**reasoning, "verifiers": weights, "seed": 1},
                                               setting, args.concurrency)
                outcomes += rows
                phases.append(phase)
                acc = sum(o.correct for o in rows) / len(rows)
                print(f"{name:20s} {setting:14s} accuracy {acc:.1%} "
                      f"tokens {statistics.fmean(o.completion_tokens for o in rows):.0f} "
                      f"wall {phase['wall_s']} s", flush=True)
    wall = time.monotonic() - started
    buckets = ["arith 1-2", "arith 3-5", "arith 6-8", "countdown"]
    results = table(outcomes, ["learned", "learned+logic"], buckets)
    figure = accuracy_compute_figure(results, RESULTS / "reasoning.png")
    (RESULTS / "reasoning.json").write_text(json.dumps(
        {"results": results, "phases": phases, "outcomes": [asdict(o) for o in outcomes]}))
    (RESULTS / "reasoning.md").write_text(report(results, phases, args, wall, buckets, figure))
    print((RESULTS / "reasoning.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reasoning",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, HELD_OUT_SEED)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
