"""A scripted engine implementing the `Engine` protocol, for fast tests without vLLM.

One token per character (token id = code point), like the demo model's tokenizer. Each choice
replies with `reply` (choice i gets `reply` with `i` appended when n > 1), one token per delta.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from engine.scope import RequestScope, current_scope
from engine.protocol import (
    AdapterInfo,
    Choice,
    EngineDeadError,
    GenerationOutput,
    SamplingParams,
    TokenLogprob,
)


EOS_ID = 2  # as the demo tokenizer's </s>; the scripted step engine ends solutions with it


class CharTokenizer:
    """What a tool parser reads of a tokenizer: its vocabulary (one token per character)."""

    def get_vocab(self) -> dict[str, int]:
        return {chr(i): i for i in range(32, 127)}


@dataclass
class FakeEngine:
    model_name: str = "demo"
    max_model_len: int = 64
    reply: str = "1+1=2\nAnswer: 2"
    replies: dict[str, str] = field(default_factory=dict)  # prompt text -> its reply, else `reply`
    dead: bool = False
    # When set, generation stops after the first token until the event is set (disconnect tests).
    hold: asyncio.Event | None = None
    requests: list[tuple[str, list[int], SamplingParams]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    fail_with: Exception | None = None  # raised before the first token
    fail_midway: Exception | None = None  # raised after the first token
    adapters: dict[str, str] = field(default_factory=dict)  # resident: name -> path
    adapter_of: dict[str, str | None] = field(default_factory=dict)  # request id -> adapter
    # request id -> the request scope the engine saw (engine/scope.py: the tenant's cache salt)
    scopes: dict[str, RequestScope | None] = field(default_factory=dict)
    tokenizer: CharTokenizer = field(default_factory=CharTokenizer)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in token_ids if i != EOS_ID)  # EOS is special: no text

    def render_chat(self, messages: Sequence[dict], tools: Sequence[dict] | None = None) -> str:
        # tools offered: their names first; a tool's result is read like a user turn
        offered = "".join(f"tool {t['function']['name']}\n" for t in tools or ())
        return offered + "".join(m["content"] + "\n" for m in messages
                                 if m["role"] in ("user", "tool"))

    def reply_for(self, index: int, n: int, prompt: str = "") -> str:
        return self.replies.get(prompt, self.reply) + (str(index) if n > 1 else "")

    async def generate(
        self, prompt: str | Sequence[int], params: SamplingParams, request_id: str,
        adapter: str | None = None,
    ) -> AsyncGenerator[GenerationOutput, None]:
        if self.dead:
            raise EngineDeadError("fake engine is dead")
        if self.fail_with is not None:
            raise self.fail_with
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        assert adapter is None or adapter in self.adapters, f"adapter {adapter} not resident"
        self.requests.append((request_id, ids, params))
        self.adapter_of[request_id] = adapter
        self.scopes[request_id] = current_scope()
        self.running.add(request_id)
        texts = [self.reply_for(i, params.n, self.decode(ids))[: params.max_tokens]
                 for i in range(params.n)]
        finished = False
        try:
            for step in range(max(map(len, texts))):
                if step == 1 and self.hold is not None:
                    await self.hold.wait()
                if step == 1 and self.fail_midway is not None:
                    raise self.fail_midway
                choices = [self._choice(i, text, step, params) for i, text in enumerate(texts)
                           if step < len(text)]
                finished = step == max(map(len, texts)) - 1
                prompt = self._prompt_logprobs(ids, params) if step == 0 else (None, None)
                yield GenerationOutput(request_id, ids, choices, finished, *prompt)
        finally:
            self.running.discard(request_id)
            if not finished:  # closed or cancelled early: what vLLM's abort-on-close does
                self.aborted.append(request_id)

    @staticmethod
    def _prompt_logprobs(ids: list[int], params: SamplingParams) -> tuple:
        """Each prompt token after the first at logprob -0.5, "?" next at -1.5 (top k)."""
        if params.prompt_logprobs is None:
            return None, None
        tops = [dict(list({chr(i): -0.5, "?": -1.5}.items())[: params.prompt_logprobs])
                for i in ids[1:]]
        named = None
        if params.name_prompt_tokens:
            named = [None, *(TokenLogprob(chr(i), -0.5, top) for i, top in zip(ids[1:], tops))]
        return [None, *({**top, chr(i): -0.5} for i, top in zip(ids[1:], tops))], named

    def _choice(self, index: int, text: str, step: int, params: SamplingParams) -> Choice:
        char = text[step]
        last = step == len(text) - 1
        reason = None
        if last:
            reason = "length" if len(text) == params.max_tokens else "stop"
        logprobs = None
        if params.logprobs is not None:
            top = dict(list({char: -0.25, "?": -1.5, "!": -2.5}.items())[: params.logprobs])
            logprobs = [TokenLogprob(token=char, logprob=-0.25, top=top)]
        return Choice(index, char, [ord(char)], logprobs, reason)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def next_token_logprobs(self, prompt, k, adapter=None) -> dict[str, float]:
        return dict(list({self.reply[0]: -0.25, "?": -1.5}.items())[:k])

    async def add_adapter(self, name: str, path: str) -> None:
        self.adapters[name] = path

    async def remove_adapter(self, name: str) -> None:
        del self.adapters[name]

    async def list_adapters(self) -> list[AdapterInfo]:
        return [AdapterInfo(name, path) for name, path in self.adapters.items()]

    async def check_health(self) -> None:
        if self.dead:
            raise EngineDeadError("fake engine is dead")

    async def shutdown(self) -> None:
        self.dead = True
