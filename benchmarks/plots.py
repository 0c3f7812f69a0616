"""PNG figures for the benchmark reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.load import LoadResult  # noqa: E402


def serving_figure(passes: dict[str, list[LoadResult]], path: Path) -> Path:
    """Left: throughput of every pass per server. Right: latency CDF of the median pass."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, runs) in enumerate(passes.items()):
        left.scatter([i] * len(runs), [r.requests_per_s for r in runs], label=name, alpha=0.7)
        median = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
        latencies = sorted(median.latencies_s)
        right.plot([x * 1e3 for x in latencies],
                   [(k + 1) / len(latencies) for k in range(len(latencies))], label=name)
    left.set_xticks(range(len(passes)), list(passes))
    left.set_xlim(-0.5, len(passes) - 0.5)
    left.set_ylabel("throughput (requests/s), every pass")
    left.set_ylim(bottom=0)
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
