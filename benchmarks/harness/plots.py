"""PNG figures for the benchmark reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.harness.load import LoadResult  # noqa: E402


def throughput_panel(ax, passes: dict[str, list[LoadResult]]) -> None:
    """Throughput of every pass, one column per server."""
    for i, (name, runs) in enumerate(passes.items()):
        ax.scatter([i] * len(runs), [r.requests_per_s for r in runs], label=name, alpha=0.7)
    ax.set_xticks(range(len(passes)), list(passes))
    ax.set_xlim(-0.5, len(passes) - 0.5)
    ax.set_ylabel("throughput (requests/s), every pass")
    ax.set_ylim(bottom=0)


def serving_figure(passes: dict[str, list[LoadResult]], path: Path) -> Path:
    """Left: throughput and p99 of every pass per server, by round (a round's passes are
    adjacent). Right: latency CDF of the median pass."""
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    for name, runs in passes.items():
        rounds = range(1, len(runs) + 1)
        left.plot(rounds, [r.requests_per_s for r in runs], marker="o", label=name)
        middle.plot(rounds, [r.latency_quantile(0.99) * 1e3 for r in runs], marker="o",
                    label=name)
        median = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
        latencies = sorted(median.latencies_s)
        right.plot([x * 1e3 for x in latencies],
                   [(k + 1) / len(latencies) for k in range(len(latencies))], label=name)
    left.set_xlabel("round")
    left.set_ylabel("throughput (requests/s)")
    left.set_ylim(bottom=0)
    left.legend()
    middle.set_xlabel("round")
    middle.set_ylabel("latency p99 (ms)")
    middle.set_ylim(bottom=0)
    right.set_xlabel("request latency (ms), median pass")
    right.set_ylabel("fraction of requests")
    right.legend()
    fig.suptitle("Deliberate vs vLLM OpenAI server: same model, engine settings and load")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def adapters_figure(results: dict[str, dict], path: Path) -> Path:
    """Throughput base-only vs mixed over adapters, per server."""
    fig, ax = plt.subplots(figsize=(6, 4))
    modes = ["base", "mixed"]
    width = 0.35
    for i, (name, result) in enumerate(results.items()):
        ax.bar([m + i * width for m in range(len(modes))],
               [result[mode].tokens_per_s for mode in modes], width, label=name)
    ax.set_xticks([m + width / 2 for m in range(len(modes))],
                  ["base model only", "mixed over 4 adapters"])
    ax.set_ylabel("completion tokens/s (median pass)")
    ax.legend()
    ax.set_title("Multi-LoRA serving throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def accuracy_compute_figure(results: dict[str, dict], path: Path) -> Path:
    """Accuracy against mean generated tokens per request, one point per strategy config;
    N-sweeps joined by lines. Left: all problems; right: the hard bucket. One marker per
    verifier setting."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    markers = dict(zip(results, "os^"))
    for ax, group in zip(axes, ("all", "hard")):
        for setting, configs in results.items():
            families: dict[str, list[tuple[float, float]]] = {}
            for name, rows in configs.items():
                if group not in rows:
                    continue
                point = (rows[group]["tokens"], rows[group]["accuracy"])
                families.setdefault(name.split("/")[0], []).append(point)
            for i, (family, points) in enumerate(sorted(families.items())):
                points.sort()
                color = f"C{i}"
                ax.plot(*zip(*points), marker=markers[setting], color=color,
                        linestyle="-" if setting == "learned" else ":",
                        label=f"{family} ({setting})")
        ax.set_xscale("log")
        ax.set_xlabel("generated tokens per request (mean, log scale)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title({"all": "all problems", "hard": "hard: arithmetic 6-8 ops + countdown"}[group])
        ax.grid(alpha=0.3)
    # Below the panels: inside, the legend of 8 strategies x 2 settings hides points.
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4)
    fig.suptitle("Accuracy against compute per strategy (demo model, PRM x ORM verifiers)")
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def remote_figure(serving: dict[str, list[LoadResult]], search: dict[str, dict[str, dict]],
                  path: Path) -> Path:
    """Left: serving throughput of every pass. Right: prefix-cache hit rate per search and
    routing (remote affinity, remote round-robin, local engine)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    throughput_panel(left, serving)
    routings = ["affinity", "round_robin", "local"]
    width = 0.8 / len(routings)
    for j, routing in enumerate(routings):
        right.bar([i + j * width for i in range(len(search))],
                  [runs[routing]["hit_rate"] for runs in search.values()], width, label=routing)
    right.set_xticks([i + width for i in range(len(search))], list(search))
    right.set_ylabel("vLLM prefix-cache hit rate")
    right.set_ylim(0, 1)
    right.legend()
    fig.suptitle("Deliberate over two vllm serve replicas")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def peft_figure(rows: list[dict], path: Path) -> Path:
    """Left: domain (countdown) and generic (arithmetic) accuracy per tuning method, the base's as
    dashed lines. Right: countdown accuracy against trainable parameters (log)."""
    fig, (bars, scatter) = plt.subplots(1, 2, figsize=(13, 5))
    names = [r["method"] for r in rows]
    x = range(len(rows))
    width = 0.4
    for offset, key, label in ((-width / 2, "domain_accuracy", "countdown (tuned for)"),
                               (width / 2, "generic_accuracy", "arithmetic 3-5 (generic)")):
        bars.bar([i + offset for i in x], [r[key] or 0 for r in rows], width, label=label)
    bars.axhline(rows[0]["domain_accuracy_base"], color="C0", linestyle="--", linewidth=1,
                 label="base: countdown")
    bars.axhline(rows[0]["generic_accuracy_base"], color="C1", linestyle="--", linewidth=1,
                 label="base: arithmetic")
    bars.set_xticks(list(x), names, rotation=45, ha="right")
    bars.set_ylabel("greedy accuracy")
    bars.set_ylim(0, 1)
    bars.legend(fontsize=8)
    bars.set_title("Accuracy after the same step budget")
    for r in rows:
        scatter.scatter(r["trainable_parameters"], r["domain_accuracy"], label=r["method"])
        scatter.annotate(r["method"], (r["trainable_parameters"], r["domain_accuracy"]),
                         fontsize=7, xytext=(3, 3), textcoords="offset points")
    scatter.axhline(rows[0]["domain_accuracy_base"], color="grey", linestyle="--", linewidth=1)
    scatter.set_xscale("log")
    scatter.set_xlabel("trainable parameters (log)")
    scatter.set_ylabel("countdown accuracy")
    scatter.set_title("What each trainable parameter buys")
    scatter.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def rl_curves_figure(runs: dict[str, dict], path: Path) -> Path:
    """One panel per RL run: the guard's held-out proxy reward and exact accuracy against the
    training step, the kept checkpoint marked (the reward-hacking curve)."""
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.4), sharey=True,
                             squeeze=False)
    for ax, (name, run) in zip(axes[0], runs.items()):
        history = run["guard"]["history"]
        steps = [p["step"] for p in history]
        ax.plot(steps, [p["proxy"] for p in history], marker=".", label="proxy (training reward)")
        ax.plot(steps, [p["exact"] for p in history], marker=".", label="exact accuracy")
        kept = run["guard"].get("rolled_back_to")
        if kept is not None:
            ax.axvline(kept, color="grey", linestyle=":", linewidth=1, label="kept checkpoint")
        fired = run["guard"].get("fired_at")
        if fired is not None:
            ax.axvline(fired, color="C3", linestyle="--", linewidth=1, label="guard fires")
        ax.set_title(name)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out (guard's prompts)")
    axes[0][0].set_ylim(0, 1)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def peers_figure(results: list[dict], path: Path) -> Path:
    """Accuracy against generated tokens per problem, one panel per task, one colour per side
    (Deliberate, optillm, its_hub), every configuration named beside its point."""
    tasks = ["arithmetic", "countdown"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(14, 6))
    colors = {"deliberate": "C0", "optillm": "C1", "its_hub": "C2"}
    for ax, task in zip(axes, tasks):
        for side, color in colors.items():
            rows = [r for r in results if r["task"] == task and r["side"] == side
                    and r["tokens"] > 0]
            ax.scatter([r["tokens"] for r in rows], [r["accuracy"] for r in rows], color=color,
                       label=side, marker="o" if side == "deliberate" else "s")
            for r in rows:
                ax.annotate(r["config"], (r["tokens"], r["accuracy"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points", color=color)
        ax.set_xscale("log")
        ax.set_xlabel("generated tokens per problem, every call counted (log scale)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.05)
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle("Deliberate beside optillm and its_hub (demo model, same problems and budget)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
