"""benchmarks/admission.py's tables and figure, from its JSON results."""

from __future__ import annotations

from pathlib import Path


def _statuses(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "-"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _load_row(mode: str, phase: str, r: dict) -> str:
    share = r.get("first_retry_share")
    admitted = "-" if share is None else f"{r['first_retry_admitted']} ({share:.1%})"
    return (f"| {mode} | {phase} | {r['requests']} | {r['wall_s']:.0f} | "
            f"{_statuses(r['first_try'])} | {_statuses(r['final'])} | {r['5xx_tries']} | "
            f"{len(r['lost'])} | {r['refused_first']} | "
            f"{_num(r['refusal_s_max'])} | "
            f"{r['refused_without_retry_after']} | "
            f"{admitted} | {_num(r.get('client_cpu_s'))} | {_num(r.get('api_cpu_s'))} | "
            f"{_server(r.get('server_refusals'))} |")


def _server(refusals: dict | None) -> str:
    if not refusals or not refusals["count"]:
        return "-"
    return (f"{refusals['within_1s']}/{refusals['count']} "
            f"(slowest <= {refusals['slowest_at_most_s']:g} s)")


def report(results: dict, figure_name: str | None = None) -> str:
    lines = ["# Admission under load (benchmarks/admission.py)", "",
             f"Command: `{results['command']}`  ",
             f"Run: {results['started']}, {results['cores']} cores, "
             f"{results['wall_s'] / 60:.0f} min. Requests as a new user sends them: the model, the "
             "messages and a strategy, nothing else (no budget, no temperature, no max_tokens); "
             "the server with no admission flags. Local: vLLM in the server; remote: two "
             "`vllm serve` replicas (`--scheduling-policy priority`). A refused client waits its "
             "Retry-After exactly, then retries (up to 8 times). The clients run in the "
             "benchmark's process, a connection pool per 20 requests (as many clients send a "
             "burst; one pool of 640 cost the benchmark more CPU than the server spent), on the "
             "machine the server shares: `client CPU s` is what they spent, which every "
             "latency here includes a share of. The server times each 429 too, from the "
             "request's arrival to its last byte (`deliberate_refusal_latency_seconds`)."]
    rows = [_load_row(mode, phase, part[phase])
            for mode, part in _main_parts(results) for phase in ("wave", "burst", "kill")
            if phase in part]
    if rows:
        lines += ["", "| mode | phase | requests | wall s | first try | final | 5xx tries | "
                  "lost | refused | slowest 429 (s) | 429 w/o Retry-After | admitted on first "
                  "retry | client CPU s | API process CPU s | 429s the server sent within 1 s |",
                  "|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
                  *rows]
    lines += ["", "Latency of the answered requests (s), per strategy:", "",
              "| mode | phase | strategy | n | p50 | p99 |", "|---|---|---|---:|---:|---:|"]
    for mode in ("local", "remote"):
        part = results.get(mode, {})
        part = part.get("priority", part) if mode == "local" else part
        if "idle" in part:
            i = part["idle"]
            lines.append(f"| {mode} | idle | greedy | {i['answered']} | {i['p50_s']} | "
                         f"{i['p99_s']} |")
        for phase in ("wave", "burst", "kill"):
            for strategy, lat in part.get(phase, {}).get("latency_s", {}).items():
                lines.append(f"| {mode} | {phase} | {strategy} | {lat['n']} | {lat['p50']} | "
                             f"{lat['p99']} |")
    kill = results.get("remote", {}).get("kill")
    if kill:
        e = kill["events"]
        caps = [(s["t"], s.get("capacity{search}"), s.get("capacity{single}"))
                for s in kill["gauges"]]
        before = caps[0] if caps else None
        low = min(caps, key=lambda c: c[1] or 0) if caps else None
        lines += ["", f"Replica killed at {e.get('killed_s')} s into the kill burst, restarted "
                  f"at {e.get('restart_s')} s (healthy at {e.get('replica_healthy_s')} s); the "
                  f"search lane's capacity {before[1] if before else '-'} tokens before, "
                  f"{low[1] if low else '-'} at its lowest ({low[0] if low else '-'} s), back "
                  f"at {e.get('capacity_back_s')} s. Every request's final status: "
                  f"{_statuses(kill['final'])}."]
    soak = {p: s for p, s in results.get("local", {}).items() if "soak" in s}
    if soak:
        lines += ["", "Greedy beside searches (local, 8 greedy + 16 search clients, closed loop, "
                  f"{next(iter(soak.values()))['soak']['seconds']:.0f} s, each configuration "
                  "on a fresh server):",
                  "", "| engine scheduling | idle greedy p99 (s) | soak greedy p50 | soak greedy "
                  "p99 | p99 / idle p99 | searches / min | statuses |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for policy, s in soak.items():
            g, idle = s["soak"]["greedy"], s["idle"]
            ratio = g["p99_s"] / idle["p99_s"] if g["p99_s"] and idle["p99_s"] else None
            lines.append(f"| {policy} | {idle['p99_s']} | {g['p50_s']} | {g['p99_s']} | "
                         f"{'-' if ratio is None else f'{ratio:.1f}x'} | "
                         f"{s['soak']['search']['per_min']} | "
                         f"{_statuses(s['soak']['statuses'])} |")
        if "priority" in soak and "fcfs" in soak and soak["fcfs"]["soak"]["search"]["per_min"]:
            ratio = (soak["priority"]["soak"]["search"]["per_min"]
                     / soak["fcfs"]["soak"]["search"]["per_min"])
            lines.append(f"\nSearch throughput, priority / fcfs: {ratio:.2f}.")
    if figure_name:
        lines += ["", f"![capacity over the bursts; greedy beside searches]({figure_name})"]
    return "\n".join(lines) + "\n"


def _main_parts(results: dict) -> list[tuple[str, dict]]:
    """(mode, its results) for the phases run once: local's on the default configuration."""
    local = results.get("local", {})
    return [("local", local.get("priority", local)), ("remote", results.get("remote", {}))]


def figure(results: dict, path: Path) -> bool:
    from benchmarks.harness.plots import plt

    panels = [(mode, phase, part[phase]["gauges"])
              for mode, part in (("local", results.get("local", {}).get("priority", {})),
                                 ("remote", results.get("remote", {})))
              for phase in ("burst", "kill") if phase in part and part[phase].get("gauges")]
    soak = {p: s["soak"] for p, s in results.get("local", {}).items() if "soak" in s}
    if not panels and not soak:
        return False
    count = len(panels) + (1 if soak else 0)
    fig, axes = plt.subplots(1, count, figsize=(5 * count, 3.6), squeeze=False)
    if soak:
        _soak_panel(axes[0][-1], soak)
    for ax, (mode, phase, samples) in zip(axes[0], panels):
        t = [s["t"] for s in samples]
        for key, label in (("capacity{search}", "search capacity"),
                           ("in_flight_cost{search}", "search in flight"),
                           ("queued_cost{search}", "search queued")):
            ax.plot(t, [s.get(key, 0) for s in samples], label=label)
        if phase == "kill":
            events = results["remote"]["kill"]["events"]
            for name in ("killed_s", "replica_healthy_s"):
                if events.get(name) is not None:
                    ax.axvline(events[name], color="grey", linestyle="--")
        ax.set_title(f"{mode}: {phase}")
        ax.set_xlabel("seconds")
        ax.set_ylabel("expected tokens")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _soak_panel(ax, soak: dict) -> None:
    """Greedy's p50 and p99 (bars, left axis) and searches a minute (dots, right axis) per
    engine configuration."""
    names = list(soak)
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [s["greedy"]["p50_s"] or 0 for s in soak.values()], 0.4,
           label="greedy p50 (s)")
    ax.bar([i + 0.2 for i in x], [s["greedy"]["p99_s"] or 0 for s in soak.values()], 0.4,
           label="greedy p99 (s)")
    ax.set_xticks(list(x), [n.replace(", ", ",\n") for n in names], fontsize=6)
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7, loc="upper left")
    right = ax.twinx()
    right.plot(list(x), [s["search"]["per_min"] for s in soak.values()], "ko")
    right.set_ylabel("searches / min (dots)")
    ax.set_title("greedy beside searches (soak)")
