"""Replica health: ejection on a failed call or probe, and probing back into rotation.

Every `interval_s` each replica's /health is probed. A replica in rotation that fails is ejected
(on a timeout, the second in a row: a burst slows answers without stopping them);
an ejected one that answers gets the fleet's adapters again (`on_rejoin`) before it takes
traffic. The probe of a healthy replica also reads its load (running + waiting requests) from
its /metrics, so routing sees what other clients of the fleet send it; a replica whose /metrics
is slow or unreadable but whose /health answers stays in rotation with the load last read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.remote import metrics
from engine.remote.routing import Replica

log = logging.getLogger(__name__)

LOAD_SERIES = ("vllm:num_requests_running", "vllm:num_requests_waiting")


class HealthChecker:
    def __init__(self, replicas: Sequence[Replica], http: httpx.AsyncClient, interval_s: float,
                 on_rejoin: Callable[[Replica], Awaitable[None]]) -> None:
        self.replicas = replicas
        self._http = http
        self._interval_s = interval_s
        self._on_rejoin = on_rejoin
        self._task: asyncio.Task | None = None
        self._rejoining: set[str] = set()
        self._load_unread: set[str] = set()  # replicas whose last /metrics read failed
        self._timed_out: set[str] = set()  # replicas whose last probe timed out

    def eject(self, replica: Replica, reason: str) -> None:
        if replica.healthy:
            replica.healthy = False
            metrics.EJECTIONS.labels(replica.url).inc()
            metrics.HEALTHY.labels(replica.url).set(0)
            log.warning("upstream %s ejected: %s", replica.url, reason)

    async def probe_all(self) -> None:
        await asyncio.gather(*(self._probe(r) for r in self.replicas))

    async def _probe(self, replica: Replica) -> None:
        try:
            response = await self._http.get(f"{replica.url}/health", timeout=self._interval_s + 1)
            response.raise_for_status()
        except httpx.TimeoutException as error:
            # one slow answer under a burst is a busy replica (or a busy loop here); two in a
            # row is one that no longer answers
            if replica.url in self._timed_out or not replica.healthy:
                self.eject(replica, f"health probe timed out twice ({type(error).__name__})")
            else:
                self._timed_out.add(replica.url)
                log.info("upstream %s: health probe timed out once (%s)", replica.url,
                         type(error).__name__)
            return
        except (httpx.HTTPError, ValueError) as error:
            self.eject(replica, f"health probe failed ({type(error).__name__}: {error})")
            return
        self._timed_out.discard(replica.url)
        if replica.healthy:
            await self._read_load(replica)
            return
        if replica.url in self._rejoining:
            return
        self._rejoining.add(replica.url)
        try:
            await self._on_rejoin(replica)
        except Exception as error:  # noqa: BLE001 - stays out of rotation, probed again
            log.warning("upstream %s answers but could not rejoin: %s", replica.url, error)
            return
        finally:
            self._rejoining.discard(replica.url)
        replica.healthy = True
        metrics.HEALTHY.labels(replica.url).set(1)
        log.info("upstream %s in rotation", replica.url)

    async def _read_load(self, replica: Replica) -> None:
        """Updates the replica's reported load; a read that fails keeps the last one, logged
        when it starts failing and when it reads again."""
        try:
            replica.reported_load = await self._reported_load(replica)
        except (httpx.HTTPError, ValueError) as error:
            if replica.url not in self._load_unread:
                self._load_unread.add(replica.url)
                log.warning("upstream %s: /metrics unread (%s: %s); routing keeps its last "
                            "load, %d", replica.url, type(error).__name__, error,
                            replica.reported_load)
            return
        if replica.url in self._load_unread:
            self._load_unread.discard(replica.url)
            log.info("upstream %s: /metrics read again", replica.url)

    async def _reported_load(self, replica: Replica) -> int:
        response = await self._http.get(f"{replica.url}/metrics", timeout=self._interval_s + 1)
        if response.status_code != 200:
            return replica.reported_load
        total = 0.0
        for family in text_string_to_metric_families(response.text):
            if family.name in LOAD_SERIES:
                total += sum(sample.value for sample in family.samples)
        return int(total)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.probe_all()
            except Exception:  # noqa: BLE001 - the next round probes again
                log.exception("upstream health probes failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
