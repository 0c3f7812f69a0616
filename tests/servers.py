"""Start an HTTP server as a subprocess, wait until it is healthy, stop it cleanly; and the
arguments of a real `vllm serve` replica configured as Deliberate's in-process engine is by
default (engine/local.py), so that the same request gets the same tokens in both modes.

The integration tests start their servers with these; the benchmarks import them from here."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

REPLICA_NAME = "demo"
REPLICA_KV_CACHE_BYTES = 256 * 2**20  # Deliberate's CPU default
_PORTS = random.SystemRandom()  # not the global generator: tests and benchmarks seed that


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: a port the kernel hands out for
    bind(0) could be taken, between this call and the server's bind, by the server's own vLLM
    engine (its distributed init binds port 0) or by any other process; CI lost a run to that."""
    low, _ = _ephemeral_range()
    for _ in range(100):
        port = _PORTS.randint(max(1024, low - 12000), low - 1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


@contextlib.contextmanager
def running_server(
    args: list[str], port: int, log_path: Path, env: dict[str, str] | None = None,
    timeout_s: float = 300.0, cwd: Path | None = None,
) -> Iterator[str]:
    """Run `python <args>` and yield its base URL once GET /health answers 200.

    `env` is the child's whole environment (default: this process's)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
            env=os.environ.copy() if env is None else env, cwd=cwd, start_new_session=True,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(proc, base_url, timeout_s, log_path)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(proc: subprocess.Popen, base_url: str, timeout_s: float, log_path: Path) -> None:
    """Returns once GET /health answers 200; raises if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"server not healthy after {timeout_s:.0f} s:\n{log_path.read_text()}")


def replica_args(model: str | Path, port: int, served_name: str = REPLICA_NAME,
                 kv_cache_bytes: int = REPLICA_KV_CACHE_BYTES, lora: bool = True,
                 extra: Sequence[str] = ()) -> list[str]:
    """`python <these>` serves `model` as Deliberate's LocalEngine would run it (`lora`: with
    adapters, as a policy's; `extra`: more `vllm serve` flags, e.g. a reward model's runner)."""
    adapters = ["--enable-lora", "--max-loras", "4", "--max-lora-rank", "16",
                "--max-cpu-loras", "8"] if lora else []
    return ["-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--host", "127.0.0.1", "--port", str(port), "--served-model-name", served_name,
            "--enforce-eager", "--block-size", "32", "--kv-cache-memory-bytes",
            str(kv_cache_bytes), "--max-logprobs", "20", "--seed", "0", *adapters,
            "--uvicorn-log-level", "warning", "--no-enable-log-requests", *extra]


def replica_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
    # one process per replica (as Deliberate's engine), runtime adapter loading on
    return {**env, "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
