"""vLLM offline (`vllm.LLM`) as the recipes start it: float32, a small KV cache, in-process.

vLLM's CPU build pins the process to one torch thread and keeps its KV cache until exit; a recipe
that also trains runs it in a child process (see `training.difficulty`).
"""

from __future__ import annotations

import os


def make_llm(model: str, *, max_model_len: int = 512, seed: int = 0, **engine_args):
    """An `LLM` of `model`; `engine_args` go to vLLM as they are (enable_lora, max_logprobs ...)."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM  # slow import, after the recipe's argument errors

    return LLM(model=str(model), dtype="float32", max_model_len=max_model_len, seed=seed,
               **engine_args)
