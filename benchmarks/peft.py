"""The tuning methods side by side: every method on the same task, data and step budget.

    python -m benchmarks.peft [--steps 120] [--batch-size 32] [--eval-count 80] [--only lora ...]

Each method trains the demo base for countdown (the domain) from the same rows, in the same
order, for the same number of optimizer steps, through its own recipe (training.lora,
training.prompt_tuning, training.finetune) at that recipe's default learning rate. The recipe
reports greedy accuracy (transformers) on fresh countdown problems and on arithmetic (the generic
skill it was not tuned for: forgetting). Then every servable artifact is served as its manifest
says (adapter, prompt embeddings or merged model) and the same countdown problems go through the
server: served accuracy, and greedy throughput against the base model's in the same run.

Writes benchmarks/results/peft.{md,png}, and the measured table `training.recommend` cites,
training/data/peft.json (package data: the recommender finds it wherever it is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.load import run_load
from benchmarks.harness.plots import peft_figure
from benchmarks.harness.servers import ENGINE_ENV, UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server
from training.components.arguments import EVAL_SEED
from training.components.method_choice import TABLE, Situation, recommend
from training.components.problems import worked_problems
from training.tasks import completion_prompt, get_task

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BASE = "models/demo/base"
DOMAIN, GENERIC = "countdown", "arithmetic/3-5"
COUNTDOWN_ADAPTER = "models/demo/adapters/countdown"  # what a full-budget run reaches


@dataclass(frozen=True)
class Method:
    name: str
    recipe: str  # the training module
    flags: tuple[str, ...]  # besides the shared data, budget and eval flags


METHODS = (
    Method("lora", "training.lora", ("--method", "lora")),
    Method("rslora", "training.lora", ("--method", "rslora")),
    Method("dora", "training.lora", ("--method", "dora")),
    # the budget prunes 16 ranks per module to 8 on average: the same final budget as r 8
    Method("adalora", "training.lora", ("--method", "adalora", "--r", "8",
                                        "--adalora-init-r", "16")),
    Method("qlora", "training.lora", ("--method", "qlora")),
    Method("delta_lora", "training.lora", ("--method", "delta_lora")),
    Method("prompt", "training.prompt_tuning", ("--method", "prompt")),
    Method("ptuning", "training.prompt_tuning", ("--method", "ptuning")),
    Method("prefix", "training.prompt_tuning", ("--method", "prefix")),
    Method("ptuning_v2", "training.prompt_tuning", ("--method", "ptuning_v2")),
    Method("finetune", "training.finetune", ()),
    # domain-adaptive: the same step budget, a fifth of the rows generic (arithmetic)
    Method("finetune_dapt", "training.finetune", ("--dataset", "task:arithmetic/1-8:4000:0.2")),
)
LORA_FAMILY_FLAGS = ("--r", "16", "--lora-alpha", "32", "--target-modules", "all-linear",
                     "--lr", "0.003", "--server-max-rank", "16")  # lora_countdown.yaml's


def train_flags(method: Method, args: argparse.Namespace, out: Path) -> list[str]:
    rows = int(args.steps * args.batch_size / 0.98) + 1  # 2% held out for the eval loss
    domain = f"task:countdown:{rows}:0.8" if method.name == "finetune_dapt" else \
        f"task:countdown:{rows}"
    shared = ["--model", args.model, "--dataset", domain, "--out", str(out),
              "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
              "--eval-fraction", "0.02", "--eval-task", DOMAIN, "--generic-task", GENERIC,
              "--eval-count", str(args.eval_count), "--seed", "0"]
    family = list(LORA_FAMILY_FLAGS) if method.recipe == "training.lora" else []
    return [*shared, *family, *method.flags]  # the method's own last: adalora's --r wins


def train(method: Method, args: argparse.Namespace, out: Path) -> dict:
    """Runs the recipe in its own process (its peak RSS is its own) and reads its manifest.
    With --reuse, a finished run of the same command (its manifest says so) is read back."""
    log = args.work / f"{method.name}.log"
    flags = train_flags(method, args, out)
    manifest_path = out / "deliberate_manifest.json"
    if args.reuse and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["command"] == f"python -m {method.recipe} " + " ".join(flags):
            return manifest
    command = [sys.executable, "-m", method.recipe, *flags]
    with open(log, "wb") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{method.name} failed ({done.returncode}); {log}:\n{tail}")
    return json.loads(manifest_path.read_text())


def artifact_bytes(out: Path) -> int:
    """The weights a user ships: safetensors (and the prompt embeddings) only."""
    return sum(f.stat().st_size for f in out.rglob("*.safetensors"))


def row_of(method: Method, manifest: dict, out: Path, base: Path) -> dict:
    metrics = manifest["metrics"]
    after = "tuned" if method.recipe == "training.finetune" else "adapter"
    generic_before = metrics.get("generic_accuracy_base", {}).get(GENERIC)
    generic_after = metrics.get(f"generic_accuracy_{after}", {}).get(GENERIC)
    served = manifest.get("served_as", "")
    frozen = manifest.get("base_weight_bytes")  # the LoRA family counts it (4-bit for qlora)
    if frozen is None and method.recipe == "training.prompt_tuning":
        frozen = artifact_bytes(base)  # the whole base, as stored (float32)
    return {
        "method": method.name, "recipe": method.recipe,
        "served_as": {"model": "merged model"}.get(served, served),
        "trainable_parameters": manifest.get("trainable_parameters"),
        "peak_rss_mb": manifest.get("peak_rss_mb"),
        "frozen_base_bytes": frozen,
        "train_s": manifest["train"]["seconds"], "steps": manifest["train"]["steps"],
        "lr": manifest["train"]["lr"],
        "domain_accuracy_base": metrics.get("accuracy_base"),
        "domain_accuracy": metrics.get(f"accuracy_{after}"),
        "generic_accuracy_base": generic_before, "generic_accuracy": generic_after,
        "served_accuracy_hf": metrics.get("accuracy_served"),  # qlora: on the fp32 base
        "artifact_bytes": artifact_bytes(out),
        "out": str(out),
    }


# -- serving ----------------------------------------------------------------------------------


def eval_prompts(count: int) -> tuple[list, list[str]]:
    """The recipes' countdown eval problems (same selector, seed and count)."""
    problems = [p for p, _ in worked_problems(DOMAIN, EVAL_SEED, count)]
    return problems, [completion_prompt(p) for p in problems]


def bodies(model: str, prompts: list[str], max_tokens: int) -> list[dict]:
    return [{"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
            for prompt in prompts]


async def completions(url: str, model: str, prompts: list[str], concurrency: int,
                      max_tokens: int) -> list[str]:
    """Greedy completions of every prompt, in order."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        async def one(body: dict) -> str:
            async with gate:
                response = await http.post("/v1/completions", json=body)
                response.raise_for_status()
                return response.json()["choices"][0]["text"]
        return await asyncio.gather(*(one(b) for b in bodies(model, prompts, max_tokens)))


def serve_and_measure(targets: dict[str, tuple[str, str]], args: argparse.Namespace) -> dict:
    """Per target (label -> server url, model name): accuracy on the eval problems (one
    full-length greedy pass, which also warms the adapters and caches up), then tokens/s over
    passes of --throughput-tokens, short enough that every model writes the same number of tokens
    per request (a model that answers in fewer tokens would otherwise look faster or slower by
    its batch's tail), median of interleaved passes (so the machine's drift hits every target
    alike)."""
    task = get_task(DOMAIN)
    problems, prompts = eval_prompts(args.eval_count)
    found: dict[str, dict] = {}
    for label, (url, model) in targets.items():
        texts = asyncio.run(completions(url, model, prompts, args.concurrency, args.max_tokens))
        found[label] = {"served_accuracy":
                        sum(task.check(p, t) for p, t in zip(problems, texts)) / len(problems)}
    passes: dict[str, list[tuple[float, float]]] = {label: [] for label in targets}
    for _ in range(args.passes):
        for label, (url, model) in targets.items():
            load = asyncio.run(run_load(
                url, "/v1/completions",
                bodies(model, prompts * args.throughput_repeat, args.throughput_tokens),
                args.concurrency))
            passes[label].append((load.tokens_per_s, load.completion_tokens / load.requests))
    for label, measured in passes.items():
        speed, length = sorted(measured)[len(measured) // 2]
        found[label].update(tokens_per_s=speed, tokens_per_request=length)
    return found


def server_command(model: str, port: int, modules: dict[str, str], work: Path) -> list[str]:
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", model,
               "--adapter-roots", str(work.resolve()), "--port", str(port), "--served-model-name",
               "base", "--default-strategy", "greedy", "--log-level", "warning",
               "--max-lora-rank", "16", "--max-loras", str(max(1, len(modules)))]
    if modules:
        command += ["--lora-modules", *(f"{n}={p}" for n, p in modules.items())]
    return command


def measure_serving(rows: list[dict], args: argparse.Namespace) -> None:
    """Adapters and prompt embeddings on one base server, interleaved with the base itself;
    each merged model on a server of its own, interleaved with the base alone on a second
    server that stays up beside it (a server with adapters enabled runs even base requests
    through its LoRA path, and servers measured minutes apart differ by more than the methods
    do on this machine). Fills served_accuracy and throughput_vs_base in `rows`."""
    env = {**os.environ, **ENGINE_ENV}
    on_base = {r["method"]: r["out"] for r in rows
               if r["served_as"] in ("adapter", "prompt embeddings")}

    def server(model: str, modules: dict[str, str], log: str):
        port = free_port()
        return running_server(server_command(model, port, modules, args.work), port,
                              args.work / log, env=env)

    with server(args.model, on_base, "serve-base.log") as url:
        measured = serve_and_measure({m: (url, m) for m in ["base", *on_base]}, args)
    args.base_served = measured["base"]
    for row in rows:
        if row["method"] in on_base:
            row.update(measured[row["method"]])
            row["throughput_vs_base"] = row["tokens_per_s"] / measured["base"]["tokens_per_s"]
    merged = [row for row in rows if row["served_as"] == "merged model"]
    if not merged:
        return
    with server(args.model, {}, "serve-base-alone.log") as base_url:
        for row in merged:
            with server(row["out"], {}, f"serve-{row['method']}.log") as url:
                found = serve_and_measure({"base": (base_url, "base"),
                                           row["method"]: (url, "base")}, args)
            row.update(found[row["method"]])
            row["base_alone_tokens_per_s"] = found["base"]["tokens_per_s"]
            row["throughput_vs_base"] = row["tokens_per_s"] / found["base"]["tokens_per_s"]


# -- report -----------------------------------------------------------------------------------


def pct(value) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def report(rows: list[dict], args: argparse.Namespace, wall_s: float) -> str:
    base = rows[0]
    lines = [
        "# The tuning methods side by side",
        "",
        f"Run {args.date} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, no GPU: {sum(r['train_s'] for r in rows) / 60:.0f} min of "
        f"training (the train s column) and {wall_s / 60:.0f} min for this invocation"
        + (" (which read finished trainings back with --reuse)" if args.reuse else "")
        + f". Command: `python -m benchmarks.peft --steps {args.steps} --batch-size "
        f"{args.batch_size} --eval-count {args.eval_count} --passes {args.passes} "
        f"--concurrency {args.concurrency}`.",
        "",
        f"Every method tunes the demo base ({args.model}, 3.3M parameters) for countdown on the "
        f"same {args.steps * args.batch_size} rows (`task:countdown`, seed 0, the same order), "
        f"{args.steps} optimizer steps of {args.batch_size}, at its recipe's default learning "
        "rate (LoRA family 3e-3 as lora_countdown.yaml, soft prompts 1e-2, full fine-tuning "
        "1e-4). finetune_dapt is the domain-adaptive mix: the same steps, a fifth of the rows "
        "arithmetic. LoRA-family rank 16 on every linear layer (adalora: 16 pruned to 8), soft "
        "prompts 16 virtual tokens.",
        "",
        f"Accuracy: greedy, on the same {args.eval_count} fresh countdown problems (domain) and "
        f"{args.eval_count} arithmetic levels 3-5 (generic: what tuning for countdown costs), "
        "measured by the recipe with transformers; base model: countdown "
        f"{pct(base['domain_accuracy_base'])}, arithmetic {pct(base['generic_accuracy_base'])}. "
        "Served: the same countdown problems through the server (vLLM runs the float32 model in "
        "bfloat16 on this CPU, so a few near-ties break differently); throughput is completion "
        f"tokens/s at concurrency {args.concurrency} with every request writing "
        f"{args.throughput_tokens} tokens, median of {args.passes} interleaved passes, against "
        "the base model in the same server (adapters, prompt embeddings) or, for a merged model "
        "on a server of its own, against the base alone on a second server up beside it, passes "
        "alternating between the two. Peak RSS is the "
        "training process's (Python, torch and the evals included): on a model this small the "
        "frozen base's bytes are the column that shows what quantization saves.",
        "",
        "| method | served as | trainable params | frozen base MB | peak RSS MB | train s | "
        "countdown | arithmetic | served countdown | throughput vs base | artifact MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        frozen = "—" if r["frozen_base_bytes"] is None else f"{r['frozen_base_bytes'] / 1e6:.1f}"
        speed = "—" if "throughput_vs_base" not in r else f"{r['throughput_vs_base']:.2f}x"
        served = pct(r.get("served_accuracy"))
        lines.append(
            f"| {r['method']} | {r['served_as']} | {r['trainable_parameters']:,} | {frozen} | "
            f"{r['peak_rss_mb']:.0f} | {r['train_s']:.0f} | {pct(r['domain_accuracy'])} | "
            f"{pct(r['generic_accuracy'])} | {served} | {speed} | "
            f"{r['artifact_bytes'] / 1e6:.2f} |")
    lines += ["", what_it_shows(rows, args)]
    lengths = ", ".join(f"{r['method']} {r['tokens_per_request']:.1f}" for r in rows
                        if r.get("tokens_per_request") is not None)
    if lengths:
        lines += ["", f"Tokens per request in the throughput passes (cap {args.throughput_tokens}; "
                  "a few answers end sooner): base "
                  f"{args.base_served['tokens_per_request']:.1f}, {lengths}. A merged model has "
                  "the base's architecture and shape, so its ratio should be 1: how far it is "
                  "from 1 is this machine's noise between two servers."]
    qlora = next((r for r in rows if r["method"] == "qlora"), None)
    if qlora and qlora.get("served_accuracy_hf") is not None:
        lines += ["", f"QLoRA: trained on the 4-bit NF4 base (bitsandbytes' CPU backend), its "
                  f"adapter scores {pct(qlora['domain_accuracy'])} on that base and "
                  f"{pct(qlora['served_accuracy_hf'])} on the full-precision base it is served "
                  "on (transformers, same problems)."]
    lines += ["", "![accuracy, forgetting and size per method](peft.png)", ""]
    return "\n".join(lines)


def what_it_shows(rows: list[dict], args: argparse.Namespace) -> str:
    """The table's two findings in a sentence each: who gained on the domain, who kept generic
    (and who forgot most)."""
    base = rows[0]
    gained = [r["method"] for r in rows if r["domain_accuracy"] > r["domain_accuracy_base"]]
    kept = [r["method"] for r in rows
            if r["generic_accuracy"] >= r["generic_accuracy_base"] - 0.05]
    forgot = sorted((r for r in rows if r["method"] not in kept),
                    key=lambda r: r["generic_accuracy"])[:3]
    committed = json.loads((ROOT / COUNTDOWN_ADAPTER / "deliberate_manifest.json").read_text())
    domain = (f"{', '.join(gained)} beat the base on countdown" if gained else
              f"no method beats the base's {pct(base['domain_accuracy_base'])} on countdown: "
              f"{args.steps} steps of {args.batch_size} are too few for this task (the committed "
              f"countdown adapter took {committed['train']['steps']:,} steps of "
              f"{committed['train']['batch_size']}), so ranking methods by countdown needs a "
              "longer run")
    most = ", ".join(f"{r['method']} {pct(r['generic_accuracy'])}" for r in forgot)
    return (f"What it shows: at this budget {domain}; {', '.join(kept) or 'none'} kept "
            f"arithmetic within 5 points of the base's {pct(base['generic_accuracy_base'])}"
            + (f", the rest forgot (most: {most})." if forgot else "."))


# Three typical situations (tests/unit/test_recommend.py has them too) and what
# training.recommend answers for each, citing the table this benchmark wrote.
TYPICAL = (
    ("many tasks, 5,000 examples each, a 7B model, 24 GiB",
     (5_000, 7e9, 24, "medium", "many_tasks")),
    ("one domain keeping generic skills, 20,000 examples, 70B, 80 GiB",
     (20_000, 70e9, 80, "medium", "keep_generic")),
    ("one task, 200,000 examples, high compute, 1B, 80 GiB",
     (200_000, 1e9, 80, "high", "one_task")),
)


def recommend_cases(table: Path) -> str:
    lines = ["## What training.recommend answers, citing this table", ""]
    for title, values in TYPICAL:
        examples, params, memory, compute, goal = values
        answer = recommend(Situation(examples, params, memory, compute, goal), table)
        command = (f"python -m training.recommend --examples {examples} --params "
                   f"{params / 1e9:g}e9 --memory-gib {memory} --compute {compute} --goal {goal}")
        lines += [f"### {title}", "", f"`{command}`", "", "```", answer.text(), "```", ""]
    return "\n".join(lines)


def write_report(rows: list[dict], args: argparse.Namespace, wall_s: float) -> None:
    peft_figure(rows, RESULTS / "peft.png")
    (RESULTS / "peft.md").write_text(report(rows, args, wall_s) + "\n" + recommend_cases(TABLE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BASE)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-count", type=int, default=80)
    parser.add_argument("--only", nargs="+", choices=[m.name for m in METHODS], default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96,
                        help="per answer in the accuracy pass")
    parser.add_argument("--throughput-tokens", type=int, default=32,
                        help="per request in the throughput passes (below most answers' length)")
    parser.add_argument("--throughput-repeat", type=int, default=8,
                        help="each throughput pass sends the eval prompts this many times (a pass "
                             "of a few seconds is mostly noise on a small machine)")
    parser.add_argument("--reuse", action="store_true",
                        help="read back a method already trained with the same flags in --work")
    parser.add_argument("--work", type=Path, default=Path("runs/bench_peft"),
                        help="where the artifacts and logs go")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite peft.md and peft.png from the committed table")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads(TABLE.read_text())
        vars(args).update(saved["args"], base_served=saved["base_served"])
        write_report(saved["rows"], args, saved["wall_s"])
        print((RESULTS / "peft.md").read_text())
        return
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for method in METHODS:
        if args.only and method.name not in args.only:
            continue
        out = args.work / method.name
        manifest = train(method, args, out)
        rows.append(row_of(method, manifest, out, Path(args.model)))
        print(f"{method.name}: {json.dumps(rows[-1])}", flush=True)
    measure_serving(rows, args)
    wall_s = time.perf_counter() - start
    RESULTS.mkdir(exist_ok=True)
    out = TABLE
    args.date = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"  # --report-only keeps it
    settings = {k: vars(args)[k] for k in ("model", "steps", "batch_size", "eval_count",
                                           "concurrency", "passes", "max_tokens",
                                           "throughput_tokens", "throughput_repeat", "reuse",
                                           "date")}
    out.write_text(json.dumps({"command": " ".join(sys.argv[1:]), "args": settings,
                               "wall_s": wall_s, "base_served": args.base_served,
                               "rows": rows},
                              indent=1) + "\n")
    write_report(rows, args, wall_s)
    print((RESULTS / "peft.md").read_text())


if __name__ == "__main__":
    main()
