"""Requests as a new user sends them (no temperature, no seed, no verifiers): what they get from a
checkout of the server, against the same requests at temperature 0.

    python -m benchmarks.studies.default_options run --out /tmp/after.json [--checkout DIR]
    python -m benchmarks.studies.default_options compare /tmp/before.json /tmp/after.json \\
        --labels caa6400 main --md benchmarks/studies/results/default_temperature.md

`run` serves the demo model from `--checkout` (default: this one; another commit's worktree
for a before/after) and sends, for benchmarks.reasoning's held-out problems: a named greedy
pass, a `low` effort, and a request with no `reasoning` at all (the server's default, auto),
each with `temperature` left out and with `temperature: 0`. `compare` sets two runs side by side:
accuracy, mean generated tokens, and the problems whose answer differs between the unset
temperature and 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path

# (name, reasoning object or None, top-level fields); None values leave the field out
CONFIGS: list[tuple[str, dict | None, dict]] = [
    ("greedy", {"strategy": "greedy"}, {}),
    ("effort low", None, {"reasoning_effort": "low"}),
    ("auto (no reasoning)", None, {}),
]
TEMPERATURES = {"unset": {"temperature": None}, "0": {"temperature": 0}}


async def run(args: argparse.Namespace) -> None:
    from benchmarks.harness.chat import run_config
    from benchmarks.harness.problems import load_problems
    from benchmarks.harness.servers import UNBOUNDED_ADMISSION
    from tests.servers import free_port, running_server

    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    checkout = Path(args.checkout).resolve()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", str(checkout / args.model),
               "--port", str(port), "--log-level", "warning"]
    found = {}
    with running_server(command, port, Path(args.out).with_suffix(".log"), cwd=checkout) as url:
        for name, reasoning, fields in CONFIGS:
            for label, temperature in TEMPERATURES.items():
                rows, phase = await run_config(url, problems, name, reasoning, "default",
                                               args.concurrency, fields={**fields, **temperature})
                key = f"{name} / temperature {label}"
                found[key] = {"phase": phase, "outcomes": [
                    [o.problem, o.correct, o.completion_tokens, o.strategy] for o in rows]}
                print(f"{key}: accuracy {sum(o.correct for o in rows) / len(rows):.3f} "
                      f"tokens {statistics.fmean(o.completion_tokens for o in rows):.1f}",
                      flush=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "configs": found}) + "\n")


def _summary(outcomes: list) -> str:
    accuracy = sum(o[1] for o in outcomes) / len(outcomes)
    return f"{accuracy:.1%} | {statistics.fmean(o[2] for o in outcomes):.0f}"


def compare(args: argparse.Namespace) -> str:
    runs = [json.loads(Path(p).read_text()) for p in (args.before, args.after)]
    n = len(next(iter(runs[0]["configs"].values()))["outcomes"])
    lines = [f"# Default options: {args.labels[0]} against {args.labels[1]}", "",
             f"{n} held-out problems of benchmarks.reasoning, requests as a new user sends them "
             "(no seed, no verifiers: the server's defaults), `temperature` left out or 0. "
             "Command: `python -m benchmarks.studies.default_options run` in each checkout, "
             "then `compare`.", "",
             f"| config | {args.labels[0]}: accuracy | tokens | {args.labels[1]}: accuracy | "
             "tokens | answers unset != 0 (before, after) |", "|---|---|---|---|---|---|"]
    for key in runs[0]["configs"]:
        cells, changed = [], []
        for run_ in runs:
            outcomes = run_["configs"][key]["outcomes"]
            cells.append(_summary(outcomes))
            zero = run_["configs"][key.replace("temperature unset", "temperature 0")]["outcomes"]
            changed.append(sum(a[1] != b[1] or a[2] != b[2] for a, b in zip(outcomes, zero)))
        lines.append(f"| {key} | {cells[0]} | {cells[1]} | "
                     + ("" if "unset" not in key else f"{changed[0]}, {changed[1]}") + " |")
    lines += ["", "'answers unset != 0': problems whose correctness or token count differs "
              "between the same request with `temperature` left out and at 0."]
    text = "\n".join(lines) + "\n"
    if args.md:
        Path(args.md).write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    from benchmarks.studies.before_after import two_checkouts_parser

    parser, runner = two_checkouts_parser("python -m benchmarks.studies.default_options",
                                          __doc__)
    runner.add_argument("--checkout", default=".", help="the checkout whose server answers")
    args = parser.parse_args(argv)
    if args.command == "run":
        asyncio.run(run(args))
    else:
        print(compare(args))


if __name__ == "__main__":
    main()
