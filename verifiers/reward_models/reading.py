"""How a reward model of the ecosystem reads a path: the conversation it answers, and the steps
written out as the assistant's reply, each followed by the model's step marker (a separator
token, a step tag, or nothing), in the model's own chat template or as plain text."""

from __future__ import annotations

from engine.protocol import Engine
from verifiers.label_reading import TaggedPath
from verifiers.protocol import ScoringContext, StepItem
from verifiers.reward_models.spec import ClassifierORMSpec, PoolingPRMSpec, TokenPRMSpec

Spec = PoolingPRMSpec | TokenPRMSpec | ClassifierORMSpec


def conversation(item: StepItem, context: ScoringContext,
                 system_prompt: str | None) -> list[dict[str, str]]:
    """The turns before the reply: the request's conversation, or its problem as the only
    user turn; `system_prompt` first when there is no system turn."""
    messages = ([dict(m) for m in context.messages] if context.messages
                else [{"role": "user", "content": item.problem}])
    if system_prompt is not None and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def write_path(engine: Engine, spec: Spec, item: StepItem, context: ScoringContext,
               marker: str = "") -> TaggedPath:
    """`item`'s whole path as `spec`'s model reads it; `tag_ends` are where each step's
    `marker` ends in the text."""
    reply, ends = "", []
    for i, step in enumerate(item.steps):
        reply += (spec.step_join if i else "") + step.strip() + marker
        ends.append(len(reply))
    if spec.prompt_format == "plain":
        text = spec.plain_format.format(question=item.problem, solution=reply)
        start = text.rindex(reply)
        return TaggedPath(text, tuple(start + end for end in ends), add_special_tokens=True)
    messages = conversation(item, context, spec.system_prompt)
    text = engine.render_chat([*messages, {"role": "assistant", "content": reply}],
                              add_generation_prompt=False)
    start = text.rfind(reply)
    if start < 0:
        raise ValueError(f"the chat template of {engine.model_name!r} does not keep the reply "
                         "as it is (it changed the steps' text); use prompt_format \"plain\"")
    return TaggedPath(text, tuple(start + end for end in ends), add_special_tokens=False)
