"""`RemoteEngine`: the Engine protocol over a fleet of vLLM OpenAI servers (`vllm serve`).

Generation goes through /v1/completions with token-id prompts (wire.py), a pooling model's
outputs (a reward model's fleet) through /pooling; the tokenizer and chat template are loaded
here and checked against a replica's /tokenize at start. One pooled httpx
client with keep-alive serves every call. Routing (routing.py) keeps the calls of one client
request (the server's `engine.scope`) on one replica; health.py ejects and re-admits replicas; adapters.py keeps the fleet's
adapters in step. A call that fails because of its replica (connection refused or reset, 5xx,
timeout) is retried on another: before any output, from the start; mid-stream (one sample), as a
continuation of the tokens already generated. An upstream 4xx is the caller's: passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import httpx
from transformers import AutoTokenizer

from engine.protocol import (
    AdapterInfo,
    Choice,
    ContextExceeded,
    EngineUnavailable,
    GenerationOutput,
    InvalidEngineRequest,
    PoolingTask,
    SamplingParams,
)
from engine.remote import metrics
from engine.remote.adapters import FleetAdapters, upstream_message
from engine.remote.background import BackgroundTasks
from engine.remote.health import HealthChecker
from engine.remote.pools import Pools
from engine.remote.routing import Replica, choose, round_robin
from engine.remote.wire import completion_body, generation_output, pooled_rows, pooling_body
from engine.scope import RequestScope, current_scope
from engine.scoring import next_token_logprobs
from engine.tokens import TokenizerMethods

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteEngineConfig:
    upstreams: tuple[str, ...]
    tokenizer: str  # a local directory (or hub name) with the served model's tokenizer
    served_model_name: str
    api_key: str | None = None
    timeout_s: float = 300.0  # one engine call, end to end
    connect_timeout_s: float = 3.0
    health_interval_s: float = 2.0
    start_timeout_s: float = 300.0  # wait this long at start for a first replica
    prefix_tokens: int = 64  # prompt tokens hashed to place a request (routing.py)
    slack: int = 4  # calls a hashed replica may run above the least-loaded one
    routing: str = "affinity"  # or "round_robin" (no affinity: a baseline to measure against)
    max_connections: int = 256
    # A call that could not get a connection (our pool full, or the connect timed out while
    # this process's loop or the replica's was busy) is no fault of a replica's: once every
    # replica in rotation has been tried, the call waits backoff x attempt and tries them again,
    # this many times, before it fails. A burst of 640 on two cores timed out connects and, when
    # those ejected the replicas, answered 279 requests 503.
    congestion_retries: int = 3
    congestion_backoff_s: float = 0.5


# faults of our own congestion, not of a replica: waited out (RemoteEngineConfig)
CONGESTION = frozenset({"pool_timeout", "connect_timeout"})


class ReplicaFault(Exception):
    """The call failed because of the replica, not the request: worth another replica."""

    def __init__(self, kind: str, message: str, eject: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.eject = eject


class RemoteEngine(TokenizerMethods):
    def __init__(self, config: RemoteEngineConfig, http: httpx.AsyncClient | Pools, tokenizer,
                 control: httpx.AsyncClient | None = None) -> None:
        """`http` carries the engine calls (pools.py: several small pools, not one large one);
        `control` (default: `http`) the health probes,
        load reads and adapter loads, in a pool of its own: under a burst the engine calls hold
        every connection of theirs, and a probe waiting for one timed out (PoolTimeout) and
        ejected every healthy replica (measured: 48 of a 640-request burst got 503s)."""
        self.config = config
        self.model_name = config.served_model_name
        self.max_model_len = 0  # read from the fleet at start
        self.upstream_model = ""  # the base model's name on the replicas
        self.replicas = [Replica(url.rstrip("/")) for url in config.upstreams]
        self._http = http
        self.tokenizer = tokenizer
        self._control = http if control is None else control
        self.health = HealthChecker(self.replicas, self._control, config.health_interval_s,
                                    on_rejoin=self._rejoin)
        self.adapters = FleetAdapters(self.replicas, self._control, self.health.eject)
        self._background = BackgroundTasks()
        self._aborts: dict[str, asyncio.Event] = {}
        self._turns = itertools.count()
        # request scope -> the replica its calls go to; an entry leaves with its request
        self._sticky: weakref.WeakKeyDictionary[RequestScope, str] = weakref.WeakKeyDictionary()

    # --- start ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Waits for a first replica, reads the model from it, checks the tokenizer against it."""
        deadline = asyncio.get_running_loop().time() + self.config.start_timeout_s
        while True:
            await self.health.probe_all()
            up = [r for r in self.replicas if r.healthy]
            if up:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"no upstream answered /health within "
                                   f"{self.config.start_timeout_s:.0f} s: {self.config.upstreams}")
            await asyncio.sleep(1)
        models = (await self._http.get(f"{up[0].url}/v1/models")).json()["data"]
        base = next(m for m in models if not m.get("parent"))
        self.upstream_model = base["id"]
        self.max_model_len = int(base["max_model_len"])
        await self._check_tokenizer(up[0])
        self.health.start()

    async def _check_tokenizer(self, replica: Replica) -> None:
        probe = "Compute: 12+3*4\nAnswer: 24 ü 😀"
        checks = [({"prompt": probe}, self.encode(probe))]
        if self.has_chat_template():
            messages = [{"role": "user", "content": probe}]
            checks.append(({"messages": messages, "add_generation_prompt": True},
                           self.encode(self.render_chat(messages), add_special_tokens=False)))
        for body, local in checks:
            response = await self._http.post(f"{replica.url}/tokenize",
                                              json={"model": self.upstream_model, **body})
            response.raise_for_status()
            remote = response.json()["tokens"]
            if remote != local:
                what = "chat template" if "messages" in body else "tokenizer"
                raise RuntimeError(
                    f"the local {what} ({self.config.tokenizer}) does not match upstream "
                    f"{replica.url}'s: {local[:12]}... against {remote[:12]}...; pass "
                    "--tokenizer (or --model) the directory of the model the replicas serve")

    def replicas_in_rotation(self) -> int:
        return sum(replica.healthy for replica in self.replicas)

    async def _rejoin(self, replica: Replica) -> None:
        if self.upstream_model:  # after start: a replica coming back gets the adapters again
            await self.adapters.reconcile(replica)

    # --- generation ----------------------------------------------------------------------------

    async def generate(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams,
        request_id: str,
        adapter: str | None = None,
    ) -> AsyncGenerator[GenerationOutput, None]:
        if adapter is not None and adapter not in self.adapters.loaded:
            raise InvalidEngineRequest(f"adapter {adapter!r} is not loaded")
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        model = adapter or self.upstream_model
        scope = current_scope()
        tried: set[str] = set()
        generated: list[int] = []  # of a single streamed sample, for a mid-stream failover
        call_params = params
        aborted = self._aborts.setdefault(request_id, asyncio.Event())
        waits = 0  # rounds waited out for congestion
        try:
            while True:
                replica = self._choose(ids, scope, tried)
                calls = self._call(replica, ids + generated, call_params, model, request_id,
                                   aborted)
                try:
                    async for out in calls:
                        if generated or out.prompt_token_ids != ids:
                            out = dataclasses.replace(out, prompt_token_ids=ids)
                        for choice in out.choices:
                            generated.extend(choice.token_ids)
                        yield out
                    return
                except ReplicaFault as fault:
                    self._failed(replica, fault, tried)
                    if fault.kind in CONGESTION and waits < self.config.congestion_retries \
                            and not self._untried(tried):
                        waits += 1
                        await asyncio.sleep(self.config.congestion_backoff_s * waits)
                        tried.clear()  # the ejected ones stay out: they are not in rotation
                        if aborted.is_set():
                            yield _aborted(request_id, ids, params.n)
                            return
                    if generated:
                        if params.n != 1:
                            raise EngineUnavailable(f"upstream {replica.url} failed while "
                                                    f"streaming {params.n} samples") from fault
                        call_params = dataclasses.replace(
                            params, max_tokens=params.max_tokens - len(generated))
                        if call_params.max_tokens <= 0:
                            yield _finished_by_length(request_id, ids)
                            return
                finally:
                    await calls.aclose()  # closes its connection when our caller stops early
        finally:
            self._aborts.pop(request_id, None)

    def _failed(self, replica: Replica, fault: ReplicaFault, tried: set[str]) -> None:
        """Counts `replica`'s fault, ejects it if the fault says so, and rules it out of the
        call's retries (`tried`)."""
        metrics.ERRORS.labels(replica.url, fault.kind).inc()
        metrics.RETRIES.labels(replica.url).inc()
        if fault.eject:
            self.health.eject(replica, str(fault))
        tried.add(replica.url)
        log.warning("upstream %s failed (%s); retrying elsewhere", replica.url, fault)

    def _untried(self, tried: set[str]) -> bool:
        return any(r.healthy and r.url not in tried for r in self.replicas)

    def _choose(self, ids: list[int], scope: RequestScope | None, tried: set[str]) -> Replica:
        try:
            if self.config.routing == "round_robin":
                return round_robin(self.replicas, tried, next(self._turns))
            replica = choose(self.replicas, ids, self._sticky.get(scope) if scope else None,
                             tried, self.config.prefix_tokens, self.config.slack)
            if scope is not None:
                self._sticky[scope] = replica.url  # later calls of the request follow it
            return replica
        except EngineUnavailable:
            if tried:
                raise EngineUnavailable(f"the engine call failed on every replica in rotation "
                                        f"({', '.join(sorted(tried))}); retry shortly") from None
            raise

    async def _call(self, replica: Replica, ids: list[int], params: SamplingParams, model: str,
                    request_id: str, aborted: asyncio.Event
                    ) -> AsyncGenerator[GenerationOutput, None]:
        scope = current_scope()
        body = completion_body(model, ids, params, stream=not params.final_only,
                               cache_salt=scope.cache_salt if scope is not None else None)
        url = f"{replica.url}/v1/completions"
        with _upstream_call(replica):
            if params.final_only:
                response = await _unless_aborted(self._http.post(url, json=body), aborted)
                if response is None:
                    yield _aborted(request_id, ids, params.n)
                    return
                self._check(response, model, replica)
                out = generation_output(request_id, response.json(), params.logprobs, ids,
                                        _named_prompt_k(params))
                yield dataclasses.replace(out, finished=True)
                return
            async with self._http.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._check(response, model, replica)
                done: set[int] = set()
                async for data in _events(response, aborted):
                    if data is None:
                        yield _aborted(request_id, ids, params.n)
                        return
                    if not data.get("choices"):
                        continue  # a usage-only chunk
                    out = generation_output(request_id, data, params.logprobs, ids,
                                            _named_prompt_k(params))
                    done |= {c.index for c in out.choices if c.finish_reason is not None}
                    yield dataclasses.replace(out, finished=len(done) == params.n)
                if len(done) < params.n:
                    raise ReplicaFault("truncated", "the stream ended before every sample did")

    def _check(self, response: httpx.Response, model: str, replica: Replica) -> None:
        status = response.status_code
        if status < 400:
            return
        message = upstream_message(response)
        if status in (401, 403):  # the operator's configuration, not the caller's request
            raise InvalidEngineRequest(f"upstream {replica.url} refused this server's key "
                                       f"({status}: {message}); check --upstream-api-key",
                                       status=502)
        if status >= 500 or status == 429:
            raise ReplicaFault(f"http_{status}", f"{status}: {message}", eject=status != 429)
        if status == 404 and model in self.adapters.loaded:
            # the replica restarted between two probes and lost the adapter: reload it there
            self._background.start(f"reconciling the adapters of {replica.url}",
                                   self.adapters.reconcile, replica)
            raise ReplicaFault("adapter_missing", f"404: {message}", eject=False)
        refusal = ContextExceeded if "maximum context length" in message else InvalidEngineRequest
        raise refusal(message, status=status)

    async def abort(self, request_id: str) -> None:
        event = self._aborts.get(request_id)
        if event is not None:
            event.set()

    async def next_token_logprobs(
        self, prompt: str | Sequence[int], k: int, adapter: str | None = None
    ) -> dict[str, float]:
        return await next_token_logprobs(self, prompt, k, adapter)

    # --- pooling -------------------------------------------------------------------------------

    async def pool(self, prompt: str | Sequence[int], task: PoolingTask) -> list[list[float]]:
        """The replicas' /pooling (a fleet of `vllm serve --runner pooling`, a reward model's),
        placed and retried as generation is."""
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        scope = current_scope()
        body = pooling_body(self.upstream_model, ids, task,
                            cache_salt=scope.cache_salt if scope is not None else None)
        tried: set[str] = set()
        while True:
            replica = self._choose(ids, scope, tried)
            try:
                with _upstream_call(replica):
                    response = await self._http.post(f"{replica.url}/pooling", json=body)
                if response.status_code == 404 and "error" not in response.text:
                    # a route the server does not have, not vLLM's 404 for an unknown model
                    raise InvalidEngineRequest(
                        f"upstream {replica.url} serves no pooling model (it has no /pooling); "
                        "serve a reward model with a classification head with `vllm serve "
                        "MODEL --runner pooling`", status=502)
                self._check(response, self.upstream_model, replica)
                return pooled_rows(response.json())
            except ReplicaFault as fault:
                self._failed(replica, fault, tried)

    # --- adapters, health ----------------------------------------------------------------------

    async def add_adapter(self, name: str, path: str) -> None:
        await self.adapters.add(name, path)

    async def remove_adapter(self, name: str) -> None:
        await self.adapters.remove(name)

    async def list_adapters(self) -> list[AdapterInfo]:
        return self.adapters.list()

    async def check_health(self) -> None:
        if not any(r.healthy for r in self.replicas):
            raise EngineUnavailable("no upstream vLLM replica is answering")

    async def shutdown(self) -> None:
        await self.health.stop()
        await self._background.cancel()
        await self._http.aclose()
        if self._control is not self._http:
            await self._control.aclose()


@contextlib.contextmanager
def _upstream_call(replica: Replica) -> Iterator[None]:
    """One call on `replica`: counted in flight (routing's load) while it runs, and a transport
    failure raised as the replica's fault."""
    replica.in_flight += 1
    metrics.IN_FLIGHT.labels(replica.url).inc()
    metrics.CALLS.labels(replica.url).inc()
    try:
        yield
    except httpx.PoolTimeout as error:  # our own pool was full: no fault of the replica's
        raise ReplicaFault("pool_timeout", f"{type(error).__name__}", eject=False) from error
    except httpx.ConnectTimeout as error:
        # a busy host, or this process's own loop too busy to see the connect complete; a dead
        # replica refuses at once (ConnectError, below) and a hung one fails its probes
        raise ReplicaFault("connect_timeout", f"{type(error).__name__}", eject=False) from error
    except httpx.TimeoutException as error:
        raise ReplicaFault("timeout", f"{type(error).__name__}") from error
    except httpx.TransportError as error:
        raise ReplicaFault("connection", f"{type(error).__name__}: {error}") from error
    finally:
        replica.in_flight -= 1
        metrics.IN_FLIGHT.labels(replica.url).dec()


async def _unless_aborted(request, aborted: asyncio.Event):
    """The awaited response, or None once `aborted` is set (the request is then cancelled,
    which closes its connection: vLLM aborts a request whose client left)."""
    call = asyncio.ensure_future(request)
    stop = asyncio.ensure_future(aborted.wait())
    try:
        await asyncio.wait({call, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not call.done():
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
    return call.result() if not call.cancelled() else None


async def _events(response: httpx.Response, aborted: asyncio.Event
                  ) -> AsyncIterator[dict | None]:
    """The stream's `data:` events as dicts; None (then nothing) once aborted."""
    async for line in response.aiter_lines():
        if aborted.is_set():
            yield None
            return
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            return
        event = json.loads(data)
        if "error" in event:  # the server failed after the headers were sent
            raise ReplicaFault("stream_error", str(event["error"].get("message", event["error"])))
        yield event


def _aborted(request_id: str, ids: list[int], n: int) -> GenerationOutput:
    return GenerationOutput(request_id, ids, [Choice(i, "", [], finish_reason="abort")
                                              for i in range(n)], finished=True)


def _finished_by_length(request_id: str, ids: list[int]) -> GenerationOutput:
    return GenerationOutput(request_id, ids, [Choice(0, "", [], finish_reason="length")],
                            finished=True)


@contextlib.asynccontextmanager
async def open_remote_engine(config: RemoteEngineConfig) -> AsyncIterator[RemoteEngine]:
    if not config.upstreams:
        raise ValueError("--engine remote needs at least one --upstream URL")
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
    http = Pools.open(config.max_connections, headers=headers, timeout=timeout)
    # a few connections per replica for probes, load reads and adapter loads
    control = httpx.AsyncClient(
        headers=headers, limits=httpx.Limits(max_connections=4 * len(config.upstreams)),
        timeout=timeout)
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)
    engine = RemoteEngine(config, http, tokenizer, control)
    try:
        await engine.start()
        yield engine
    finally:
        await engine.shutdown()


def _named_prompt_k(params: SamplingParams) -> int | None:
    """The prompt logprobs' k when their own tokens are to be named (echo), else None."""
    return params.prompt_logprobs if params.name_prompt_tokens else None
