"""Where the API process spends its CPU per request: Deliberate's (and, to compare, vLLM's own
OpenAI server's) under benchmarks.serving's greedy load, sampled by py-spy (the dev extra).

    python -m benchmarks.studies.serving_profile [--server deliberate|vllm] [--path chat]

Starts the server as benchmarks.serving does, warms it up, then runs `--passes` passes of the
load while py-spy samples the API process (not the engine core, a child process) while it
holds the GIL (its Python work): its CPU seconds per request (psutil), and the functions its
samples are in, inclusive and own, as shares of the samples. Writes the collapsed stacks beside
the report.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness.load import add_load_arguments, greedy_bodies, run_load
from benchmarks.harness.servers import ENGINE_ENV, SERVED_NAME, cpu_seconds, listening_process
from benchmarks.serving import RESULTS, server_commands
from tests.servers import free_port, running_server

PY_SPY = Path(sys.prefix) / "bin" / "py-spy"  # the venv's, beside its python


def chat_bodies(bodies: list[dict]) -> list[dict]:
    return [{"model": SERVED_NAME, "messages": [{"role": "user", "content": b["prompt"]}],
             "max_tokens": b["max_tokens"], "temperature": 0} for b in bodies]


def summary(stacks: Path, top: int) -> list[str]:
    """The functions most samples are in (inclusive) and on top of (own), as % of samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        n = int(count)
        names = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                 + ")" if " (" in f else f for f in frames.split(";")]
        total += n
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    lines = [f"{total} samples", "", "| inclusive % | function |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in inclusive.most_common(top)]
    lines += ["", "| own % | function |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{name}` |" for name, n in own.most_common(top)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--server", choices=["deliberate", "vllm"], default="deliberate")
    parser.add_argument("--path", choices=["completions", "chat"], default="completions")
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--kv-cache-bytes", type=int, default=256 * 2**20)
    parser.add_argument("--out", type=Path,
                        default=RESULTS / "logs" / "serving_profile.md")
    args = parser.parse_args()

    bodies = greedy_bodies(args)
    path = "/v1/completions"
    if args.path == "chat":
        bodies, path = chat_bodies(bodies), "/v1/chat/completions"
    port = free_port()
    command = server_commands(args.model, port, args.max_model_len,
                              args.kv_cache_bytes)[args.server]
    log = RESULTS / "logs" / f"serving_profile-{args.server}.log"
    stacks = args.out.with_suffix(f".{args.server}.{args.path}.txt")
    with running_server(command, port, log, env={**os.environ, **ENGINE_ENV}) as url:
        api = listening_process(port)
        for _ in range(2):  # warm-up
            asyncio.run(run_load(url, path, bodies[:args.concurrency], args.concurrency))
        spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(api.pid), "--nonblocking", "--gil",
                                "--rate", "200", "--format", "raw", "--output", str(stacks)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        api_before, engine_before = cpu_seconds(api)
        walls = []
        for _ in range(args.passes):
            walls.append(asyncio.run(run_load(url, path, bodies, args.concurrency)).wall_s)
        api_after, engine_after = cpu_seconds(api)
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        spy.wait(timeout=60)
    requests = args.passes * len(bodies)
    api_cpu = api_after - api_before
    engine_cpu = engine_after - engine_before
    lines = [
        f"# API process profile: {args.server}, {path}",
        "",
        f"{requests} requests in {args.passes} passes (walls {[round(w, 2) for w in walls]} s, "
        f"{requests / sum(walls):.1f} req/s). API process CPU: {1e3 * api_cpu / requests:.2f} ms "
        f"per request; engine processes: {1e3 * engine_cpu / requests:.2f} ms per request.",
        "",
        *summary(stacks, args.top),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = args.out.with_suffix(f".{args.server}.{args.path}.md")
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:3]))
    print(f"report: {report}")


if __name__ == "__main__":
    main()
