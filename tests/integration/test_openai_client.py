"""The real server through the official `openai` client: answers, determinism, usage, streaming."""

from __future__ import annotations

import openai
import pytest
from transformers import AutoTokenizer

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.slow

# Easy problems the trained demo model gets right greedily (checked against models/demo/base).
KNOWN_ANSWERS = [
    ("Compute: 2+3", "Answer: 5"),
    ("Compute: 7*8", "Answer: 56"),
    ("Compute: 12+30-4", "Answer: 38"),
    ("Numbers: 3 7 25 50 Target: 353", "Answer: 353"),
]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def aclient(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def chat(client, content: str, **kwargs):
    return client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": content}], **kwargs)


@pytest.mark.parametrize(("problem", "ending"), KNOWN_ANSWERS)
def test_known_answers(server, client, problem, ending):
    if not server.trained_demo_model:
        pytest.skip("known answers hold for models/demo/base only")
    reply = chat(client, problem, max_tokens=128, temperature=0)
    assert reply.choices[0].message.content.endswith(ending)
    assert reply.choices[0].finish_reason == "stop"
    completion = client.completions.create(model="demo", prompt=problem + "\n", max_tokens=128,
                                           temperature=0)
    assert completion.choices[0].text == reply.choices[0].message.content


def test_a_batch_of_prompts_answers_each_as_it_would_alone(client):
    prompts = [problem + "\n" for problem, _ in KNOWN_ANSWERS]
    alone = [client.completions.create(model="demo", prompt=p, max_tokens=64, temperature=0)
             for p in prompts]
    batch = client.completions.create(model="demo", prompt=prompts, max_tokens=64,
                                      temperature=0)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    assert [c.text for c in batch.choices] == [a.choices[0].text for a in alone]
    assert batch.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
    assert batch.usage.completion_tokens == sum(a.usage.completion_tokens for a in alone)
    assert [r["strategy"] for r in batch.model_extra["reasoning"]] == ["greedy"] * 4
    streamed: dict[int, str] = {}
    for chunk in client.completions.create(model="demo", prompt=prompts, max_tokens=64,
                                           temperature=0, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + choice.text
    assert [streamed[i] for i in range(4)] == [a.choices[0].text for a in alone]


def test_echo_scores_a_continuation_as_the_engine_generated_it(client):
    # lm-eval's loglikelihood request: prompt + continuation, echo, max_tokens 0, logprobs
    prompt = "Compute: 2+3\n"
    generated = client.completions.create(model="demo", prompt=prompt, max_tokens=4,
                                          temperature=0, logprobs=1).choices[0]
    scored = client.completions.create(model="demo", prompt=[prompt + generated.text, prompt],
                                       echo=True, max_tokens=0, logprobs=1, temperature=0)
    first, second = scored.choices
    assert (first.text, second.text) == (prompt + generated.text, prompt)
    assert first.finish_reason == "length" and scored.usage.completion_tokens == 0
    tokens, logprobs = first.logprobs.tokens, first.logprobs.token_logprobs
    assert logprobs[0] is None
    assert len(tokens) + len(second.logprobs.tokens) == scored.usage.prompt_tokens
    # the continuation's tokens score as they did when generated
    assert tokens[-4:] == generated.logprobs.tokens
    assert logprobs[-4:] == pytest.approx(generated.logprobs.token_logprobs, abs=0.02)
    assert "".join(tokens[1:]) == (prompt + generated.text)[-len("".join(tokens[1:])):]


def test_greedy_is_deterministic(client):
    first, second = (chat(client, "Compute: 48+17*3-29*2+11", max_tokens=96, temperature=0)
                     for _ in range(2))
    assert first.choices[0].message.content == second.choices[0].message.content


def test_seeded_sampling_is_reproducible(client):
    kwargs = dict(max_tokens=48, temperature=1.0, n=3, seed=1234)
    first, second = (chat(client, "Compute: 48+17*3", **kwargs) for _ in range(2))
    assert [c.message.content for c in first.choices] == [c.message.content
                                                           for c in second.choices]


def test_models_lists_demo_first(client):
    models = client.models.list().data  # then any adapters other tests loaded, parent "demo"
    assert models[0].id == "demo" and [m.id for m in models].count("demo") == 1
    assert all(m.parent == "demo" for m in models[1:])
    assert client.models.retrieve("demo").id == "demo"
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.models.retrieve("no-such-model")


def test_usage_counts_templated_prompt_and_every_generated_token(client):
    problem = "Compute: 48+17*3-29*2+11"
    reply = chat(client, problem, max_tokens=40, temperature=1.0, n=4, seed=3, logprobs=True)
    # Character tokenizer, chat template "<message>\n": one token per character.
    assert reply.usage.prompt_tokens == len(problem + "\n")
    generated = [len(c.logprobs.content) for c in reply.choices]  # one entry per token, eos too
    assert reply.usage.completion_tokens == sum(generated)
    for choice, count in zip(reply.choices, generated):
        # The text holds every generated token except a final eos.
        assert count == len(choice.message.content) + (choice.finish_reason == "stop")
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_completion_logprobs_and_stop(client):
    reply = client.completions.create(model="demo", prompt="Compute: 12+30-4\n", max_tokens=64,
                                      temperature=0, logprobs=2, stop=["\n"])
    choice = reply.choices[0]
    assert "\n" not in choice.text and choice.finish_reason == "stop"
    assert len(choice.logprobs.top_logprobs[0]) == 2
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs)
    assert reply.usage.prompt_tokens == len("Compute: 12+30-4\n")


async def test_streaming_matches_non_streaming(aclient):
    kwargs = dict(model="demo", messages=[{"role": "user", "content": "Compute: 9-4*2+13"}],
                  max_tokens=96, temperature=0)
    whole = await aclient.chat.completions.create(**kwargs)
    stream = await aclient.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]


async def test_streaming_completions_with_n(aclient):
    stream = await aclient.completions.create(
        model="demo", prompt="Compute: 5*6\n", max_tokens=32, temperature=0.8, n=3, seed=9,
        stream=True, stream_options={"include_usage": True})
    texts = ["", "", ""]
    usage = None
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
        usage = chunk.usage or usage
    whole = await aclient.completions.create(model="demo", prompt="Compute: 5*6\n",
                                             max_tokens=32, temperature=0.8, n=3, seed=9)
    assert texts == [c.text for c in whole.choices]
    assert usage == whole.usage


def test_sync_streaming(client):
    stream = chat(client, "Compute: 2+3", max_tokens=32, temperature=0, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == chat(client, "Compute: 2+3", max_tokens=32, temperature=0
                        ).choices[0].message.content


def test_logit_bias_steers_the_real_sampler(client):
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    prompt = "Compute: 2+3"

    def first_token(text: str) -> int:
        return tokenizer.encode(text, add_special_tokens=False)[0]

    free = chat(client, prompt, max_tokens=8, temperature=0).choices[0].message.content
    banned = chat(client, prompt, max_tokens=8, temperature=0,
                  logit_bias={str(first_token(free)): -100}).choices[0].message.content
    assert first_token(banned) != first_token(free)
    (seven,) = tokenizer.encode("7", add_special_tokens=False)
    forced = chat(client, prompt, max_tokens=4, temperature=0, logit_bias={str(seven): 100},
                  presence_penalty=0.5, frequency_penalty=0.5)
    assert forced.choices[0].message.content == "7777"
    with pytest.raises(openai.BadRequestError, match="vocab"):
        chat(client, prompt, max_tokens=4, logit_bias={str(len(tokenizer) + 10): 1})
