"""The same reasoning configs on two checkouts of Deliberate: did a change move the demo figures?

    # in each checkout (the server and benchmarks.reasoning of that checkout run):
    python -m benchmarks.studies.before_after run --out /tmp/before.json \\
        [--configs beam/3 mcts/5 ...]
    # then, anywhere:
    python -m benchmarks.studies.before_after compare /tmp/before.json /tmp/after.json \\
        --labels 8434cba main --md benchmarks/studies/results/NAME.md

`run` serves the checkout's demo model and sends benchmarks.reasoning's requests for the chosen
configs (learned verifiers, seed 1, the same held-out problems) one config at a time, recording
per problem whether it was solved and the tokens it took, and per config the prefix-cache hit
rate. `compare` puts both side by side, with the problems whose outcome changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path

DEFAULT_CONFIGS = ("greedy", "beam/3", "mcts/5", "tot")


async def run(args: argparse.Namespace) -> None:
    from benchmarks.harness.chat import CONFIGS, LEARNED, run_config
    from benchmarks.harness.problems import load_problems
    from benchmarks.harness.servers import UNBOUNDED_ADMISSION
    from tests.servers import free_port, running_server

    chosen = {name: reasoning for name, reasoning, _ in CONFIGS if name in args.configs}
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model, "--port", str(port),
               "--max-n", "16", "--log-level", "warning", "--default-strategy", "auto"]
    found = {}
    with running_server(command, port, Path(args.out).with_suffix(".log")) as url:
        for name in args.configs:
            rows, phase = await run_config(url, problems, name,
                                           {**chosen[name], "verifiers": LEARNED, "seed": 1},
                                           "learned", args.concurrency)
            found[name] = {"phase": phase,
                           "outcomes": [[o.problem, o.correct, o.completion_tokens]
                                        for o in rows]}
            print(f"{name}: accuracy {sum(o.correct for o in rows) / len(rows):.3f} "
                  f"tokens {statistics.fmean(o.completion_tokens for o in rows):.1f} "
                  f"prefix-cache {phase['prefix_cache_hit_rate']}", flush=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "configs": found}) + "\n")


def summary(config: dict) -> tuple[float, float, float | None]:
    outcomes = config["outcomes"]
    return (sum(c for _, c, _ in outcomes) / len(outcomes),
            statistics.fmean(t for _, _, t in outcomes), config["phase"]["prefix_cache_hit_rate"])


def compare(args: argparse.Namespace) -> str:
    before, after = (json.loads(Path(p).read_text()) for p in (args.before, args.after))
    a, b = args.labels
    n = len(next(iter(before["configs"].values()))["outcomes"])
    lines = [f"# Before and after: {a} against {b}", "",
             "`python -m benchmarks.studies.before_after` on both checkouts, "
             f"{n} held-out problems "
             f"({before['args']['per_level']} per arithmetic level and "
             f"{before['args']['countdown']} countdown, seed {before['args']['seed']}+), learned "
             "verifiers, seed 1, concurrency " f"{before['args']['concurrency']}.", "",
             f"| config | accuracy {a} | accuracy {b} | tokens {a} | tokens {b} | "
             f"prefix-cache hit rate {a} | {b} | problems changed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in before["configs"]:
        if name not in after["configs"]:
            continue
        x, y = before["configs"][name], after["configs"][name]
        (acc0, tok0, hit0), (acc1, tok1, hit1) = summary(x), summary(y)
        changed = sum(p != q for p, q in zip(x["outcomes"], y["outcomes"]))
        lines.append(f"| {name} | {acc0:.1%} | {acc1:.1%} | {tok0:.1f} | {tok1:.1f} | {hit0} | "
                     f"{hit1} | {changed} |")
    lines += ["", "A problem counts as changed when its outcome or its token count differs."]
    text = "\n".join(lines) + "\n"
    if args.md:
        Path(args.md).write_text(text)
    return text


def two_checkouts_parser(prog: str, doc: str) -> tuple[argparse.ArgumentParser,
                                                      argparse.ArgumentParser]:
    """A study's command line for `run` in each checkout then `compare` (shared with
    default_options): the parser, and its `run` subparser to add the study's own flags to."""
    from benchmarks.harness.problems import HELD_OUT_SEED, add_run_arguments

    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run")
    add_run_arguments(runner, HELD_OUT_SEED)
    runner.add_argument("--out", required=True)
    comparer = sub.add_parser("compare")
    comparer.add_argument("before")
    comparer.add_argument("after")
    comparer.add_argument("--labels", nargs=2, default=["before", "after"])
    comparer.add_argument("--md", default=None)
    return parser, runner


def main(argv: list[str] | None = None) -> None:
    parser, runner = two_checkouts_parser("python -m benchmarks.studies.before_after", __doc__)
    runner.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    args = parser.parse_args(argv)
    if args.command == "run":
        asyncio.run(run(args))
    else:
        print(compare(args))


if __name__ == "__main__":
    main()
