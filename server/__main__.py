"""`python -m server [--flags]`: serve the OpenAI-compatible API (flags: `--help`).

Exits with status 3 when the engine died (server/health.py), for its supervisor to restart it.
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from server.app import create_app
from server.health import ENGINE_DEAD_EXIT_STATUS
from server.settings import parse_settings


def main() -> None:
    try:
        settings = parse_settings()
    except (SettingsError, ValidationError) as error:  # a flag's or variable's value
        print(f"python -m server: error: {error}", file=sys.stderr)
        sys.exit(2)
    app = create_app(settings, freeze_heap=True)
    server = uvicorn.Server(uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        timeout_graceful_shutdown=5, h11_max_incomplete_event_size=settings.max_header_bytes))
    # a graceful shutdown that, unlike SIGTERM's, leaves the exit status to us
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    server.run()
    if app.state.engine_failed:
        sys.exit(ENGINE_DEAD_EXIT_STATUS)


# vLLM spawns its engine core, which re-imports __main__: start only in the parent process.
if __name__ == "__main__":
    main()
