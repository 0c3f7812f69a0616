"""What RL post-training buys with each reward: greedy accuracy before and after GRPO
(`training.rl`) per task on held-out problems, with tokens per answer, and the reward-hacking
curve (the training reward on held-out prompts against exact accuracy, over training).

    python -m benchmarks.rl [--quick] [--rewards exact,orm,prm,process,mix] [--steps 40]

Each reward trains its own adapter from the demo base with the config
training/configs/rl_demo.yaml (in-process, one after the other; the guard runs with
`--guard-action log`, so the whole curve is recorded and the step at which the guard would have
fired is reported). The evaluation problems come from the evaluation seed stream (600_000+),
apart from the training (`rl`) and guard (`rl_guard`) prompts. Greedy answers are generated with
transformers in-process (no server needed).

Writes OUT_DIR/rl.md and rl.json (default benchmarks/results; with --quick, runs/bench_rl_quick,
since a quick run's numbers are a smoke test, not a result). Not measured here yet: the search
strategies on top of the best RL adapter.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from training import rl
from training.components.problems import selector_problems
from training.tasks import completion_prompt, get_task

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
CONFIG = ROOT / "training" / "configs" / "rl_demo.yaml"
SEED = 600_000  # evaluation stream (training.components.seeds: "rl 600_000+")
REWARDS = {
    "exact": "exact",
    "orm": "orm",
    "prm": "prm",
    "process": "process",  # per step 0.3 syntax + 0.5 PRM + 0.2 logic (--process-weights)
    "mix": "exact:0.5,prm:0.5",
}
TASKS = ("arithmetic/3-8", "countdown")


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


def train_flags(args: argparse.Namespace, name: str, out: Path) -> list[str]:
    flags = ["--config", str(CONFIG), "--reward", REWARDS[name], "--out", str(out),
             "--max-steps", str(args.steps), "--guard-every", str(args.guard_every),
             "--guard-problems", str(args.guard_problems), "--guard-action", "log",
             "--time-limit-min", str(args.time_limit_min)]
    if args.quick:
        flags += ["--batch-size", "4", "--num-generations", "2", "--max-completion-length", "48",
                  "--logging-steps", "1", "--dataset", "task:arithmetic/3-8:32",
                  "--dataset", "task:countdown:32"]
    return flags


def report(results: dict, args: argparse.Namespace) -> str:
    lines = [f"# RL post-training ({'quick smoke run' if args.quick else 'benchmark'})", "",
             f"{results['date']}, {results['machine']}. {args.steps} GRPO steps per reward "
             f"(training/configs/rl_demo.yaml), {args.eval_problems} held-out problems per task "
             f"(seed {SEED}).", "",
             "| reward | task | accuracy before | after | tokens before | after |",
             "|---|---|---|---|---|---|"]
    base = results["base"]
    for name, run in results["runs"].items():
        for selector, after in run["eval"].items():
            before = base[selector]
            lines.append(f"| {name} | {selector} | {before['accuracy']:.3f} | "
                         f"{after['accuracy']:.3f} | {before['tokens']:.1f} | "
                         f"{after['tokens']:.1f} |")
    lines += ["", "## Reward-hacking curves (held-out proxy reward against exact accuracy)", ""]
    for name, run in results["runs"].items():
        guard = run["guard"]
        fired = guard["fired_at"]
        lines += [f"### {name} ({REWARDS[name]})"
                  + (f": the guard would fire at step {fired}" if fired is not None else ""),
                  "", "| step | proxy | exact | divergence | tokens |", "|---|---|---|---|---|"]
        lines += [f"| {p['step']} | {p['proxy']:.3f} | {p['exact']:.3f} | "
                  f"{p['divergence']:+.3f} | {p['tokens']:.1f} |" for p in guard["history"]]
        lines.append("")
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench_rl")
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    quick = args.quick
    for flag, full, small in (("steps", 40, 2), ("guard_every", 5, 1), ("guard_problems", 32, 2),
                              ("eval_problems", 100, 4)):
        if getattr(args, flag) is None:
            setattr(args, flag, small if quick else full)
    args.out_dir = args.out_dir or (ROOT / "runs" / "bench_rl_quick" if quick else RESULTS)
    names = [n.strip() for n in args.rewards.split(",") if n.strip()]
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        parser.error(f"--rewards {unknown}: choose from {list(REWARDS)}")

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = str(ROOT / "models" / "demo" / "base")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
               "quick": quick, "steps": args.steps, "runs": {}}
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    results["base"] = evaluation(base, tokenizer, args.eval_problems, args.max_new_tokens)
    print(f"base: {json.dumps(results['base'])}", flush=True)
    for name in names:
        out = args.runs_dir / name
        started = time.perf_counter()
        rl.main(train_flags(args, name, out))
        manifest = json.loads((out / "deliberate_manifest.json").read_text())
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), str(out))
        results["runs"][name] = {
            "reward": REWARDS[name], "adapter": str(out),
            "seconds": round(time.perf_counter() - started, 1),
            "first_reward": manifest["train"]["first_reward"],
            "last_reward": manifest["train"]["last_reward"],
            "guard": manifest["train"]["guard"],
            "eval": evaluation(model, tokenizer, args.eval_problems, args.max_new_tokens)}
        print(f"{name}: {json.dumps(results['runs'][name]['eval'])}", flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "rl.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "rl.md").write_text(report(results, args))
    print(f"written {args.out_dir / 'rl.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
