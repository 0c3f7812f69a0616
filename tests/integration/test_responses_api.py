"""/v1/responses on the real server through the official `openai` client: plain, with a
reasoning effort (a search, its reasoning item and summary), streamed (the typed events), and
continued with previous_response_id; and OpenAI's `reasoning.effort` on a chat request."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_a_plain_response_is_the_chat_answer(server, client):
    response = client.responses.create(model="demo", input="Compute: 2+3",
                                       max_output_tokens=64, temperature=0)
    chat = client.chat.completions.create(model="demo", max_tokens=64, temperature=0,
                                          messages=[{"role": "user", "content": "Compute: 2+3"}])
    assert response.status == "completed"
    assert response.output_text == chat.choices[0].message.content
    if server.trained_demo_model:
        assert response.output_text.endswith("Answer: 5")
    assert [item.type for item in response.output] == ["message"]
    assert response.usage.input_tokens == chat.usage.prompt_tokens
    assert response.usage.output_tokens == chat.usage.completion_tokens
    assert client.responses.retrieve(response.id).output_text == response.output_text


def test_an_effort_runs_a_search_with_a_reasoning_item(client):
    response = client.responses.create(
        model="demo", input="Compute: 12+30-4", max_output_tokens=64,
        reasoning={"effort": "medium", "summary": "auto"})
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert reasoning.summary[0].text.startswith("beam search: ")
    assert response.model_extra["search"]["strategy"] == "beam"
    assert response.reasoning.effort == "medium"
    details = response.usage.output_tokens_details
    assert 0 < details.reasoning_tokens < response.usage.output_tokens


async def test_a_streamed_response_is_typed_events(server):
    aclient = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    kwargs = dict(model="demo", input="Compute: 9-4*2+13", max_output_tokens=96, temperature=0)
    whole = await aclient.responses.create(**kwargs)
    events = [event async for event in await aclient.responses.create(**kwargs, stream=True)]
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == whole.output_text == events[-1].response.output_text
    assert events[-1].response.usage.output_tokens == whole.usage.output_tokens
    # a streamed search: its progress as reasoning text, then the answer
    events = [event async for event in await aclient.responses.create(
        model="demo", input="Compute: 7*8", max_output_tokens=64, stream=True,
        reasoning={"effort": "medium"})]
    types = [e.type for e in events]
    assert types.index("response.reasoning_text.delta") < types.index(
        "response.output_text.delta")
    assert [i.type for i in events[-1].response.output] == ["reasoning", "message"]


def test_previous_response_id_sends_the_conversation_so_far(client):
    first = client.responses.create(model="demo", input="Compute: 2+3", max_output_tokens=64,
                                    temperature=0)
    second = client.responses.create(model="demo", input="Compute: 7*8", max_output_tokens=64,
                                     temperature=0, previous_response_id=first.id)
    # the demo template writes each turn and the answer after it: the second prompt holds the
    # first prompt, its answer (and EOS) and the new question
    assert second.usage.input_tokens == (first.usage.input_tokens + len(first.output_text) + 1
                                         + len("Compute: 7*8\n"))
    with pytest.raises(openai.BadRequestError, match="previous response"):
        client.responses.create(model="demo", input="x", previous_response_id="resp_missing")


def test_openai_reasoning_effort_on_a_chat_request(client):
    reply = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Compute: 2+3"}], max_tokens=64,
        extra_body={"reasoning": {"effort": "medium", "max_tokens": 400}})
    assert reply.model_extra["reasoning"]["strategy"] == "beam"
    assert reply.usage.completion_tokens <= 400 + 3 * 64  # the budget, and a round in flight
