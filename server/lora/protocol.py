"""Request bodies of vLLM's adapter endpoints (plus `pinned`, which vLLM does not have)."""

from __future__ import annotations

from pydantic import Field

from server.openai.protocol import OpenAIModel


class LoadLoRAAdapterRequest(OpenAIModel):
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)
    pinned: bool = False  # never evicted to make room for other adapters


class UnloadLoRAAdapterRequest(OpenAIModel):
    lora_name: str = Field(min_length=1)
