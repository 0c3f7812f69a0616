"""vLLM's wire formats: /v1/completions' request body for a `SamplingParams` (one function:
every field of the engine's params is translated here and nowhere else) and the engine's
outputs read back from a response or a stream chunk; /pooling's body and its rows."""

from __future__ import annotations

from collections.abc import Sequence

from engine.protocol import Choice, GenerationOutput, PoolingTask, SamplingParams, TokenLogprob


def completion_body(model: str, prompt_token_ids: Sequence[int], params: SamplingParams,
                    stream: bool, cache_salt: str | None = None) -> dict:
    """The body asking vLLM's OpenAI server for what `LocalEngine` asks `AsyncLLM` for.

    The sampling fields are all set, so the server's defaults (a model's generation_config)
    never change a request: the same params give the same tokens as in-process. `detokenize`
    has no counterpart: the server always decodes (scoring calls read only logprobs);
    `name_prompt_tokens` neither: the prompt logprobs' entries are named on reading them back.
    `cache_salt` (the request scope's tenant) keeps the tenant's prefix cache its own on the
    replica too."""
    body = {
        "model": model,
        "prompt": list(prompt_token_ids),
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "n": params.n,
        "stop": list(params.stop),
        "seed": params.seed,
        "logprobs": params.logprobs,
        "prompt_logprobs": params.prompt_logprobs,
        "ignore_eos": params.ignore_eos,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "logit_bias": {str(token): bias for token, bias in params.logit_bias} or None,
        "return_token_ids": True,  # the ids generated, so search paths stay token-exact
        "stream": stream,
        "cache_salt": cache_salt,
        # the replica's scheduling priority (`vllm serve --scheduling-policy priority`)
        "priority": params.priority or None,
    }
    return {key: value for key, value in body.items() if value is not None}


def generation_output(request_id: str, body: dict, k: int | None,
                      prompt_token_ids: Sequence[int], prompt_k: int | None = None
                      ) -> GenerationOutput:
    """A non-streamed response, or one stream chunk (its choices are deltas), as engine output.
    `finished` is left False: the caller knows when the response or stream ended. `k`: the
    logprobs asked for; `prompt_k`: the prompt logprobs' k when their own tokens are to be named
    (`SamplingParams.name_prompt_tokens`), else None."""
    choices = body.get("choices") or []
    first = choices[0] if choices else {}
    ids = first.get("prompt_token_ids") or list(prompt_token_ids)
    return GenerationOutput(
        request_id=request_id,
        prompt_token_ids=ids,
        choices=[_choice(c, k) for c in choices],
        finished=False,
        prompt_logprobs=_prompt_logprobs(first.get("prompt_logprobs")),
        prompt_token_logprobs=_prompt_token_logprobs(ids, first.get("prompt_logprobs"), prompt_k),
    )


def _choice(choice: dict, k: int | None) -> Choice:
    token_ids = choice.get("token_ids") or []
    logprobs = None
    if k is not None and choice.get("logprobs"):
        wire = choice["logprobs"]
        logprobs = [_position(token, logprob, top, k) for token, logprob, top in
                    zip(wire["tokens"], wire["token_logprobs"], wire["top_logprobs"])]
    return Choice(index=choice["index"], text=choice.get("text") or "", token_ids=token_ids,
                  logprobs=logprobs, finish_reason=choice.get("finish_reason"),
                  stop_reason=choice.get("stop_reason"))


def _position(token: str, logprob: float, top: dict[str, float] | None, k: int) -> TokenLogprob:
    top = dict(top or {})
    # The server adds the sampled token to the top k when it ranks below them (OpenAI's
    # k + 1); the in-process engine keeps only ranks 1..k.
    if len(top) > k:
        top.pop(token, None)
    return TokenLogprob(token=token, logprob=logprob, top=top)


def _prompt_logprobs(positions: list | None) -> list[dict[str, float] | None] | None:
    """vLLM's prompt logprobs ({token id: {logprob, rank, decoded_token}} per position, None
    for the first) as {token: logprob}, as the in-process engine reports them."""
    if positions is None:
        return None
    return [None if position is None else
            {entry.get("decoded_token") or "": entry["logprob"] for entry in position.values()}
            for position in positions]


def _prompt_token_logprobs(ids: Sequence[int], positions: list | None, k: int | None
                           ) -> list[TokenLogprob | None] | None:
    """The same positions with each one's own prompt token (always in vLLM's entry) named, and
    the top-k by rank, as the in-process engine reports them."""
    if positions is None or k is None:
        return None
    out: list[TokenLogprob | None] = []
    for token_id, position in zip(ids, positions):
        if position is None:
            out.append(None)
            continue
        own = position.get(str(token_id)) or {}
        top = {entry.get("decoded_token") or "": entry["logprob"] for entry in position.values()
               if entry.get("rank", k + 1) <= k}
        out.append(TokenLogprob(token=own.get("decoded_token") or "",
                                logprob=own.get("logprob", float("-inf")), top=top))
    return out


def pooling_body(model: str, prompt_token_ids: Sequence[int], task: PoolingTask,
                 cache_salt: str | None = None) -> dict:
    """The /pooling body asking a pooling replica (`vllm serve --runner pooling`) for what
    `LocalEngine.pool` asks `AsyncLLM` for: the task's raw logits (no activation) for token ids."""
    body = {"model": model, "input": list(prompt_token_ids), "task": task,
            "use_activation": False, "cache_salt": cache_salt}
    return {key: value for key, value in body.items() if value is not None}


def pooled_rows(body: dict) -> list[list[float]]:
    """The prompt's output as `Engine.pool` returns it: "classify" answers one row of class
    logits ([labels]), "token_classify" one per token its pooler keeps ([tokens, labels])."""
    data = body["data"][0]["data"]
    return [data] if data and not isinstance(data[0], list) else data
