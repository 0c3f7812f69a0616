"""Fixes for three bugs of vLLM's CPU path, applied only on the version they were tested on.

Loaded in every vLLM process (the engine core runs in a subprocess) through the
`vllm.general_plugins` entry point declared in pyproject.toml.

1. Mixed batches: the torch `bgmv_shrink` indexes the stacked LoRA weights with the per-row adapter
   index, and base-model rows carry index -1, so they silently get the adapter in the last slot.
   Fix: `cpu_lora_ops` replaces the three bgmv ops with matmuls grouped by adapter, which give
   base-model rows exactly zero (and, by not copying a weight matrix per token, halve the
   engine's time on search workloads).
2. `prompt_logprobs` with LoRA enabled kills the engine: `add_lora_logits` uses one index per
   sequence while prompt logprobs bring one logits row per prompt token. We skip the lm_head LoRA
   path, which is exact because the adapter registry refuses adapters that target lm_head or the
   embeddings (their stacked lm_head weights are then all zeros).
3. Seeded requests kill the engine under load: when a seeded request's prefill is chunked, the
   runner rewinds its torch generator with `set_offset`, which CPU generators do not have
   ("CPU Generator does not use offset"). We skip that rewind on CPU: seeded sampling stays
   reproducible for the same schedule, but, unlike on GPU, can differ when a prefill is split.
"""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger(__name__)

TESTED_VLLM_VERSIONS = ("0.32.0",)


def apply() -> None:
    import vllm
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    if vllm.__version__ not in TESTED_VLLM_VERSIONS:
        logger.warning("CPU LoRA fixes not applied: tested on vLLM %s, found %s",
                       TESTED_VLLM_VERSIONS, vllm.__version__)
        return
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    from engine import cpu_lora_ops

    if lora_ops.bgmv_shrink is cpu_lora_ops.bgmv_shrink:
        return
    for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice"):
        setattr(lora_ops, name, getattr(cpu_lora_ops, name))  # the sgmv ops look them up here
        setattr(punica_cpu, name, getattr(cpu_lora_ops, name))  # the wrapper imported the names
    punica_cpu.PunicaWrapperCPU.add_lora_logits = _skip_lm_head_lora
    GPUModelRunner._bookkeeping_sync = _no_generator_rewind(GPUModelRunner._bookkeeping_sync)


def _skip_lm_head_lora(self, y, x, lora_a_stacked, lora_b_stacked, scale, *, buffer=None, **kwargs):
    return None


def _no_generator_rewind(original):
    import numpy as np

    @functools.wraps(original)
    def _bookkeeping_sync(self, *args, **kwargs):
        # Hide the generators of the requests whose sampled token is discarded (partial
        # prefills), so the original skips their rewind; put them back afterwards.
        generators = self.input_batch.generators
        discarded = np.nonzero(self.discard_request_mask.np[: self.input_batch.num_reqs])[0]
        hidden = {int(i): generators.pop(int(i)) for i in discarded if int(i) in generators}
        try:
            return original(self, *args, **kwargs)
        finally:
            generators.update(hidden)

    return _bookkeeping_sync
