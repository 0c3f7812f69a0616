"""`reasoning.context` checked against the prompt and the model's window, and turned into the
search problem's `Chunking` (search/chunking.py); bad settings are 400s that say what to
change."""

from __future__ import annotations

from collections.abc import Sequence

from engine.protocol import Engine
from search.chunking import Chunking
from search.problem import SearchProblem
from server.errors import bad_request
from server.reasoning.options import ContextOptions
from verifiers.states import StateFn, guarded

PARAM = "reasoning.context"


def chunking(options: ContextOptions, problem: SearchProblem, prompt_ids: Sequence[int],
             engine: Engine, states: dict[str, StateFn], opening: str | None) -> Chunking:
    window, prompt = engine.max_model_len, len(prompt_ids)
    room = window - prompt  # what a chunk may hold after the prompt
    chunk = options.chunk_tokens or room
    if chunk > room:
        raise bad_request(
            f"{PARAM}.chunk_tokens={chunk} does not fit: the prompt has {prompt} tokens and the "
            f"model's window is {window}, so a chunk can hold at most {room}; ask for "
            f"chunk_tokens <= {room}", param=f"{PARAM}.chunk_tokens")
    carry = options.carry_tokens if options.carry_tokens is not None else chunk // 2
    if carry >= room:
        raise bad_request(
            f"{PARAM}.carry_tokens={carry} cannot fit the model's window ({window} tokens) with "
            f"the prompt's {prompt}: the carry-over must leave room to write; ask for "
            f"carry_tokens < {room}", param=f"{PARAM}.carry_tokens")
    if carry >= chunk:
        raise bad_request(
            f"{PARAM}.chunk_tokens={chunk} is not larger than its carry-over (carry_tokens="
            f"{carry}): a chunk holds its carry-over and must have room to write after it; ask "
            f"for chunk_tokens > {carry} or fewer carry_tokens", param=f"{PARAM}.chunk_tokens")
    state = render = None
    if options.carry == "state":
        state = _state(options, problem, states)
        render = _renderer(problem, engine)
    return Chunking(chunk_tokens=chunk, carry=options.carry, carry_tokens=carry,
                    max_chunks=options.max_chunks, state=state, render=render,
                    boundary=problem.delimiter.stops[0], opening=opening)


def _state(options: ContextOptions, problem: SearchProblem,
           states: dict[str, StateFn]) -> StateFn:
    if options.state is not None:
        if options.state not in states:
            raise bad_request(f"{PARAM}.state={options.state!r} is not a state plugin here; "
                              f"choose one of {sorted(states)}", param=f"{PARAM}.state")
        return guarded(options.state, states[options.state])
    for name, state in states.items():  # the first that reads this question
        try:
            if state(problem.question, "") is not None:
                return guarded(name, state)
        except Exception:  # a broken plugin is not the one
            continue
    raise bad_request(f"no state plugin derives a state from this question (plugins: "
                      f"{sorted(states)}); ask for {PARAM}.carry \"last\", or name a state",
                      param=f"{PARAM}.carry")


def _renderer(problem: SearchProblem, engine: Engine):
    """A state's question rendered as the prompt rendered the question: the prompt with its
    last occurrence of the question replaced."""
    before, found, after = problem.prompt.rpartition(problem.question)
    if not found:
        raise bad_request(f"{PARAM}.carry \"state\" needs the question to appear in the prompt "
                          "as it is; ask for carry \"last\"", param=f"{PARAM}.carry")

    def render(question: str) -> list[int]:
        return engine.encode(before + question + after,
                             add_special_tokens=problem.add_special_tokens)

    return render
