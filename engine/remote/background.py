"""Work the remote engine starts and no request awaits (reloading a replica's adapters): each
task is kept until it ends (asyncio holds tasks only weakly), one per key at a time (a second
start while one runs joins it), its failure logged, and whatever still runs cancelled at
shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task] = {}

    def start(self, key: str, work: Callable[..., Coroutine[Any, Any, Any]], *args: Any
              ) -> asyncio.Task:
        """`work(*args)` in a task named `key`, unless a task of that key is running: that one."""
        running = self._tasks.get(key)
        if running is not None:
            return running
        task = self._tasks[key] = asyncio.create_task(work(*args), name=key)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task) -> None:
        if self._tasks.get(task.get_name()) is task:
            del self._tasks[task.get_name()]
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.warning("%s failed: %s: %s", task.get_name(), type(error).__name__, error)

    async def cancel(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
