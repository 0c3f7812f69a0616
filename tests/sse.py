import json


def parse_events(body: str) -> list:
    """The JSON payloads of an SSE body, checking it is well formed and ends with [DONE]."""
    events = [block for block in body.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events), events
    assert events[-1] == "data: [DONE]", events[-1]
    return [json.loads(e[len("data: "):]) for e in events[:-1]]
