"""The Engine protocol's tokenizer methods over a Hugging Face tokenizer, for both engines: the
in-process one reads vLLM's own tokenizer, the remote one the same model's loaded here, and each
must tokenize, detokenize and template exactly as vLLM does for its outputs to line up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.protocol import InvalidEngineRequest


class TokenizerMethods:
    """`encode`, `decode` and `render_chat` over `self.tokenizer` (a transformers tokenizer, or
    vLLM's, which has the same methods), for an engine serving `self.model_name`."""

    tokenizer: object
    model_name: str

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, token_ids: Sequence[int]) -> str:
        # as vLLM's detokenizer writes outputs: special tokens skipped, no space clean-up
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render_chat(self, messages: Sequence[dict[str, Any]],
                    add_generation_prompt: bool = True,
                    tools: Sequence[dict[str, Any]] | None = None) -> str:
        if not self.has_chat_template():
            raise InvalidEngineRequest(
                f"model {self.model_name!r} has no chat template; use /v1/completions")
        return self.tokenizer.apply_chat_template(
            list(messages), tools=None if tools is None else list(tools), tokenize=False,
            add_generation_prompt=add_generation_prompt)
