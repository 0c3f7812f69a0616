"""`python -m server [--flags]`: serve the OpenAI-compatible API (flags: `--help`)."""

from __future__ import annotations

import uvicorn

from server.app import create_app
from server.settings import parse_settings


def main() -> None:
    settings = parse_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, timeout_graceful_shutdown=5)


# vLLM spawns its engine core, which re-imports __main__: start only in the parent process.
if __name__ == "__main__":
    main()
