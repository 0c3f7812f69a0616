"""Screenshots of the /ui page for docs/ui.md: a beam and an MCTS search on the demo model,
each drawn to its end, written to docs/images/ui-{beam,mcts}.png.

    python scripts/ui_screenshots.py   # starts a server of its own (about a minute), then ~1 min
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import chromium, fill, open_page, status  # noqa: E402
from tests.servers import free_port, running_server  # noqa: E402

PROMPT = "Numbers: 3 7 25 50 Target: 353"
RUNS = {
    "beam": dict(strategy="beam", seed=1, budget=3000, max_tokens=64,
                 verifiers={"logic": 1, "syntax": 1, "prm": 1}),
    "mcts": dict(strategy="mcts", seed=1, budget=3000, max_tokens=64,
                 extra='{"simulations": 12}', verifiers={"logic": 1, "syntax": 1, "prm": 1}),
}


def main() -> None:
    out = ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = pathlib.Path(tempfile.mkdtemp()) / "server.log"
    command = ["-m", "server", "--model", str(ROOT / "models" / "demo" / "base"),
               "--served-model-name", "demo", "--port", str(port)]
    with running_server(command, port, log, timeout_s=300, cwd=ROOT) as url, \
            chromium(width=1400, height=900) as browser:
        for name, options in RUNS.items():
            open_page(browser, url)
            fill(browser, prompt=PROMPT, **options)
            browser.find_element("id", "go").click()
            deadline = time.monotonic() + 300
            while status(browser) == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
            if status(browser) != "done":
                raise SystemExit(f"{name}: {status(browser)}")
            # grow the window to the whole tree, so that the shot shows all of it
            height = browser.execute_script(
                "return Math.max(document.body.scrollHeight, 900)")
            browser.set_window_size(1400, min(height + 40, 2400))
            browser.save_screenshot(str(out / f"ui-{name}.png"))
            browser.set_window_size(1400, 900)
            print(f"{name}: docs/images/ui-{name}.png")


if __name__ == "__main__":
    main()
