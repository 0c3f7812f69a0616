"""`LocalEngine`: vLLM's `AsyncLLM` in this process (its engine core runs in a child process).

The only module that imports vLLM. Callers that start it need an `if __name__ == "__main__":` guard:
vLLM spawns the engine core, which re-imports the main module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import torch
from vllm import PoolingParams
from vllm import SamplingParams as VllmSamplingParams
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.exceptions import VLLMClientError
from vllm.inputs import EmbedsPrompt, TextPrompt, TokensPrompt
from vllm.lora.request import LoRARequest
from vllm.platforms import current_platform
from vllm.sampling_params import RequestOutputKind
from vllm.tokenizers.detokenizer_utils import convert_ids_list_to_tokens
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError as VllmEngineDeadError

from engine.metrics import PREFIX_CACHE_CEILING, cacheable_prefix
from engine.scope import current_scope
from engine.protocol import (
    AdapterInfo,
    Choice,
    ContextExceeded,
    EngineDeadError,
    GenerationOutput,
    InvalidEngineRequest,
    PoolingTask,
    SamplingParams,
    TokenLogprob,
)
from engine import logprob_names
from engine.scoring import next_token_logprobs
from engine.tokens import TokenizerMethods


@dataclass(frozen=True)
class LocalEngineConfig:
    model: str
    served_model_name: str
    max_model_len: int | None = None
    # None: 256 MiB on a CPU (vLLM would take about 8 GiB); on a GPU, gpu_memory_utilization.
    kv_cache_bytes: int | None = None
    # None: eager on a CPU, where torch.compile takes 37 s instead of 14 s to a healthy server
    # on 2 cores for ~10% more tokens/s; compiled (and CUDA graphs) on a GPU.
    enforce_eager: bool | None = None
    quantization: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    # any other AsyncEngineArgs field, by name (checked at start)
    engine_args: tuple[tuple[str, object], ...] = ()
    max_logprobs: int = 20
    dtype: str = "auto"
    seed: int = 0
    enable_lora: bool = True
    max_loras: int = 4  # adapters in one batch
    max_lora_rank: int = 16
    # Adapters kept loaded; the registry evicts above it, so vLLM never evicts on its own.
    max_cpu_loras: int = 8
    # KV-cache block (tokens). vLLM's CPU default is 128, longer than a whole demo prompt, so
    # the prefix cache never hits; search shares prefixes, so smaller blocks pay there.
    block_size: int | None = None
    # vLLM's runner ("generate", or "pooling" for a reward model with a classification head)
    # and its pooler settings, e.g. {"tok_pooling_type": "ALL"}.
    runner: str = "auto"
    pooler_config: dict | None = None
    # vLLM's prompt-embeddings input, for prompt adapters (`add_prompt_adapter`); requests only
    # ever carry embeddings the server loaded from a validated artifact.
    enable_prompt_embeds: bool = True


class LocalEngine(TokenizerMethods):
    def __init__(self, llm: AsyncLLM, model_name: str) -> None:
        self._llm = llm
        self.model_name = model_name
        self.max_model_len: int = llm.model_config.max_model_len
        self.tokenizer = llm.tokenizer
        self._adapters: dict[str, LoRARequest] = {}
        self._prompt_adapters: dict[str, torch.Tensor] = {}  # name -> [n_virtual, hidden]
        self._next_adapter_id = 1  # vLLM's LoRA ids are positive and never reused here
        self._token_texts: dict[int, str] = {}
        cache = llm.vllm_config.cache_config
        self._cache_block = cache.block_size if cache.enable_prefix_caching else None

    async def generate(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams,
        request_id: str,
        adapter: str | None = None,
    ) -> AsyncGenerator[GenerationOutput, None]:
        lora = virtual = None
        if adapter is not None:
            lora = self._adapters.get(adapter)
            virtual = self._prompt_adapters.get(adapter)
            if lora is None and virtual is None:
                raise InvalidEngineRequest(f"adapter {adapter!r} is not loaded")
        if virtual is not None:
            ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
            engine_prompt = _with_virtual_tokens(virtual, ids)
        else:
            engine_prompt = (TextPrompt(prompt=prompt) if isinstance(prompt, str)
                             else TokensPrompt(prompt_token_ids=list(prompt)))
        scope = current_scope()
        if scope is not None and scope.cache_salt is not None:
            # the tenant's own prefix cache: blocks hashed with another salt never match
            engine_prompt["cache_salt"] = scope.cache_salt
        try:
            sampling = _to_vllm(params)
        except (VLLMClientError, ValueError) as error:  # vLLM's own checks of the parameters
            raise InvalidEngineRequest(str(error)) from error
        stream = self._llm.generate(engine_prompt, sampling, request_id, lora_request=lora,
                                    priority=params.priority)
        # vLLM counts prefix-cache queries per sequence, except for prompt-logprob requests
        ceiling_counted = self._cache_block is None or params.prompt_logprobs is not None
        try:
            # Closing or cancelling this generator propagates into vLLM's, which aborts the request.
            async for out in stream:
                if not ceiling_counted:
                    ceiling_counted = True
                    PREFIX_CACHE_CEILING.inc(params.n * cacheable_prefix(
                        len(out.prompt_token_ids or ()), self._cache_block))
                yield GenerationOutput(
                    request_id=request_id,
                    # the caller's ids: a prompt adapter's virtual tokens are the engine's own
                    prompt_token_ids=(prompt if virtual is not None
                                      else out.prompt_token_ids or []),
                    choices=[_choice(c, params.logprobs, self._token_text) for c in out.outputs],
                    finished=out.finished,
                    prompt_logprobs=_prompt_logprobs(out.prompt_logprobs, params.prompt_logprobs,
                                                     self._token_text),
                    prompt_token_logprobs=_prompt_token_logprobs(
                        out.prompt_token_ids, out.prompt_logprobs, params.prompt_logprobs,
                        self._token_text) if params.name_prompt_tokens else None,
                )
        except (VllmEngineDeadError, VLLMClientError, ValueError) as error:
            raise _ours(error) from error
        finally:
            await stream.aclose()

    async def abort(self, request_id: str) -> None:
        await self._llm.abort(request_id)

    async def pool(self, prompt: str | Sequence[int], task: PoolingTask) -> list[list[float]]:
        engine_prompt = (
            TokensPrompt(prompt_token_ids=list(prompt)) if not isinstance(prompt, str) else prompt
        )
        # raw logits: the caller applies the activation its model card prescribes
        params = PoolingParams(task=task, use_activation=False)
        data = None
        try:
            async for out in self._llm.encode(engine_prompt, params, f"pool-{uuid.uuid4().hex}"):
                data = out.outputs.data
        except (VllmEngineDeadError, VLLMClientError, ValueError) as error:
            raise _ours(error) from error
        if data is None:
            raise RuntimeError("the engine returned no pooling output")
        # data: [num_labels] for classify, [tokens, num_labels] for token_classify
        rows = data.float().tolist()
        return [rows] if data.dim() == 1 else rows

    async def next_token_logprobs(
        self, prompt: str | Sequence[int], k: int, adapter: str | None = None
    ) -> dict[str, float]:
        return await next_token_logprobs(self, prompt, k, adapter)

    def _token_text(self, token_id: int, decoded: str | None) -> str:
        """vLLM's text for a logprob entry; when it did not decode (detokenize=False), the same
        text from vLLM's own per-token conversion, once per token id."""
        if decoded is not None:
            return decoded
        text = self._token_texts.get(token_id)
        if text is None:
            text = convert_ids_list_to_tokens(self.tokenizer, [token_id])[0]
            self._token_texts[token_id] = text
        return text

    async def add_adapter(self, name: str, path: str) -> None:
        if not self._llm.vllm_config.lora_config:
            raise InvalidEngineRequest("this server runs without LoRA support; start it with "
                                       "--enable-lora to serve adapters")
        lora = LoRARequest(lora_name=name, lora_int_id=self._next_adapter_id, lora_path=path)
        self._next_adapter_id += 1
        try:
            await self._llm.add_lora(lora)
        except VllmEngineDeadError as error:
            raise EngineDeadError(str(error)) from error
        except Exception as error:  # vLLM's loader raises bare Exceptions for bad files
            raise InvalidEngineRequest(f"the engine could not load adapter {name!r}: {error}") \
                from error
        self._adapters[name] = lora

    async def add_prompt_adapter(self, name: str, embeddings) -> None:
        config = self._llm.model_config
        if not config.enable_prompt_embeds:
            raise InvalidEngineRequest("this server runs without prompt embeddings; start it "
                                       "with prompt adapters enabled to serve them")
        virtual = torch.as_tensor(embeddings, dtype=torch.float32)
        hidden = config.get_hidden_size()
        if virtual.ndim != 2 or virtual.shape[1] != hidden or not len(virtual):
            raise InvalidEngineRequest(f"prompt adapter {name!r} must be [n_virtual, {hidden}] "
                                       f"embeddings; got {list(virtual.shape)}")
        if not torch.isfinite(virtual).all():
            raise InvalidEngineRequest(f"prompt adapter {name!r} has non-finite embeddings")
        self._prompt_adapters[name] = virtual.to(config.dtype).contiguous()

    async def remove_adapter(self, name: str) -> None:
        self._prompt_adapters.pop(name, None)
        lora = self._adapters.pop(name, None)
        if lora is not None:
            await self._llm.remove_lora(lora.lora_int_id)

    async def list_adapters(self) -> list[AdapterInfo]:
        return [*(AdapterInfo(name, lora.lora_path) for name, lora in self._adapters.items()),
                *(AdapterInfo(name, "", "prompt") for name in self._prompt_adapters)]

    async def check_health(self) -> None:
        try:
            await self._llm.check_health()
        except VllmEngineDeadError as error:
            raise EngineDeadError(str(error)) from error

    async def shutdown(self) -> None:
        self._llm.shutdown()


@contextlib.asynccontextmanager
async def open_local_engine(config: LocalEngineConfig) -> AsyncIterator[LocalEngine]:
    # AsyncLLM runs its engine core in a child process either way. On CPU, "1" (the default) also
    # spawns a separate model-worker process, which re-imports vLLM: measured here, "0" halves
    # engine start-up (15 s -> 7.5 s) and generates no slower. Set it yourself to override.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    logprob_names.install()
    cpu = current_platform.is_cpu()
    check_block_size(config.block_size, cpu=cpu)
    extra = dict(config.engine_args)
    unknown = sorted(set(extra) - {f.name for f in dataclasses.fields(AsyncEngineArgs)})
    if unknown:
        raise ValueError(f"--engine-args: vLLM has no engine argument {unknown}; use the names "
                         "of vllm.engine.arg_utils.AsyncEngineArgs (e.g. enable_chunked_prefill)")
    kv_cache_bytes = config.kv_cache_bytes
    if kv_cache_bytes is None and cpu:
        kv_cache_bytes = 256 * 2**20
    args = dict(
        model=config.model,
        served_model_name=config.served_model_name,
        max_model_len=config.max_model_len,
        kv_cache_memory_bytes=kv_cache_bytes,
        enforce_eager=cpu if config.enforce_eager is None else config.enforce_eager,
        quantization=config.quantization,
        tensor_parallel_size=config.tensor_parallel_size,
        pipeline_parallel_size=config.pipeline_parallel_size,
        gpu_memory_utilization=config.gpu_memory_utilization,
        max_logprobs=config.max_logprobs,
        dtype=config.dtype,
        seed=config.seed,
        enable_lora=config.enable_lora,
        max_loras=config.max_loras,
        max_lora_rank=config.max_lora_rank,
        max_cpu_loras=config.max_cpu_loras,
        block_size=config.block_size,
        runner=config.runner,
        pooler_config=config.pooler_config,
        enable_prompt_embeds=config.enable_prompt_embeds,
        # requests' own priorities (SamplingParams.priority): single passes ahead of searches
        scheduling_policy="priority",
    )
    args.update(extra)  # the operator's own engine arguments win
    engine = LocalEngine(AsyncLLM.from_engine_args(AsyncEngineArgs(**args)),
                         config.served_model_name)
    try:
        yield engine
    finally:
        await engine.shutdown()


def _ours(error: Exception) -> Exception:
    """vLLM's error as the Engine protocol's: a dead engine, a prompt past the context (vLLM's
    message has said "maximum context length" for years), or another refused request."""
    if isinstance(error, VllmEngineDeadError):
        return EngineDeadError(str(error))
    if "maximum context length" in str(error):
        return ContextExceeded(str(error))
    return InvalidEngineRequest(str(error))


def check_block_size(block_size: int | None, cpu: bool) -> None:
    """vLLM's CPU attention takes only multiples of 32 and says so only from deep inside
    engine start-up (`No common block size for 16`); say it first, naming the setting."""
    if cpu and block_size is not None and block_size % 32:
        raise ValueError(f"block_size={block_size}: vLLM's CPU attention needs a multiple of 32 "
                         "(set --block-size / DELIBERATE_BLOCK_SIZE to 32, 64, ...)")


def _with_virtual_tokens(virtual: torch.Tensor, token_ids: list[int]) -> EmbedsPrompt:
    """vLLM's mixed prompt: the adapter's n virtual-token embeddings, then the prompt's tokens,
    which the engine embeds itself (their rows here are placeholders it does not read)."""
    n, hidden = virtual.shape
    rows = torch.cat([virtual, virtual.new_zeros(len(token_ids), hidden)])  # [n + S, hidden]
    return EmbedsPrompt(prompt_embeds=rows, prompt_token_ids=[0] * n + token_ids,
                        prompt_is_token_ids=[False] * n + [True] * len(token_ids))


def _to_vllm(params: SamplingParams) -> VllmSamplingParams:
    return VllmSamplingParams(
        n=params.n,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        stop=list(params.stop),
        seed=params.seed,
        logprobs=params.logprobs,
        prompt_logprobs=params.prompt_logprobs,
        ignore_eos=params.ignore_eos,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        logit_bias=dict(params.logit_bias) or None,
        detokenize=params.detokenize,
        output_kind=RequestOutputKind.FINAL_ONLY if params.final_only else RequestOutputKind.DELTA,
    )


TokenText = Callable[[int, str | None], str]  # (token id, vLLM's decoded text) -> text


def _choice(output, k: int | None, text: TokenText) -> Choice:
    # output: vllm.outputs.CompletionOutput
    logprobs = None
    if k is not None and output.logprobs is not None:
        logprobs = [
            _position(token_id, position, k, text)
            for token_id, position in zip(output.token_ids, output.logprobs)
        ]
    return Choice(
        index=output.index,
        text=output.text,
        token_ids=list(output.token_ids),
        logprobs=logprobs,
        finish_reason=output.finish_reason,
        stop_reason=output.stop_reason,
    )


def _prompt_logprobs(positions, k: int | None, text: TokenText
                     ) -> list[dict[str, float] | None] | None:
    """vLLM's prompt logprobs (None for the first token) as {token: logprob} per position."""
    if k is None or positions is None:
        return None
    return [None if position is None else
            {text(i, lp.decoded_token): lp.logprob for i, lp in position.items()}
            for position in positions]


def _prompt_token_logprobs(ids, positions, k: int | None, text: TokenText
                           ) -> list[TokenLogprob | None] | None:
    """vLLM's prompt logprobs with each position's own token (it is always in the entry)."""
    if k is None or positions is None or ids is None:
        return None
    return [None if position is None else _position(token_id, position, k, text)
            for token_id, position in zip(ids, positions)]


def _position(token_id: int, position: dict, k: int, text: TokenText) -> TokenLogprob:
    # position: {token_id: Logprob(logprob, rank, decoded_token)}: the top-k plus the sampled token
    sampled = position[token_id]
    ranked = sorted(position.items(), key=lambda item: item[1].rank)
    top = {text(i, lp.decoded_token): lp.logprob for i, lp in ranked if lp.rank <= k}
    return TokenLogprob(token=text(token_id, sampled.decoded_token), logprob=sampled.logprob,
                        top=top)
