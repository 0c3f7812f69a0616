"""What RL post-training buys with each reward: greedy accuracy before and after GRPO
(`training.rl`) per task on held-out problems, with tokens per answer; the reward-hacking
curve (the training reward on held-out prompts against exact accuracy, over training); and the
search strategies on top of the best RL adapter (does RL plus search beat either alone?).

    python -m benchmarks.rl [--quick] [--rewards exact,orm,prm,prm_step,process,mix] [--steps 40]

Each reward trains its own adapter from the demo base with the config
training/configs/rl_demo.yaml (in-process, one after the other; the guard runs with
`--guard-action log --keep best`: the whole curve is recorded, the step at which the guard would
have fired is reported, and the adapter kept is that of the guard's check of best held-out exact
accuracy, its step in the table; step 0 is the base itself). The evaluation problems come from
the evaluation seed stream (600_000+), apart from the training (`rl`) and guard (`rl_guard`)
prompts. Greedy answers are generated with transformers in-process.

Then one server (the demo model with its PRM and ORM, and the best adapter, the one of highest
mean accuracy over the tasks among those kept at a step after 0, loaded as `rl`) answers
`--search-problems` of the same held-out problems per task with each of SEARCH_CONFIGS, once with
`model` the base and once the adapter, through the HTTP API with the learned verifiers
(benchmarks.reasoning's requests).

Writes OUT_DIR/rl.md and rl.json (default benchmarks/results; with --quick, runs/bench_rl_quick,
since a quick run's numbers are a smoke test, not a result). `--report-only` re-renders rl.md
from rl.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import CONFIGS, LEARNED, run_config, summarize
from benchmarks.harness.plots import rl_curves_figure
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server
from training import rl
from training.components.problems import parse_selector, selector_problems
from training.tasks import completion_prompt, get_task

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
CONFIG = ROOT / "training" / "configs" / "rl_demo.yaml"
SEED = 600_000  # evaluation stream (training.components.seeds: "rl 600_000+")
REWARDS = {
    "exact": "exact",
    "orm": "orm",
    "prm": "prm",
    "prm_step": "prm",  # the same reward, per-step credit (--credit step)
    "process": "process",  # per step 0.3 syntax + 0.5 PRM + 0.2 logic (--process-weights)
    "mix": "exact:0.5,prm:0.5",
}
STEP_CREDIT = ("prm_step",)
TASKS = ("arithmetic/3-8", "countdown")
SEARCH_CONFIGS = ("greedy", "beam/3", "mcts/5", "tot")  # benchmarks.reasoning's, by name
ADAPTER_NAME = "rl"


def evaluation(model, tokenizer, count: int, max_new_tokens: int) -> dict[str, dict]:
    """Greedy accuracy and mean tokens per answer on `count` held-out problems per task."""
    from training.components.generation import greedy_completions

    found = {}
    for selector in TASKS:
        problems = selector_problems(selector, SEED, count)
        task = get_task(problems[0].task)
        texts = greedy_completions(model, tokenizer, [completion_prompt(p) for p in problems],
                                   max_new_tokens=max_new_tokens)
        tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        found[selector] = {"problems": len(problems),
                           "accuracy": sum(map(task.check, problems, texts)) / len(problems),
                           "tokens": sum(tokens) / len(tokens)}
    return found


def best_adapter(results: dict) -> str | None:
    """The reward whose adapter has the highest mean greedy accuracy over the tasks, among
    those that kept a trained checkpoint (an adapter kept at step 0 is the base itself); None
    when every run kept step 0."""
    runs = {name: run for name, run in results["runs"].items() if kept_step(run) > 0}
    return max(runs, default=None, key=lambda name: statistics.fmean(
        e["accuracy"] for e in runs[name]["eval"].values()))


async def search_phase(adapter: Path, args: argparse.Namespace) -> dict:
    """Each of SEARCH_CONFIGS on the base and on `adapter`, through one server: per model and
    config, per task benchmarks.reasoning's summary (accuracy, mean completion tokens, ...) and
    the wall time of the config."""
    problems = [p for selector in TASKS
                for p in selector_problems(selector, SEED, args.search_problems)]
    chosen = {name: reasoning for name, reasoning, _ in CONFIGS if name in SEARCH_CONFIGS}
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", str(ROOT / "models" / "demo" /
               "base"), "--port", str(port), "--max-n", "16", "--log-level", "warning",
               "--adapter-roots", str(ROOT / "models"), str(adapter.parent.resolve()),
               "--lora-modules", f"{ADAPTER_NAME}={adapter.resolve()}"]
    found: dict[str, dict] = {}
    with running_server(command, port, args.runs_dir / "search-server.log") as url:
        for model in ("demo", ADAPTER_NAME):
            for name in SEARCH_CONFIGS:
                rows, phase = await run_config(url, problems, name,
                                               {**chosen[name], "verifiers": LEARNED, "seed": 1},
                                               "learned", args.concurrency, model=model)
                per_task = {selector: summarize([o for o in rows
                                                 if o.task == parse_selector(selector)[0]])
                            for selector in TASKS}
                found.setdefault(model, {})[name] = {"tasks": per_task, "wall_s": phase["wall_s"]}
                print(f"search {model} {name}: {json.dumps(per_task)}", flush=True)
    return found


def train_flags(args: argparse.Namespace, name: str, out: Path) -> list[str]:
    flags = ["--config", str(CONFIG), "--reward", REWARDS[name], "--out", str(out),
             "--max-steps", str(args.steps), "--guard-every", str(args.guard_every),
             "--guard-problems", str(args.guard_problems), "--guard-action", "log",
             "--keep", "best", "--credit", "step" if name in STEP_CREDIT else "sequence",
             "--time-limit-min", str(args.time_limit_min)]
    if args.quick:
        flags += ["--batch-size", "4", "--num-generations", "2", "--max-completion-length", "48",
                  "--logging-steps", "1", "--dataset", "task:arithmetic/3-8:32",
                  "--dataset", "task:countdown:32"]
    return flags


def trained_when(results: dict) -> str:
    """Which adapters an earlier run trained (--reuse) and when, from their manifests."""
    reused = {name: run["trained_at"] for name, run in results["runs"].items()
              if run.get("reused")}
    if not reused:
        return ""
    return (f" Adapters trained by an earlier run with the same settings (--reuse), then "
            f"evaluated here: {', '.join(f'{n} at {t}' for n, t in reused.items())}.")


def report(results: dict, args: argparse.Namespace) -> str:
    lines = [f"# RL post-training ({'quick smoke run' if args.quick else 'benchmark'})", "",
             f"{results['date']}, {results['machine']}. {args.steps} GRPO steps per reward "
             f"(training/configs/rl_demo.yaml), {args.eval_problems} held-out problems per task "
             f"(seed {SEED})." + trained_when(results), "",
             "| reward | task | kept step | accuracy before | after | tokens before | after |",
             "|---|---|---|---|---|---|---|"]
    base = results["base"]
    for name, run in results["runs"].items():
        kept = kept_step(run)
        for selector, after in run["eval"].items():
            before = base[selector]
            lines.append(f"| {name} | {selector} | {kept} | {before['accuracy']:.3f} | "
                         f"{after['accuracy']:.3f} | {before['tokens']:.1f} | "
                         f"{after['tokens']:.1f} |")
    lines += ["", "## Reward-hacking curves (held-out proxy reward against exact accuracy)", "",
              "![curves](rl.png)", ""]
    for name, run in results["runs"].items():
        guard = run["guard"]
        fired = guard["fired_at"]
        label = REWARDS[name] + (", per-step credit" if name in STEP_CREDIT else "")
        lines += [f"### {name} ({label})"
                  + (f": the guard would fire at step {fired}" if fired is not None else ""),
                  "", "| step | proxy | exact | divergence | tokens |", "|---|---|---|---|---|"]
        lines += [f"| {p['step']} | {p['proxy']:.3f} | {p['exact']:.3f} | "
                  f"{p['divergence']:+.3f} | {p['tokens']:.1f} |" for p in guard["history"]]
        lines.append("")
    if results.get("search"):
        lines += search_report(results, args)
    elif "best" in results and results["best"] is None:
        lines += ["## Search on top of the best RL adapter", "",
                  "Not run: every run kept step 0 (the base itself), so there is no RL adapter "
                  "to search on.", ""]
    lines += findings(results)
    return "\n".join(lines) + "\n"


def kept_step(run: dict) -> int:
    """The step of the adapter that was saved: the guard's best check, or the last one."""
    guard = run["guard"]
    return guard["history"][-1]["step"] if guard.get("rolled_back_to") is None \
        else guard["rolled_back_to"]


def findings(results: dict) -> list[str]:
    """What the tables show, in words: per task the best change against the base beside the
    noise of that many problems, the runs whose guard kept the base, and the divergence of the
    learned proxies."""
    base, runs = results["base"], results["runs"]
    trained = [name for name, run in runs.items() if kept_step(run) > 0]
    lines = ["## What it shows", ""]
    for selector, before in base.items():
        acc, n = before["accuracy"], before["problems"]
        noise = f"one standard error on {n} problems is {(acc * (1 - acc) / n) ** 0.5:.3f}"
        delta = {name: runs[name]["eval"][selector]["accuracy"] - acc for name in trained}
        if not delta:
            lines.append(f"- {selector}: base {acc:.3f}; no run kept a trained checkpoint; {noise}.")
            continue
        best = max(delta, key=delta.get)
        lines.append(f"- {selector}: base {acc:.3f}; best trained adapter {best} "
                     f"{acc + delta[best]:.3f} ({delta[best]:+.3f}), the trained adapters "
                     f"{min(delta.values()):+.3f} to {max(delta.values()):+.3f}; {noise}.")
    at_base = [name for name, run in runs.items() if kept_step(run) == 0]
    if at_base:
        lines.append(f"- The guard's check of best held-out exact accuracy was step 0, the base "
                     f"itself, for {', '.join(at_base)}: no checkpoint of those runs beat it.")
    for name, run in runs.items():
        history = run["guard"]["history"]
        if all(abs(p["proxy"] - p["exact"]) < 1e-9 for p in history):
            continue  # the exact reward is its own checker
        peak = max(history, key=lambda p: p["divergence"])
        fired = run["guard"]["fired_at"]
        lines.append(f"- {name}: proxy {history[0]['proxy']:.3f} -> {history[-1]['proxy']:.3f} "
                     f"while exact {history[0]['exact']:.3f} -> {history[-1]['exact']:.3f}; "
                     f"largest divergence {peak['divergence']:+.3f} at step {peak['step']}; "
                     + (f"the guard would fire at step {fired}." if fired is not None
                        else "the guard did not fire."))
    return lines + [""]


def search_report(results: dict, args: argparse.Namespace) -> list[str]:
    """The search table, base against the best adapter, and per task whether RL plus search
    beat both search on the base and the adapter's greedy answer."""
    best, search = results["best"], results["search"]
    base, tuned = search["demo"], search[ADAPTER_NAME]
    lines = [f"## Search on top of the best RL adapter ({best})", "",
             f"{args.search_problems} held-out problems per task through the server, `model` the "
             f"base or the adapter, learned verifiers (prm x orm), seed 1.", "",
             "| config | task | base accuracy | RL accuracy | base tokens | RL tokens |",
             "|---|---|---|---|---|---|"]
    for name in base:
        for selector, b in base[name]["tasks"].items():
            r = tuned[name]["tasks"][selector]
            lines.append(f"| {name} | {selector} | {b['accuracy']:.3f} | {r['accuracy']:.3f} | "
                         f"{b['tokens']:.1f} | {r['tokens']:.1f} |")
    lines.append("")
    searches = [name for name in base if name != "greedy"]
    for selector in base["greedy"]["tasks"]:
        acc = lambda model, name: model[name]["tasks"][selector]["accuracy"]  # noqa: E731
        both = max(searches, key=lambda n: acc(tuned, n))
        alone = max(searches, key=lambda n: acc(base, n))
        rl_alone = acc(tuned, "greedy")
        verdict = ("beats both" if acc(tuned, both) > max(acc(base, alone), rl_alone)
                   else "does not beat both")
        lines.append(f"- {selector}: RL + {both} {acc(tuned, both):.3f} against search alone "
                     f"(base + {alone}) {acc(base, alone):.3f} and RL alone (greedy) "
                     f"{rl_alone:.3f}: {verdict}.")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rl", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 steps of tiny batches, 4 problems per task")
    parser.add_argument("--rewards", default=",".join(REWARDS),
                        help=f"comma-separated subset of {list(REWARDS)}")
    parser.add_argument("--steps", type=int, default=None, help="GRPO steps (40; quick 2)")
    parser.add_argument("--guard-every", type=int, default=None, help="(5; quick 1)")
    parser.add_argument("--guard-problems", type=int, default=None, help="(32; quick 2)")
    parser.add_argument("--eval-problems", type=int, default=None, help="per task (100; quick 4)")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--time-limit-min", type=float, default=0)
    parser.add_argument("--search-problems", type=int, default=None,
                        help="held-out problems per task for the search phase (100; quick 2; "
                             "0: no search phase)")
    parser.add_argument("--concurrency", type=int, default=16, help="search requests at a time")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an adapter already trained in --runs-dir (evaluate it again)")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render OUT_DIR/rl.md from OUT_DIR/rl.json")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench_rl")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    quick = args.quick
    for flag, full, small in (("steps", 40, 2), ("guard_every", 5, 1), ("guard_problems", 32, 2),
                              ("eval_problems", 100, 4), ("search_problems", 100, 2)):
        if getattr(args, flag) is None:
            setattr(args, flag, small if quick else full)
    args.out_dir = args.out_dir or (ROOT / "runs" / "bench_rl_quick" if quick else RESULTS)
    names = [n.strip() for n in args.rewards.split(",") if n.strip()]
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        parser.error(f"--rewards {unknown}: choose from {list(REWARDS)}")

    if args.report_only:
        results = json.loads((args.out_dir / "rl.json").read_text())
        args.steps, args.quick = results["steps"], results["quick"]
        args.eval_problems = results.get("eval_problems", args.eval_problems)
        args.search_problems = results.get("search_problems", args.search_problems)
        rl_curves_figure(results["runs"], args.out_dir / "rl.png")
        (args.out_dir / "rl.md").write_text(report(results, args))
        return 0

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = str(ROOT / "models" / "demo" / "base")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
               "quick": quick, "steps": args.steps, "eval_problems": args.eval_problems,
               "search_problems": args.search_problems, "runs": {}}
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    results["base"] = evaluation(base, tokenizer, args.eval_problems, args.max_new_tokens)
    print(f"base: {json.dumps(results['base'])}", flush=True)
    for name in names:
        out = args.runs_dir / name
        reused = args.reuse and (out / "deliberate_manifest.json").exists()
        if not reused:
            rl.main(train_flags(args, name, out))
        manifest = json.loads((out / "deliberate_manifest.json").read_text())
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), str(out))
        results["runs"][name] = {
            "reward": REWARDS[name], "adapter": str(out),
            "train_seconds": manifest["train"]["seconds"], "reused": reused,
            "trained_at": datetime.fromtimestamp(
                (out / "deliberate_manifest.json").stat().st_mtime, timezone.utc).isoformat(
                timespec="minutes"),
            "first_reward": manifest["train"]["first_reward"],
            "last_reward": manifest["train"]["last_reward"],
            "guard": manifest["train"]["guard"],
            "eval": evaluation(model, tokenizer, args.eval_problems, args.max_new_tokens)}
        print(f"{name}: {json.dumps(results['runs'][name]['eval'])}", flush=True)
    results["best"] = best_adapter(results)
    if args.search_problems and results["best"]:
        results["search"] = asyncio.run(search_phase(Path(results["runs"][results["best"]]
                                                          ["adapter"]), args))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "rl.json").write_text(json.dumps(results, indent=2) + "\n")
    rl_curves_figure(results["runs"], args.out_dir / "rl.png")
    (args.out_dir / "rl.md").write_text(report(results, args))
    print(f"written {args.out_dir / 'rl.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
