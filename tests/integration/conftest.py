"""Starts the real server (vLLM engine included) once per test session.

DELIBERATE_TEST_MODEL picks the model (default: the committed demo model, models/demo/base).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "models" / "demo" / "base"
MODEL = Path(os.environ.get("DELIBERATE_TEST_MODEL", DEMO_MODEL))
SERVED_NAME = "demo"
STARTUP_TIMEOUT_S = 180


@dataclass(frozen=True)
class Server:
    url: str
    trained_demo_model: bool  # known answers can be asserted
    adapter_root: Path  # tests may load adapters from here (an allowed root)

    def metric(self, name: str) -> float:
        """A `vllm:` gauge from /metrics (one engine, so one series)."""
        text = httpx.get(f"{self.url}/metrics").text
        match = re.search(rf"^{re.escape(name)}{{[^}}]*}} (\S+)$", text, re.M)
        assert match, f"{name} not in /metrics"
        return float(match.group(1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    adapter_root = tmp_path_factory.mktemp("adapters")
    command = [sys.executable, "-m", "server", "--model", str(MODEL), "--port", str(port),
               "--served-model-name", SERVED_NAME, "--max-n", "16",
               "--adapter-roots", str(ROOT / "models"), str(adapter_root)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIBERATE_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log_path)
        yield Server(url, trained_demo_model=MODEL.resolve() == DEMO_MODEL.resolve(),
                     adapter_root=adapter_root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server not healthy after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()}")
