"""optillm (an OpenAI-compatible optimizing proxy) in front of a `vllm serve` replica, run the way
its README says: the `optillm` command with `--base-url`, an approach chosen per request.

optillm pins transformers < 5.13 (Deliberate runs 5.19), so it lives in a virtual environment
of its own (`make peers-venv`: .venv-peers) and is reached over HTTP only."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.servers import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-peers"


def optillm_command(upstream: str, port: int) -> list[str]:
    return [str(VENV / "bin" / "optillm"), "--base-url", f"{upstream}/v1", "--port", str(port),
            "--host", "127.0.0.1", "--log", "warning"]


@contextlib.contextmanager
def running_optillm(upstream: str, port: int, log_path: Path) -> Iterator[str]:
    """optillm's proxy on `port` in front of `upstream` (an OpenAI-compatible base URL)."""
    if not (VENV / "bin" / "optillm").exists():
        raise SystemExit(f"optillm is not installed in {VENV}: run `make peers-venv` first")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # optillm reads the upstream's key from OPENAI_API_KEY; the replica checks none
    env = {**os.environ, "OPENAI_API_KEY": "none", "OPTILLM_API_KEY": ""}
    env.pop("OPTILLM_API_KEY")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(optillm_command(upstream, port), stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=VENV,
                                start_new_session=True)
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(proc, base_url, 300, log_path)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def optillm_request(prompt: str, approach: str, model: str, max_tokens: int,
                    fields: dict | None = None) -> dict:
    """A chat request that asks optillm for `approach` by its README's way, the approach's slug
    before the model's name (an `optillm_approach` body field would reach the upstream with
    optillm's pass-through approach, `none`, which forwards every field)."""
    return {"model": f"{approach}-{model}", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, **(fields or {})}
