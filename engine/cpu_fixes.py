"""Fixes for vLLM's CPU path: one start-up step for any version, and three bugs' patches applied
only on the version they were tested on.

Loaded in every vLLM process (the engine core runs in a subprocess) through the
`vllm.general_plugins` entry point declared in pyproject.toml.

0. AMX permission: on x86 CPUs with AMX and a bf16 model, vLLM's CPU attention runs AMX tile
   instructions, which Linux lets a process execute only after it asked for them
   (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); before that they raise SIGILL. vLLM
   never asks; oneDNN does, lazily, the first time one of its own AMX matmuls runs, which a
   multi-token prefill triggers and a one-token prompt does not. So a one-token first request
   killed the engine core (`Fatal Python error: Illegal instruction` in
   `cpu_attention_with_kv_cache`) while the same request after a longer one succeeded. We ask
   at start-up, in every vLLM process, before any kernel runs.

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

import ctypes
import functools
import logging
import platform

logger = logging.getLogger(__name__)

TESTED_VLLM_VERSIONS = ("0.32.0",)


def apply() -> None:
    import vllm
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    allow_amx()
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


# Linux x86-64 ABI (arch/x86/include/uapi/asm/prctl.h; the syscall number of arch_prctl)
_SYS_ARCH_PRCTL = 158
_ARCH_GET_XCOMP_PERM = 0x1022
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


def allow_amx() -> bool:
    """Asks Linux for this process's permission to use AMX tiles when the CPU has them (the
    permission is per process, so it covers the engine's threads). True when AMX is usable."""
    import torch

    # the check vLLM's CPU attention makes when it picks its AMX kernels
    if not torch.cpu._is_amx_tile_supported():
        return False
    if amx_permitted():
        return True
    if _arch_prctl(_ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) != 0:
        logger.warning("the kernel refused AMX (arch_prctl errno %d): vLLM's AMX attention "
                       "would crash; serve a float32 model (--dtype float32)", ctypes.get_errno())
        return False
    return amx_permitted()


def amx_permitted() -> bool:
    """Whether this process may execute AMX tile instructions (False off Linux x86-64)."""
    mask = ctypes.c_uint64(0)
    if _arch_prctl(_ARCH_GET_XCOMP_PERM, ctypes.addressof(mask)) != 0:
        return False
    return bool(mask.value >> _XFEATURE_XTILEDATA & 1)


def _arch_prctl(code: int, arg: int) -> int:
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return -1
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_ARCH_PRCTL, ctypes.c_int(code), ctypes.c_ulong(arg))


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
