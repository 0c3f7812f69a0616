"""OpenAI's and OpenRouter's `reasoning` keys on a chat or completions request, read as what
they mean: `reasoning.effort` is `reasoning_effort`, `reasoning.max_tokens` the search's token
budget (`reasoning.budget_tokens`). Clients written for those APIs (optillm's MARS, OpenRouter
SDKs) send them inside the object that holds Deliberate's own options, which refuse unknown
keys."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

from server.reasoning.options import EFFORTS

# OpenRouter's efforts above and below the five this server routes: the nearest one.
_NEAREST = {"xhigh": "high"}


def effort_aliases(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `reasoning.effort` moved to `reasoning_effort` and `reasoning.max_tokens` to
    `reasoning.budget_tokens`; an object left empty is dropped (the request is then the one that
    names `reasoning_effort` alone). Both spellings of one setting, differing, are a 400."""
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict) or not ({"effort", "max_tokens"} & reasoning.keys()):
        return body
    reasoning, body = dict(reasoning), dict(body)
    if "effort" in reasoning:
        effort = reasoning.pop("effort")
        effort = _NEAREST.get(effort, effort) if isinstance(effort, str) else effort
        if effort is not None and effort not in EFFORTS:
            raise PydanticCustomError(
                "effort", "one of {efforts} (as reasoning_effort), got {got}",
                {"param": "reasoning.effort", "efforts": ", ".join(EFFORTS), "got": repr(effort)})
        _merge(body, "reasoning_effort", effort, "reasoning.effort")
    if "max_tokens" in reasoning:
        _merge(reasoning, "budget_tokens", reasoning.pop("max_tokens"), "reasoning.max_tokens",
               prefix="reasoning.")
    if reasoning:
        body["reasoning"] = reasoning
    else:
        del body["reasoning"]
    return body


def _merge(target: dict[str, Any], name: str, value: Any, alias: str, prefix: str = "") -> None:
    if value is None:
        return
    given = target.get(name)
    if given is not None and given != value:
        raise PydanticCustomError(
            "alias_conflict", "{alias}={value} and {name}={given} ask for different things; "
            "send one of them", {"param": alias, "alias": alias, "value": repr(value),
                                 "name": prefix + name, "given": repr(given)})
    target[name] = value
