"""Long-range reasoning, measured: accuracy, memory, tokens and time against solution length
for plain generation and bounded-context (chunked) reasoning (issue 35).

    /work/bin/heavy python -m benchmarks long_range [--per-length 10] \
        [--model long_arithmetic --model demo=plain,state]

One server (the demo base model; each `--model NAME[=CONFIGS]` names what requests ask for,
`demo` or an adapter under models/demo/adapters such as `long_arithmetic`, trained by
training/configs/lora_long_arithmetic.yaml, and which configurations it runs) answers long
arithmetic chains (training.tasks.long_arithmetic, level-1 operands, seed stream 800_000+) whose prompt
plus worked solution is from about half the model's 512-position window to about 4x it, with:

- `plain`: greedy in one context (max_tokens: what the window leaves after the prompt);
- `last`: greedy in chunks, each restarted from the prompt and the last m tokens (Delethink;
  chunk_tokens: what the window leaves after the longest prompt, m = chunk/2);
- `state`: greedy in chunks, each restarted from the expression that remains
  (`Compute: ...`, verifiers/states/arithmetic.py) and the step the chunk cut;
- `state+beam`: beam search (width 2, `logic` verifier, 60 s at most) inside the same chunks.

First, per model, the first chunk alone (the prompt, `chunk` tokens greedy, /v1/completions):
whether its first step is a valid step of the expression, and whether every line it completes
is (the question each state chunk reads is such a long expression). Then, reported per model,
configuration and length: exact accuracy, peak KV tokens held per request
(reasoning.context.peak_kv_tokens: prompt + generated of every live sample at once, an upper
bound where siblings share prompt blocks; for `plain`, prompt + completion tokens), the longest
single context, completion tokens (every token generated) and wall time per request. The
target: chunked accuracy at 4x the window >= 0.8x the accuracy on problems that fit in it.

Writes benchmarks/results/long_range.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.harness.publish import publish
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server
from training.tasks import Problem, arithmetic, long_arithmetic

RESULTS = Path(__file__).parent / "results"
SEED = 800_000
WINDOW = 512
# operations per problem: prompt + solution about 0.45, 0.8, 2, 3 and 4 windows
OPS = (16, 28, 72, 108, 146)
CHUNK = 96  # what the window leaves after the longest prompts (up to 415 tokens)


def configs(chunk: int) -> list[tuple[str, dict]]:
    last = {"carry": "last", "chunk_tokens": chunk, "carry_tokens": chunk // 2}
    state = {"carry": "state", "chunk_tokens": chunk, "carry_tokens": chunk // 2}
    return [("plain", {"strategy": "greedy"}),
            ("last", {"strategy": "greedy", "context": last}),
            ("state", {"strategy": "greedy", "context": state}),
            ("state+beam", {"strategy": "beam", "beam_width": 2, "n_candidates": 2,
                            "verifiers": {"logic": 1.0}, "timeout_s": 60, "context": state})]


@dataclass
class Answer:
    config: str
    ops: int
    problem: str
    length: int  # prompt + worked solution + EOS, in tokens (one per character)
    correct: bool
    finish_reason: str
    completion_tokens: int
    peak_kv_tokens: int
    max_context_tokens: int
    chunks: int
    latency_s: float
    error: str | None = None


def request(problem: Problem, reasoning: dict, model: str) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": problem.prompt}],
            "temperature": 0, "reasoning": reasoning}
    if "context" in reasoning:  # room for the whole solution (and half again), in chunks
        body["max_tokens"] = len(arithmetic.solution(problem)) * 3 // 2
    return body


async def ask(http: httpx.AsyncClient, problem: Problem, name: str, reasoning: dict,
              model: str) -> Answer:
    length = len(problem.prompt) + 1 + len(arithmetic.solution(problem)) + 1
    started = time.monotonic()
    r = await http.post("/v1/chat/completions", json=request(problem, reasoning, model))
    latency = time.monotonic() - started
    if r.status_code != 200:  # plain generation cannot take a prompt past the window
        return Answer(name, problem.difficulty, problem.id, length, False, "error", 0, 0, 0, 0,
                      latency, r.json()["error"]["message"][:200])
    body = r.json()
    choice, usage, info = body["choices"][0], body["usage"], body.get("reasoning") or {}
    context = info.get("context") or {}
    prompt_and_completion = usage["prompt_tokens"] + usage["completion_tokens"]
    return Answer(
        config=name, ops=problem.difficulty, problem=problem.id, length=length,
        correct=arithmetic.check(problem, choice["message"]["content"]),
        finish_reason=choice["finish_reason"], completion_tokens=usage["completion_tokens"],
        peak_kv_tokens=context.get("peak_kv_tokens", prompt_and_completion),
        max_context_tokens=context.get("max_context_tokens", prompt_and_completion),
        chunks=context.get("chunks", 1), latency_s=latency)


def valid_steps(problem: Problem, text: str) -> tuple[int, bool]:
    """How many of `text`'s complete lines are valid steps of the problem's expression, one
    after another, and whether all of them are (an `Answer:` line ends the count)."""
    state = arithmetic.parse(problem.prompt)
    n = 0
    for line in text.split("\n")[:-1]:
        if line.startswith("Answer:"):
            break
        state = arithmetic._reduce(state, line)  # noqa: SLF001 -- the task's own reduction
        if state is None:
            return n, False
        n += 1
    return n, True


async def first_chunk(http: httpx.AsyncClient, problem: Problem, model: str,
                      chunk: int) -> dict:
    """The first chunk alone: the prompt and `chunk` tokens, greedy."""
    r = await http.post("/v1/completions", json={
        "model": model, "prompt": problem.prompt + "\n", "max_tokens": chunk,
        "temperature": 0, "reasoning": {"strategy": "greedy"}})  # not the server's default
    r.raise_for_status()
    steps, valid = valid_steps(problem, r.json()["choices"][0]["text"])
    return {"model": model, "ops": problem.difficulty, "problem": problem.id,
            "first_step_valid": steps >= 1, "chunk_valid": valid and steps >= 1,
            "valid_steps": steps}


async def run(url: str, problems: list[Problem], plan: list[tuple[str, str, dict]],
              concurrency: int, chunk: int) -> tuple[list[Answer], dict[str, float], list]:
    gate = asyncio.Semaphore(concurrency)
    answers: list[Answer] = []
    walls: dict[str, float] = {}
    firsts: list[dict] = []
    async with httpx.AsyncClient(base_url=url, timeout=3600) as http:
        for model in dict.fromkeys(model for model, _, _ in plan):
            async def first(p: Problem, model: str = model) -> dict:
                async with gate:
                    return await first_chunk(http, p, model, chunk)
            firsts += await asyncio.gather(*(first(p) for p in problems))
            mine = [f for f in firsts if f["model"] == model]
            print(f"{model} first step valid: {sum(f['first_step_valid'] for f in mine)}/"
                  f"{len(mine)}", flush=True)
        for model, name, reasoning in plan:
            label = f"{model}/{name}"
            async def one(p: Problem) -> Answer:
                async with gate:
                    return await ask(http, p, label, reasoning, model)
            started = time.monotonic()
            answers += await asyncio.gather(*(one(p) for p in problems))
            walls[label] = time.monotonic() - started
            done = [a for a in answers if a.config == label]
            print(f"{label}: {sum(a.correct for a in done)}/{len(done)} in {walls[label]:.0f} s",
                  flush=True)
    return answers, walls, firsts


def first_chunk_table(firsts: list[dict]) -> dict:
    """Per model and operations: the first chunk's first step valid, all its lines valid."""
    table: dict[str, dict[int, dict]] = {}
    for f in firsts:
        table.setdefault(f["model"], {}).setdefault(f["ops"], []).append(f)  # type: ignore
    return {model: {ops: {"n": len(group),
                          "first_step_valid": statistics.fmean(f["first_step_valid"]
                                                               for f in group),
                          "chunk_valid": statistics.fmean(f["chunk_valid"] for f in group)}
                    for ops, group in sorted(by_ops.items())}
            for model, by_ops in table.items()}


def compute(answers: list[Answer]) -> dict:
    table: dict[str, dict[int, dict]] = {}
    for a in answers:
        table.setdefault(a.config, {}).setdefault(a.ops, []).append(a)  # type: ignore[arg-type]
    rows = {}
    for config, by_ops in table.items():
        rows[config] = {}
        for ops, group in sorted(by_ops.items()):
            rows[config][ops] = {
                "n": len(group), "windows": statistics.fmean(a.length for a in group) / WINDOW,
                "accuracy": sum(a.correct for a in group) / len(group),
                "peak_kv_tokens": statistics.fmean(a.peak_kv_tokens for a in group),
                "max_peak_kv_tokens": max(a.peak_kv_tokens for a in group),
                "max_context_tokens": max(a.max_context_tokens for a in group),
                "completion_tokens": statistics.fmean(a.completion_tokens for a in group),
                "chunks": statistics.fmean(a.chunks for a in group),
                "latency_s": statistics.fmean(a.latency_s for a in group),
                "errors": sum(a.error is not None for a in group)}
    targets = {}
    for config, by_ops in rows.items():
        inside = [r for r in by_ops.values() if r["windows"] <= 1.0]
        far = [r for r in by_ops.values() if r["windows"] >= 3.9]
        if inside and far:
            fits = statistics.fmean(r["accuracy"] for r in inside)
            at4 = statistics.fmean(r["accuracy"] for r in far)
            targets[config] = {"fits": fits, "at_4x": at4,
                               "ratio": at4 / fits if fits else None,
                               "met": fits > 0 and at4 >= 0.8 * fits}
    return {"rows": rows, "targets": targets}


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = sorted({c.split("/")[-1] for c in results["rows"]})
    models = sorted({c.split("/")[0] for c in results["rows"]})
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    styles = dict(zip(models, ("o-", "s--", "^:", "d-.")))
    for config, by_ops in results["rows"].items():
        model, name = config.split("/") if "/" in config else (models[0], config)
        look = {"color": colors[name], "label": config}
        xs = [r["windows"] for r in by_ops.values()]
        axes[0].plot(xs, [r["accuracy"] for r in by_ops.values()], styles[model], **look)
        axes[1].plot(xs, [r["max_peak_kv_tokens"] for r in by_ops.values()], styles[model],
                     **look)
        axes[2].plot(xs, [r["completion_tokens"] for r in by_ops.values()], styles[model],
                     **look)
    for ax, title in zip(axes, ("exact accuracy", "peak KV tokens held per request (max)",
                                "completion tokens per request")):
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("prompt + worked solution, in 512-token windows")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(results: dict, meta: dict) -> str:
    lines = ["# Long-range reasoning: chunked against plain generation", "",
             f"`{meta['command']}` on {meta['started']} ({meta['machine']}; "
             f"{meta['wall_min']:.1f} min, {meta['problems']} problems x "
             f"{len(results['rows'])} configurations); models {meta['model']}, chunk "
             f"{meta['chunk']} tokens.", ""]
    firsts = results.get("first_chunk") or {}
    if firsts:
        lines += ["The first chunk alone (prompt + first chunk greedy): the share whose first "
                  "step is valid / whose every completed line is.", "",
                  "| model | " + " | ".join(f"{ops} ops" for ops in next(iter(
                      firsts.values()))) + " |",
                  "|---|" + "---:|" * len(next(iter(firsts.values())))]
        for model, by_ops in firsts.items():
            lines.append(f"| {model} | " + " | ".join(
                f"{r['first_step_valid']:.2f} / {r['chunk_valid']:.2f}"
                for r in by_ops.values()) + " |")
        lines.append("")
    lines += [
             "| config | ops | windows | n | accuracy | peak KV tokens (mean / max) | "
             "longest context | completion tokens | chunks | s / request |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for config, by_ops in results["rows"].items():
        for ops, r in by_ops.items():
            lines.append(
                f"| {config} | {ops} | {r['windows']:.2f} | {r['n']} | {r['accuracy']:.2f} | "
                f"{r['peak_kv_tokens']:.0f} / {r['max_peak_kv_tokens']} | "
                f"{r['max_context_tokens']} | {r['completion_tokens']:.0f} | "
                f"{r['chunks']:.1f} | {r['latency_s']:.1f} |")
    lines += ["", "Target: accuracy at 4x the window >= 0.8x the accuracy on problems that "
              "fit in it (those of at most one window).", "",
              "| config | fits | at 4x | ratio | met |", "|---|---:|---:|---:|---|"]
    for config, t in results["targets"].items():
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        lines.append(f"| {config} | {t['fits']:.2f} | {t['at_4x']:.2f} | {ratio} | "
                     f"{'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def plan_of(specs: list[str], chunk: int) -> list[tuple[str, str, dict]]:
    """`--model NAME[=CONFIG,...]` -> (model, config, reasoning) in order (every config when
    none are named)."""
    known = dict(configs(chunk))
    plan = []
    for spec in specs:
        model, _, wanted = spec.partition("=")
        names = wanted.split(",") if wanted else list(known)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown configurations {unknown}: choose from {list(known)}")
        plan += [(model, name, known[name]) for name in names]
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-length", type=int, default=10)
    parser.add_argument("--ops", default=",".join(map(str, OPS)))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--model", action="append", default=None, metavar="NAME[=CONFIGS]",
                        help="the served name asked for (demo: the base, or an adapter), and "
                             "the comma-separated configurations it runs (default all); "
                             "repeatable")
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", default="long_range")
    args = parser.parse_args()
    specs = args.model or ["demo"]
    plan = plan_of(specs, args.chunk)
    problems = [p for ops in map(int, args.ops.split(","))
                for p in long_arithmetic.generate(args.seed, args.per_length, ops)]
    started = time.time()
    port = free_port()
    log = RESULTS / "logs" / "long_range-server.log"
    command = ["-m", "server", "--port", str(port), "--log-level", "warning",
               "--adapter-resolver-root", "models/demo/adapters",
               *UNBOUNDED_ADMISSION]
    with running_server(command, port, log, timeout_s=600) as url:
        answers, walls, firsts = asyncio.run(run(url, problems, plan, args.concurrency,
                                                 args.chunk))
    meta = {"command": f"python -m benchmarks long_range --per-length {args.per_length} "
                       f"--ops {args.ops} --chunk {args.chunk} "
                       + " ".join(f"--model {spec}" for spec in specs),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
            "wall_min": (time.time() - started) / 60, "problems": len(problems),
            "model": ", ".join(f"`{m}`" for m in dict.fromkeys(m for m, _, _ in plan)),
            "chunk": args.chunk, "config_wall_s": walls}
    results = {**compute(answers), "first_chunk": first_chunk_table(firsts)}
    publish(args.out, {"meta": meta, **results, "answers": [asdict(a) for a in answers],
                       "first_chunks": firsts}, results, meta, figure, report, RESULTS)


if __name__ == "__main__":
    main()
