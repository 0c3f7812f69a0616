"""The engine interface. `local` (vLLM in-process) and `remote` (a fleet of `vllm serve`
replicas) are imported only by the code that starts them."""

from engine.protocol import (
    AdapterInfo,
    Choice,
    Engine,
    EngineDeadError,
    EngineUnavailable,
    Fleet,
    GenerationOutput,
    InvalidEngineRequest,
    PromptAdapterEngine,
    SamplingParams,
    TokenLogprob,
)

__all__ = [
    "AdapterInfo",
    "Choice",
    "Engine",
    "EngineDeadError",
    "EngineUnavailable",
    "Fleet",
    "GenerationOutput",
    "InvalidEngineRequest",
    "PromptAdapterEngine",
    "SamplingParams",
    "TokenLogprob",
]
