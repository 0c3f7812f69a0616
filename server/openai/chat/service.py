"""Chat completions: messages are rendered with the model's chat template, then generated from.
With a reasoning parser, a model's `<think>...</think>` goes to the message's `reasoning` and
`reasoning_content`, the rest to `content`. A search streams its progress as reasoning: each new
best path (its thinking, for a thinking model) as an increment to append (`Increments`). With
`tools`, a single pass's answer is read for tool calls by vLLM's parser (chat/tools.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from engine.protocol import GenerationOutput, TokenLogprob
from search.problem import SearchProblem, SearchResult
from server.errors import bad_request
from server.openai.generation import EngineRequest, Result
from server.openai.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    DeltaMessage,
    TokenLogprobEntry,
    TopLogprob,
)
from server.openai.chat.thinking import ThinkingStream, opens_thinking, split_thinking
from server.openai.chat.tools import ToolCalling, ToolStream, template_messages
from server.openai.serving import Serving, chunk_body, filter_reason
from server.reasoning.progress import Increments, TraceNodes, with_progress
from server.reasoning.response import plain_usage, reasoning_object, search_usage
from server.reasoning.service import Decision
from verifiers.protocol import ScoringContext


class ChatService(Serving[ChatCompletionRequest]):
    def __init__(self, *args, tools: ToolCalling | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tools = tools or ToolCalling(None, None)

    def prepare(self, request: ChatCompletionRequest) -> EngineRequest:
        self.generation.check_model(request.model)
        self.tools.check(request)
        if request.top_logprobs is not None and not request.logprobs:
            raise bad_request("top_logprobs needs logprobs=true", param="top_logprobs")
        limit = self.generation.limits.max_messages
        if len(request.messages) > limit:
            raise bad_request(f"{len(request.messages)} messages are more than this server's "
                              f"limit of {limit}; send fewer", param="messages")
        engine = self.generation.engine
        text = self.render(request)
        # The template already holds any special tokens the model expects.
        ids = engine.encode(text, add_special_tokens=False)
        limit_param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        return self.generation.build(
            request, ids, prompt_param="messages", max_tokens=request.token_limit(),
            max_tokens_param=limit_param,
            logprobs=(request.top_logprobs or 0) if request.logprobs else None,
            logprobs_param="top_logprobs", id_prefix="chatcmpl",
        )

    def render(self, request: ChatCompletionRequest) -> str:
        """The prompt: the messages (and the tools offered) through the chat template."""
        tools = self.tools.tools_for_template(request)
        messages = template_messages(request)
        if tools is None:
            return self.generation.engine.render_chat(messages)
        return self.generation.engine.render_chat(messages, tools=tools)

    def problem(self, request: ChatCompletionRequest) -> SearchProblem:
        messages = template_messages(request)
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"),
                        messages[-1]["content"])
        return SearchProblem(prompt=self.render(request),
                             question=question.strip(), add_special_tokens=False,
                             context=ScoringContext(messages=tuple(messages)))

    def single_pass_feature(self, request: ChatCompletionRequest) -> str | None:
        return self.reasoning.single_pass_feature(request, logprobs=request.logprobs,
                                                  tools=request.uses_tools())

    def thinking_opened(self, request: ChatCompletionRequest) -> bool | None:
        """None without a reasoning parser; else whether the prompt leaves the model inside
        `<think>` (an R1 distill's template)."""
        if self.reasoning.settings.reasoning_parser is None:
            return None
        return opens_thinking(self.render(request))

    def message(self, request: ChatCompletionRequest, text: str,
                filtered: bool = False) -> AssistantMessage:
        """The assistant's message of an output: its thinking apart (a reasoning parser), and
        its tool calls read (a request with tools; not from a withheld answer)."""
        opened = self.thinking_opened(request)
        thinking, answer = (None, text) if opened is None else split_thinking(text, opened)
        content, calls = answer, None
        if request.uses_tools() and not filtered:
            parsed = self.tools.parse(request, answer)
            content, calls = parsed.content, parsed.tool_calls or None
        return AssistantMessage(content=content, tool_calls=calls, reasoning=thinking,
                                reasoning_content=thinking)

    @staticmethod
    def finish_reason(message: AssistantMessage, finish_reason: str | None) -> str | None:
        """As vLLM says it: "tool_calls" when the model called tools and stopped."""
        return "tool_calls" if message.tool_calls and finish_reason == "stop" else finish_reason

    def single_response(self, request: ChatCompletionRequest, job: EngineRequest,
                        decision: Decision, result: Result) -> ChatCompletionResponse:
        choices = []
        for i, c in enumerate(result.choices):
            message = self.message(request, c.text, filtered=c.filter_reason is not None
                                   or decision.abstained)
            choices.append(ChatChoice(
                index=i, message=message, finish_reason=self.finish_reason(message,
                                                                           c.finish_reason),
                content_filter_reason=c.filter_reason,
                logprobs=_logprobs(c.logprobs) if request.logprobs else None))
        return ChatCompletionResponse(
            id=job.request_id, model=request.model, choices=choices,
            usage=plain_usage(result.prompt_tokens, result.completion_tokens, decision),
            reasoning=reasoning_object(decision))

    def search_response(self, request: ChatCompletionRequest, job: EngineRequest,
                        decision: Decision, result: SearchResult) -> ChatCompletionResponse:
        choices = [ChatChoice(index=i, message=self.message(request, a.text),
                              finish_reason=a.finish_reason,
                              content_filter_reason=a.filter_reason)
                   for i, a in enumerate(result.answers)]
        return ChatCompletionResponse(
            id=job.request_id, model=request.model, choices=choices,
            usage=search_usage(len(job.prompt_token_ids), decision, result),
            reasoning=reasoning_object(decision, result))

    async def search_chunks(self, request: ChatCompletionRequest, job: EngineRequest,
                            decision: Decision) -> AsyncIterator[dict]:
        """Progress as reasoning (each new best path, as increments), with
        `reasoning.stream_trace` the tree's new and changed nodes in chunks of their own
        (`reasoning_trace`, no choices), then the answers as content."""
        yield _chunk(job, request, [ChatChunkChoice(index=0, delta=DeltaMessage(
            role="assistant", content=""))])
        opened = self.thinking_opened(request)
        increments = Increments()

        async def run(p: SearchProblem) -> SearchResult:
            return await self.search(request, job, decision, p)

        async for item in with_progress(run, decision.problem,
                                        trace=bool(decision.options.stream_trace)):
            if isinstance(item, TraceNodes):
                yield _chunk(job, request, [], trace=item.nodes)
                continue
            if isinstance(item, str):
                if self.blocked(request, item):
                    continue  # a path the caller's policy blocks is not shown as progress
                thinking = None if opened is None else split_thinking(item, opened)[0]
                delta = increments.delta(item if thinking is None else thinking)
                if delta:
                    yield _chunk(job, request, [ChatChunkChoice(index=0, delta=DeltaMessage(
                        reasoning=delta, reasoning_content=delta))])
                continue
            for i, answer in enumerate(item.answers):
                yield _chunk(job, request, [ChatChunkChoice(
                    index=i, delta=DeltaMessage(content=self.message(request, answer.text).content),
                    finish_reason=answer.finish_reason,
                    content_filter_reason=answer.filter_reason)])
            yield _chunk(job, request, [], search_usage(len(job.prompt_token_ids), decision, item),
                         reasoning=reasoning_object(decision, item))

    async def single_chunks(self, request: ChatCompletionRequest, job: EngineRequest,
                            decision: Decision, outputs: AsyncIterator[GenerationOutput]
                            ) -> AsyncIterator[dict]:
        # As OpenAI does: the role comes first, alone, once per choice.
        yield _chunk(job, request, [ChatChunkChoice(
            index=i, delta=DeltaMessage(role="assistant", content="")) for i in range(job.params.n)])
        prompt_tokens, completion_tokens = len(job.prompt_token_ids), 0
        opened = self.thinking_opened(request)
        thinking = [ThinkingStream(opened) for _ in range(job.params.n)] if opened is not None \
            else None
        tools = ([self.tools.stream(request) for _ in range(job.params.n)]
                 if request.uses_tools() else None)
        async for out in outputs:
            prompt_tokens = len(out.prompt_token_ids)
            for delta in out.choices:
                completion_tokens += len(delta.token_ids)
                message = DeltaMessage(content=delta.text)
                if thinking is not None:
                    message = _thinking_delta(thinking[delta.index], delta.text,
                                              done=delta.finish_reason is not None)
                if tools is not None and delta.finish_reason != "content_filter":
                    message = _tool_delta(tools[delta.index], message, delta.token_ids,
                                          done=delta.finish_reason is not None)
                if message is None and delta.finish_reason is None and not delta.logprobs:
                    continue  # a tag still arriving: nothing to send yet
                finish = delta.finish_reason
                if tools is not None and tools[delta.index].called and finish == "stop":
                    finish = "tool_calls"
                yield _chunk(job, request, [ChatChunkChoice(
                    index=delta.index, delta=message or DeltaMessage(content=""),
                    finish_reason=finish, content_filter_reason=filter_reason(delta),
                    logprobs=_logprobs(delta.logprobs or ()) if request.logprobs else None)])
        yield _chunk(job, request, [], plain_usage(prompt_tokens, completion_tokens, decision),
                     reasoning=reasoning_object(decision))


def _thinking_delta(stream: ThinkingStream, text: str, done: bool) -> DeltaMessage | None:
    """The delta of a thinking model's output piece (None when it holds nothing yet)."""
    thinking, answer = stream.feed(text)
    if done:
        more_thinking, more_answer = stream.close()
        thinking, answer = thinking + more_thinking, answer + more_answer
    if not thinking and not answer:
        return None
    return DeltaMessage(content=answer or None, reasoning=thinking or None,
                        reasoning_content=thinking or None)


def _tool_delta(stream: ToolStream, message: DeltaMessage | None, token_ids, done: bool
                ) -> DeltaMessage | None:
    """`message` with its content read by the tool parser: the text before a call as content,
    a call as tool-call pieces (None when nothing is ready to send)."""
    answer = message.content if message is not None else None
    content, calls = stream.feed(answer, token_ids) if answer else (None, [])
    if done:
        calls += stream.finish()
    reasoning = message.reasoning if message is not None else None
    if not content and not calls and not reasoning:
        return None
    return DeltaMessage(content=content or None, reasoning=reasoning,
                        reasoning_content=reasoning, tool_calls=calls or None)


def _chunk(job: EngineRequest, request: ChatCompletionRequest, choices, usage_=None,
           reasoning: dict | None = None, trace: list[dict] | None = None) -> dict:
    body = chunk_body(ChatCompletionChunk(id=job.request_id, model=request.model,
                                          choices=choices, usage=usage_, reasoning=reasoning),
                      request, has_reasoning=reasoning is not None)
    if trace is not None:
        body["reasoning_trace"] = trace
    for choice in body["choices"]:
        for name in ("reasoning", "reasoning_content"):
            if choice["delta"][name] is None:
                del choice["delta"][name]
    return body


def _logprobs(positions: Sequence[TokenLogprob]) -> ChatLogprobs:
    return ChatLogprobs(content=[
        TokenLogprobEntry(
            token=p.token, logprob=p.logprob, bytes=list(p.token.encode()),
            top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(t.encode()))
                          for t, lp in p.top.items()],
        )
        for p in positions
    ])
