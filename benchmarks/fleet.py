"""A fleet of real `vllm serve` replicas (vLLM's OpenAI server) for the remote engine's tests and
benchmark, configured as Deliberate's in-process engine is by default (engine/local.py), so
that the same request gets the same tokens in both modes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.processes import running_server

SERVED_NAME = "demo"
KV_CACHE_BYTES = 256 * 2**20  # Deliberate's CPU default


def replica_args(model: str | Path, port: int, served_name: str = SERVED_NAME,
                 kv_cache_bytes: int = KV_CACHE_BYTES, lora: bool = True,
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


@contextlib.contextmanager
def running_replica(model: str | Path, port: int, log_path: Path, cwd: Path | None = None,
                    timeout_s: float = 180) -> Iterator[str]:
    with running_server(replica_args(model, port), port, log_path, env=replica_env(),
                        timeout_s=timeout_s, cwd=cwd) as url:
        yield url
