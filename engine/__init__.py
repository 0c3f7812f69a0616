"""The engine interface. `local` (vLLM in-process) is imported only by the code that starts it."""

from engine.protocol import (
    AdapterInfo,
    Choice,
    Engine,
    EngineDeadError,
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
    "GenerationOutput",
    "InvalidEngineRequest",
    "PromptAdapterEngine",
    "SamplingParams",
    "TokenLogprob",
]
