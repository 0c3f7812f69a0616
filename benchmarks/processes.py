"""Start an HTTP server as a subprocess, wait until it is healthy, stop it cleanly."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


# A benchmark of search measures the search, not admission control: its clients wait for their
# turn however long the queue (no 429 after --queue-timeout-s), and no deadline cuts a search
# short for the time it waited. benchmarks.load_faults, which measures admission, keeps them.
UNBOUNDED_ADMISSION = ["--queue-timeout-s", "86400", "--request-timeout-s", "86400"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def install_verifier_plugins(directory: Path, dist: str, plugins: dict[str, str]) -> Path:
    """A dist-info in `directory` registering `plugins` (name -> "module:Class") in the
    verifier entry-point group: a server started with `directory` on its PYTHONPATH loads
    them, and nothing else does."""
    info = directory / f"{dist.replace('-', '_')}-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0\n")
    entries = "".join(f"{name} = {target}\n" for name, target in plugins.items())
    (info / "entry_points.txt").write_text(f"[deliberate.verifiers]\n{entries}")
    return directory
