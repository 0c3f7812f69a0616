"""GRPO post-training of a LoRA adapter of the policy, against an exact, learned or mixed reward.

    python -m training.rl --config training/configs/rl_demo.yaml [--reward prm --max-steps 40 ...]

TRL's GRPOTrainer samples `--num-generations` completions per prompt (transformers `generate`),
scores them with the reward (`--reward`: exact, orm, prm, process, syntax, logic, or a weighted
mix such as `exact:0.5,prm:0.5`; see training/components/rl_rewards.py), and moves the adapter
toward the completions that beat their group's mean, with a KL penalty (`--beta`) to the base
model (the adapter switched off). `--credit step` gives the step-level rewards per-step credit
(training/components/process_grpo.py). Prompts are demo-task problems, `--dataset
task:SELECTOR:COUNT[:WEIGHT]`, from the `rl` seed stream; `--filter-samples K` keeps only those
the starting policy solves sometimes but not always in K samples (training/components/
solve_rates.py).

Every `--guard-every` steps the reward-hacking guard (training/components/hacking_guard.py)
answers `--guard-problems` held-out prompts per task greedily and logs the proxy reward beside
the exact checker's accuracy; when the proxy rises while exact accuracy falls it rolls back to
the best checkpoint and stops (`--guard-action`). `--keep best` saves the checkpoint of best
held-out exact accuracy even when the guard did not fire (model selection on the guard's prompts).

Writes a PEFT adapter that the server loads like any other, a manifest (the reward, the guard's
history, the before/after numbers) and `rl_log.jsonl` (the trainer's log) beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from training.components.hacking_guard import ACTIONS
from training.components.peft import adapter_parser, lora_config, run_recipe, save_adapter
from training.components.rl_rewards import (PROCESS_PARTS, REWARDS, missing_reward_models,
                                             parse_weights)
from training.components.trainer import time_limit

PATH_AGGREGATIONS = ("min", "mean", "product", "last")


def build_parser() -> argparse.ArgumentParser:
    p = adapter_parser("python -m training.rl", __doc__.splitlines()[0])
    p.add_argument("--reward", default="exact",
                   help=f"reward, or weighted mix NAME:W,NAME:W of {list(REWARDS)}")
    p.add_argument("--process-weights", default="syntax:0.3,prm:0.5,logic:0.2",
                   help=f"the `process` reward's per-step weighted sum of {list(PROCESS_PARTS)}")
    p.add_argument("--aggregation", choices=PATH_AGGREGATIONS, default="min",
                   help="how a step-level reward's step scores make the completion's reward")
    p.add_argument("--credit", choices=("sequence", "step"), default="sequence",
                   help="step: per-step advantages for the step-level rewards (prm, process, "
                        "syntax, logic); sequence: one reward per completion")
    p.add_argument("--prm", default="models/demo/adapters/prm", help="the PRM adapter")
    p.add_argument("--orm", default="models/demo/adapters/orm", help="the ORM adapter")
    p.add_argument("--num-generations", type=int, default=8, help="completions per prompt")
    p.add_argument("--max-completion-length", type=int, default=160)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=0.04, help="KL penalty to the base model")
    p.add_argument("--loss-type", default="dapo", help="TRL's GRPO loss (grpo, dr_grpo, dapo, ...)")
    p.add_argument("--filter-samples", type=int, default=0,
                   help="sample K completions of each prompt with the starting policy before "
                        "training and keep only those solved sometimes but not always (DAPO's "
                        "dynamic sampling, ahead of time; 0: keep all)")
    p.add_argument("--logging-steps", type=int, default=5)
    p.add_argument("--guard-every", type=int, default=5,
                   help="steps between the guard's held-out checks (0: no guard)")
    p.add_argument("--guard-problems", type=int, default=32,
                   help="held-out prompts per task selector of --dataset")
    p.add_argument("--guard-tolerance", type=float, default=0.05,
                   help="how far the proxy must rise, and exact accuracy fall, against the best "
                        "checkpoint")
    p.add_argument("--guard-patience", type=int, default=2,
                   help="checks in a row that must show it before the guard fires")
    p.add_argument("--guard-action", choices=ACTIONS, default="rollback")
    p.add_argument("--keep", choices=("last", "best"), default="last",
                   help="the adapter saved: the last weights, or those of the guard's check of "
                        "best exact accuracy (needs the guard)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: this tiny model's ops are too small to share, and "
                        "on a busy machine more threads spin-wait; see the README)")
    p.add_argument("--time-limit-min", type=float, default=0, help="stop after this (0: none)")
    p.set_defaults(lr=5e-4, batch_size=32, max_steps=40, max_length=512, eval_count=100)
    return p


def rl_problems(args: argparse.Namespace) -> list[str]:
    """What the RL flags refuse, each message naming the fix."""
    problems = []
    parsed = []
    for flag, spec, allowed in (("--reward", args.reward, REWARDS),
                                ("--process-weights", args.process_weights, PROCESS_PARTS)):
        try:
            parsed.append(parse_weights(spec, allowed, flag))
        except ValueError as exc:
            problems.append(str(exc))
    if len(parsed) == 2:
        problems += missing_reward_models(*parsed, {"prm": args.prm, "orm": args.orm})
    bad = [spec for spec in args.dataset or [] if not spec.startswith("task:")]
    if bad:
        problems.append(f"--dataset {bad}: RL needs checkable prompts, give demo-task "
                        "problems as task:SELECTOR:COUNT")
    if args.batch_size % args.num_generations:
        problems.append(f"--batch-size {args.batch_size} must be a multiple of "
                        f"--num-generations {args.num_generations} (whole groups per step)")
    if args.keep == "best" and args.guard_every <= 0:
        problems.append("--keep best picks among the guard's checks: give --guard-every N > 0")
    if args.filter_samples == 1 or args.filter_samples < 0:
        problems.append("--filter-samples must be 0 (off) or at least 2: a prompt is kept when "
                        "some of its K samples are solved and some are not")
    if args.num_generations < 2:
        problems.append("--num-generations must be at least 2: GRPO compares completions")
    return problems


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_parser(), train, argv, extra_checks=rl_problems)


def prompt_rows(specs: list[str], stream: str, seed: int, count: int | None = None) -> list[dict]:
    """Demo-task problems as GRPO rows (prompt + the columns the rewards read), by spec."""
    from training.components.problems import draw_problems
    from training.components.sft_data import DatasetSpec
    from training.tasks import completion_prompt

    rows = []
    for spec in map(DatasetSpec.parse, specs):
        for p in draw_problems([spec.task], stream, seed, count or spec.count):
            rows.append({"prompt": completion_prompt(p), "question": p.prompt, "task": p.task,
                         "answer": p.answer, "difficulty": p.difficulty, "pid": p.id,
                         "weight": spec.weight})
    return rows


def filter_informative(rows: list[dict], args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The rows whose prompts the starting policy solves sometimes (training/components/
    solve_rates.py), and what was dropped; refuses to train on none."""
    from training.components.solve_rates import informative, measure_in_child

    started = time.perf_counter()
    print(f"filtering {len(rows)} prompts: {args.filter_samples} samples each", file=sys.stderr,
          flush=True)
    solved = measure_in_child(args.model, rows, args.filter_samples, args.temperature,
                              args.max_completion_length, args.seed)
    kept, counts = informative(rows, solved, args.filter_samples)
    print(f"kept {len(kept)} of {len(rows)} prompts: {json.dumps(counts)}", file=sys.stderr,
          flush=True)
    if not kept:
        raise SystemExit(f"--filter-samples {args.filter_samples}: no prompt is solved sometimes "
                         f"but not always ({json.dumps(counts)}); give easier or harder tasks, "
                         "more samples, or drop the filter")
    return kept, {"samples": args.filter_samples, "tasks": counts,
                  "seconds": round(time.perf_counter() - started, 1)}


def weighted_dataset(rows: list[dict], seed: int):
    """The rows as a dataset, each spec's share drawn by its weight (as `training.lora` mixes)."""
    from datasets import Dataset, interleave_datasets

    weights = sorted({row["weight"] for row in rows})
    if len(weights) == 1:
        return Dataset.from_list(rows).remove_columns("weight").shuffle(seed=seed)
    parts = [Dataset.from_list([r for r in rows if r["weight"] == w]).remove_columns("weight")
             for w in weights]
    return interleave_datasets(parts, probabilities=[w / sum(weights) for w in weights],
                               seed=seed, stopping_strategy="all_exhausted")


def train(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.components.accuracy import greedy_accuracy
    from training.components.generation import greedy_completions
    from training.components.hacking_guard import RewardHackingGuard
    from training.components.process_grpo import process_trainer_class
    from training.components.rl_rewards import ExactReward, build_rewards, episodes, mixed

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    weights = parse_weights(args.reward, REWARDS, "--reward")
    process_weights = parse_weights(args.process_weights, PROCESS_PARTS, "--process-weights")
    rewards = build_rewards(weights, process_weights, args.aggregation, args.model,
                            {"prm": args.prm, "orm": args.orm})
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    metrics: dict[str, float] = {}
    if args.eval_task:
        metrics["accuracy_base"] = greedy_accuracy(model, tokenizer, args.eval_task,
                                                   args.eval_count, args.eval_seed)
    rows, filtered = prompt_rows(args.dataset, "rl", args.seed), None
    if args.filter_samples:
        rows, filtered = filter_informative(rows, args)
    dataset = weighted_dataset(rows, args.seed)

    step_level = args.credit == "step"
    trl_weights = [0.0 if step_level and r.step_level else weights[r.__name__] for r in rewards]
    trainer_class = process_trainer_class()
    extra = ({"step_rewards": [(r, weights[r.__name__]) for r in rewards if r.step_level]}
             if step_level else {"step_rewards": []})
    # TRL wraps the model in the LoRA itself, so that its KL reference is the base model (the
    # adapter switched off); given a PeftModel it would copy the adapter as a "ref" adapter,
    # which costs the same and would be saved beside the trained one.
    trainer = trainer_class(model=model, reward_funcs=rewards, args=grpo_config(args, trl_weights),
                            train_dataset=dataset, processing_class=tokenizer,
                            peft_config=lora_config(model, args), **extra)

    guard = None
    if args.guard_every > 0:
        held_out = prompt_rows(args.dataset, "rl_guard", args.seed, args.guard_problems)
        columns = {k: [row[k] for row in held_out] for k in held_out[0] if k != "prompt"}
        exact_reward = ExactReward()

        def evaluate(policy) -> tuple[float, float, float]:
            texts = greedy_completions(policy, tokenizer, [r["prompt"] for r in held_out],
                                       max_new_tokens=args.max_completion_length)
            batch = episodes(texts, columns)
            proxy, _ = mixed(rewards, weights, batch)
            exact = exact_reward.score(batch)
            tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
            return (sum(proxy) / len(proxy), sum(exact) / len(exact),
                    sum(tokens) / len(tokens))

        log_path = Path(args.out) / "guard.jsonl"
        Path(args.out).mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
        guard = RewardHackingGuard(trainer.model, evaluate, args.guard_every,
                                   args.guard_tolerance, args.guard_patience, args.guard_action,
                                   log_path, keep_best=args.keep == "best")
        trainer.add_callback(guard)
    if args.time_limit_min:
        trainer.add_callback(time_limit(args.time_limit_min))

    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    if args.eval_task:
        metrics["accuracy_adapter"] = greedy_accuracy(trainer.model, tokenizer, args.eval_task,
                                                      args.eval_count, args.eval_seed)
    log = [mix_reward(entry, weights) for entry in trainer.state.log_history
           if "reward" in entry]
    if guard is not None:
        first, kept = guard.report.history[0], _kept_point(guard)
        metrics.update(heldout_proxy_start=first.proxy, heldout_exact_start=first.exact,
                       heldout_proxy=kept.proxy, heldout_exact=kept.exact)
    train_info = {
        "rows": len(dataset), "filter": filtered, "steps": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "reward": weights, "process_weights": process_weights if "process" in weights else None,
        "aggregation": args.aggregation, "credit": args.credit, "beta": args.beta,
        "num_generations": args.num_generations, "temperature": args.temperature,
        "first_reward": log[0] if log else None, "last_reward": log[-1] if log else None,
        "guard": guard.report.as_dict() if guard else None}
    manifest = save_adapter(trainer.model, args, list(args.dataset), train_info, metrics,
                            "training.rl")
    with (Path(args.out) / "rl_log.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(entry) + "\n" for entry in trainer.state.log_history)
    print(f"adapter written to {args.out}: {json.dumps(metrics)}")
    return manifest


def mix_reward(entry: dict, weights: dict[str, float]) -> float:
    """The mix's reward in a trainer log entry: the weighted sum of each reward's mean. (TRL's
    own `reward` leaves out the step-level rewards under --credit step, which enter it with
    weight 0.)"""
    return sum(w * entry[f"rewards/{name}/mean"] for name, w in weights.items())


def _kept_point(guard):
    """The guard's check of the weights that were saved (the best one after a rollback)."""
    report = guard.report
    step = report.rolled_back_to if report.rolled_back_to is not None else report.history[-1].step
    return next(p for p in report.history if p.step == step)


def grpo_config(args: argparse.Namespace, reward_weights: list[float]):
    import torch
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="rl-"), per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, num_generations=args.num_generations,
        max_completion_length=args.max_completion_length, temperature=args.temperature,
        beta=args.beta, loss_type=args.loss_type, learning_rate=args.lr,
        lr_scheduler_type="constant", max_steps=args.max_steps, num_train_epochs=args.epochs,
        seed=args.seed, logging_steps=args.logging_steps, save_strategy="no", report_to=[],
        reward_weights=reward_weights, use_cpu=not torch.cuda.is_available(),
        disable_tqdm=False, dataloader_num_workers=0)


if __name__ == "__main__":
    sys.exit(main())
