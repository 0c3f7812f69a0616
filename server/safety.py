"""The safety policy applied to every answer, single pass or search, whole or streamed: the
policy for everyone, the caller's API key (its tenant name) and the request's `user`. A blocked
answer comes back empty with finish_reason "content_filter" and the policy's reason in
`content_filter_reason`. A stream is checked before each delta is sent: the delta that
completes a match is withheld and the stream ends there (the engine request is aborted). Each
delta is scanned with the `window` characters before it, not the whole text again, so a stream's
checks cost what its length does, not its square (a match longer than the window is caught in
whole answers only).

POST /v1/reload_safety_policy (admin key) re-reads the policy file without a restart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import APIRouter, Depends, Request

from engine.protocol import Choice, GenerationOutput
from search.problem import Answer
from server.auth import require_admin_key
from server.errors import bad_request
from server.tenancy import current_tenant
from verifiers.builtin.safety import PolicyFile, SafetyPolicy, StaticPolicy
from verifiers.protocol import ScoringContext

CONTENT_FILTER = "content_filter"


def policy_source(settings) -> PolicyFile | StaticPolicy:
    """The policy file when one is set, else the safety verifier's inline config."""
    if settings.safety_policy_file:
        return PolicyFile(settings.safety_policy_file)
    return StaticPolicy(SafetyPolicy.from_dict(settings.verifier_config.get("safety")))


class AnswerFilter:
    def __init__(self, source: PolicyFile | StaticPolicy | None, window: int) -> None:
        self.source = source or StaticPolicy(SafetyPolicy())
        self.window = window  # the longest match a rule may need across a stream's deltas

    def check(self, text: str, user: str | None, start: int = 0) -> str | None:
        tenant = current_tenant()
        return self.source.policy.check(text, tenant.name if tenant else None, user, start)

    def context(self, context: ScoringContext, user: str | None) -> ScoringContext:
        """A search's scoring context, naming the caller for the safety verifier."""
        tenant = current_tenant()
        return dataclasses.replace(context, api_key_id=tenant.name if tenant else None,
                                   user=user)

    def screen_answer(self, answer: Answer, user: str | None) -> Answer:
        reason = self.check(answer.text, user)
        if reason is None:
            return answer
        return dataclasses.replace(answer, text="", finish_reason=CONTENT_FILTER,
                                   filter_reason=reason)

    async def screen(self, outputs: AsyncIterator[GenerationOutput], n: int,
                     user: str | None) -> AsyncGenerator[GenerationOutput, None]:
        """The engine's deltas, each choice's text checked as it grows. A choice that turns
        blocked gets one last delta (no text, finish content_filter, the reason as its
        stop_reason); the request ends when every choice has finished."""
        # each choice's last characters: the window a delta is scanned with, and as many again
        # before it as context (lookbehinds, \b); the text before them is not looked at again
        tails = [""] * n
        blocked: set[int] = set()
        try:
            async for out in outputs:
                choices = []
                for choice in out.choices:
                    if choice.index in blocked:
                        continue
                    tail = tails[choice.index]
                    start = max(len(tail) - self.window, 0)
                    tail += choice.text
                    reason = self.check(tail, user, start)
                    tails[choice.index] = tail[-2 * self.window:]
                    if reason is None:
                        choices.append(choice)
                        continue
                    blocked.add(choice.index)
                    choices.append(Choice(index=choice.index, text="", token_ids=(),
                                          finish_reason=CONTENT_FILTER, stop_reason=reason))
                done = len(blocked) == n
                yield dataclasses.replace(out, choices=choices, finished=out.finished or done)
                if done:
                    return  # closing `outputs` aborts the engine request
        finally:
            await outputs.aclose()


router = APIRouter(dependencies=[Depends(require_admin_key)])


@router.post("/v1/reload_safety_policy")
async def reload_safety_policy(request: Request) -> dict:
    source = request.app.state.safety_policy
    if not isinstance(source, PolicyFile):
        raise bad_request("this server has no policy file to reload; start it with "
                          "--safety-policy-file PATH")
    try:
        policy = source.reload()
    except ValueError as exc:
        raise bad_request(f"{exc}; the policy in force is unchanged") from exc
    return {"status": "reloaded", "path": str(source.path), **policy.size}
