"""`LocalEngine` used directly, as search and verifiers will: the protocol over real vLLM."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import psutil
import pytest

from engine.local import LocalEngineConfig, check_block_size, open_local_engine
from engine.protocol import EngineDeadError, InvalidEngineRequest, SamplingParams
from tests.integration.conftest import MODEL, ROOT

DEMO_ADAPTERS = ROOT / "models" / "demo" / "adapters"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def engine():
    async with open_local_engine(LocalEngineConfig(model=str(MODEL), served_model_name="demo",
                                                   kv_cache_bytes=64 * 2**20)) as engine:
        yield engine


async def test_a_block_size_cpu_attention_refuses_is_named_before_start_up():
    config = LocalEngineConfig(model=str(MODEL), served_model_name="demo", block_size=16)
    with pytest.raises(ValueError, match="block_size=16: vLLM's CPU attention needs a multiple"):
        async with open_local_engine(config):
            pass
    check_block_size(16, cpu=False)  # GPU attention takes 16
    check_block_size(64, cpu=True)
    check_block_size(None, cpu=True)  # vLLM's own default


async def test_tokenizer_access(engine):
    assert engine.model_name == "demo" and engine.max_model_len == 512
    text = engine.render_chat([{"role": "user", "content": "Compute: 2+3"}])
    assert text == "Compute: 2+3\n"
    assert len(engine.encode(text, add_special_tokens=False)) == len(text)


async def test_generate_streams_deltas(engine):
    params = SamplingParams(max_tokens=8, temperature=0.0)
    outputs = [out async for out in engine.generate("Compute: 2+3\n", params, "delta-test")]
    assert outputs[-1].finished and not any(out.finished for out in outputs[:-1])
    tokens = [t for out in outputs for c in out.choices for t in c.token_ids]
    assert len(tokens) == 8  # each delta holds only new tokens
    assert len(outputs[0].prompt_token_ids) == len("Compute: 2+3\n")


async def test_next_token_logprobs(engine):
    top = await engine.next_token_logprobs("Compute: 2+3\n2+3=", k=3)
    assert len(top) == 3
    assert max(top, key=top.get) == "5"  # the demo model knows this one
    assert all(lp <= 0 for lp in top.values()) and sum(map(math.exp, top.values())) <= 1 + 1e-6


async def test_scoring_without_detokenizing_names_tokens_as_vllm_does(engine):
    # detokenize=False: vLLM decodes no text; the engine names logprob tokens from its own
    # per-id cache, and must give the very same names and values
    prompt = "Compute: 7*8+1\n7*8=56\n"

    async def final(params):
        outputs = [out async for out in engine.generate(prompt, params, f"d-{params.detokenize}")]
        return outputs[-1]

    params = SamplingParams(max_tokens=2, temperature=0.0, logprobs=5, prompt_logprobs=5,
                            final_only=True)
    decoded = await final(params)
    cached = await final(dataclasses.replace(params, detokenize=False))
    assert decoded.prompt_logprobs == cached.prompt_logprobs
    assert decoded.choices[0].logprobs == cached.choices[0].logprobs
    assert decoded.choices[0].text and not cached.choices[0].text
    assert decoded.prompt_logprobs[-1] and all(decoded.prompt_logprobs[1:])


async def test_closing_the_generator_aborts(engine):
    params = SamplingParams(max_tokens=400, temperature=1.0, n=4, ignore_eos=True)
    stream = engine.generate("Compute: 1+1\n", params, "abort-test")
    await anext(stream)
    unfinished = engine._llm.output_processor.get_num_unfinished_requests  # vLLM's own count
    assert unfinished() > 0
    await stream.aclose()
    assert unfinished() == 0  # aborted right away, ~1600 tokens before it would have finished


async def test_adapters_load_generate_and_unload(engine):
    params = SamplingParams(max_tokens=24, temperature=0.0, logprobs=0)
    prompt = "Compute: 61-19*2+7*3+88*9\n"

    async def text(adapter):  # the greedy text and its tokens' logprobs
        outputs = [out async for out in engine.generate(prompt, params, f"a-{adapter}", adapter)]
        choices = [c for out in outputs for c in out.choices]
        return "".join(c.text for c in choices), [lp.logprob for c in choices for lp in c.logprobs]

    await engine.add_adapter("arith", str(DEMO_ADAPTERS / "arithmetic"))
    assert [(a.name, a.path) for a in await engine.list_adapters()] == \
        [("arith", str(DEMO_ADAPTERS / "arithmetic"))]
    base, tuned = await text(None), await text("arith")
    assert base != tuned  # the adapter is applied (and only where asked for)
    assert await text(None) == base
    await engine.remove_adapter("arith")
    assert await engine.list_adapters() == []
    with pytest.raises(InvalidEngineRequest, match="not loaded"):
        await text("arith")
    with pytest.raises(InvalidEngineRequest, match="could not load"):
        await engine.add_adapter("broken", "/nowhere")


async def test_a_higher_priority_request_is_scheduled_ahead_of_those_waiting():
    # one sequence at a time, so that the others wait in vLLM's queue: the single pass
    # (priority -1), sent after four search calls (0), runs right after the one running
    config = LocalEngineConfig(model=str(MODEL), served_model_name="demo",
                               kv_cache_bytes=64 * 2**20, engine_args=(("max_num_seqs", 1),))
    finished = []

    async def call(engine, name: str, priority: int) -> None:
        params = SamplingParams(max_tokens=48, temperature=0.0, ignore_eos=True,
                                priority=priority)
        async for _ in engine.generate("Compute: 1+1\n", params, name):
            pass
        finished.append(name)

    async with open_local_engine(config) as engine:
        searches = [asyncio.create_task(call(engine, f"search{i}", 0)) for i in range(4)]
        await asyncio.sleep(0.05)
        await asyncio.gather(*searches, call(engine, "single", -1))
    assert finished.index("single") == 1, finished


async def test_engine_death_is_reported(engine):
    # Last in this module: it kills the engine core process (our direct child named EngineCore).
    await engine.check_health()
    (core,) = [p for p in psutil.Process().children() if "EngineCore" in p.name()]
    core.kill()
    for _ in range(50):
        try:
            await engine.check_health()
        except EngineDeadError:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("check_health did not notice the dead engine core")
    with pytest.raises(EngineDeadError):
        async for _ in engine.generate("x", SamplingParams(max_tokens=2), "after-death"):
            pass
