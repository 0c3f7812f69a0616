"""Tiny chat models of real architectures, in Hugging Face format, built here (no hub):

- `QWEN2`: `Qwen2ForCausalLM`, ChatML template, EOS `<|im_end|>` and `<|endoftext|>`; a
  thinking model (its sums may be asked as "Think about ...": `<think>` and `</think>` are
  whole, non-special tokens, as in Qwen3);
- `LLAMA3`: `LlamaForCausalLM`, Llama-3 template, BOS added by the tokenizer, no pad token; the
  tokenizer's EOS is `<|end_of_text|>` but a turn ends with `<|eot_id|>`, the second EOS of
  generation_config.json (as Meta-Llama-3-8B-Instruct ships);
- `QWEN2_TOOLS`: `QWEN2` with a hermes-style tool template (Qwen2.5's shape: the tools as JSON
  in `<tools>` in the system turn, calls as `<tool_call>` JSON, results as `<tool_response>`
  in a user turn), trained with `WEATHER_TOOL` offered to write its calls (vLLM's `hermes`
  tool parser reads them).

Each is trained for a few hundred steps on `conversations` (seconds to a minute on a CPU,
seeded) to write their multi-line answers; attention heads of 64 and 32 dims, which vLLM's
CPU attention supports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (LlamaConfig, LlamaForCausalLM, PretrainedConfig, PreTrainedModel,
                          PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM)

from tests.real_models.conversations import WEATHER_TOOL, conversations
from tests.real_models.tokenizer import as_transformers, train_bpe, with_bos

CHATML = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
    "+ message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
# ChatML with tools, as Qwen2.5's template writes them (shortened): what vLLM's hermes parser
# reads back. An assistant turn's tool calls follow its content; a tool result is a user turn.
HERMES_CHATML = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}"
    "{%- endif %}"
    "{{- '# Tools\\n<tools>' }}{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}"
    "{%- endfor %}{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' and (loop.first and tools) %}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] "
    "+ '\\n</tool_response><|im_end|>\\n' }}"
    "{%- elif message['role'] == 'assistant' and message.tool_calls %}"
    "{{- '<|im_start|>assistant\\n' + (message['content'] or '') }}"
    "{%- for call in message.tool_calls %}"
    "{{- '<tool_call>\\n{\"name\": \"' + call.function.name + '\", \"arguments\": ' "
    "+ (call.function.arguments | tojson) + '}\\n</tool_call>' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class ChatModelSpec:
    name: str
    special_tokens: tuple[str, ...]
    eos: str  # the tokenizer's EOS
    eos_tokens: tuple[str, ...]  # generation_config.json's eos_token_id, in order
    chat_template: str
    config: Callable[[int, dict[str, int]], PretrainedConfig]  # (vocab size, special ids)
    model_class: type[PreTrainedModel]
    bos: str | None = None  # added when encoding with special tokens
    pad: str | None = None
    added_tokens: tuple[str, ...] = ()
    thinking: bool = False
    tools: tuple[dict, ...] = ()  # offered in every training conversation, which then call them
    vocab_size: int = 1024


def _qwen2_config(vocab: int, ids: dict[str, int]) -> PretrainedConfig:
    return Qwen2Config(
        vocab_size=vocab, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=1, num_key_value_heads=1,  # head_dim 64
        max_position_embeddings=1024, tie_word_embeddings=True, use_sliding_window=False,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"], torch_dtype="float32")


def _llama3_config(vocab: int, ids: dict[str, int]) -> PretrainedConfig:
    return LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32,
        max_position_embeddings=1024, tie_word_embeddings=False,
        bos_token_id=ids["<|begin_of_text|>"], eos_token_id=ids["<|end_of_text|>"],
        torch_dtype="float32")


QWEN2 = ChatModelSpec(
    name="qwen2-chat", special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    eos="<|im_end|>", eos_tokens=("<|im_end|>", "<|endoftext|>"), chat_template=CHATML,
    config=_qwen2_config, model_class=Qwen2ForCausalLM, pad="<|endoftext|>",
    added_tokens=("<think>", "</think>"), thinking=True)
LLAMA3 = ChatModelSpec(
    name="llama3-chat",
    special_tokens=("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                    "<|end_header_id|>", "<|eot_id|>"),
    eos="<|end_of_text|>", eos_tokens=("<|end_of_text|>", "<|eot_id|>"),
    chat_template=LLAMA3_TEMPLATE, config=_llama3_config, model_class=LlamaForCausalLM,
    bos="<|begin_of_text|>")
QWEN2_TOOLS = ChatModelSpec(
    name="qwen2-tools", special_tokens=QWEN2.special_tokens, eos=QWEN2.eos,
    eos_tokens=QWEN2.eos_tokens, chat_template=HERMES_CHATML, config=_qwen2_config,
    model_class=Qwen2ForCausalLM, pad=QWEN2.pad, added_tokens=("<tool_call>", "</tool_call>"),
    tools=(WEATHER_TOOL,))
SPECS = {spec.name: spec for spec in (QWEN2, LLAMA3, QWEN2_TOOLS)}


@dataclass(frozen=True)
class TrainingPlan:
    conversations: int = 600
    steps: int = 300
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0


def build_tokenizer(spec: ChatModelSpec, dialogues: list[tuple[str, str]]
                    ) -> PreTrainedTokenizerFast:
    corpus = [f"{user}\n{reply}\n" for user, reply in dialogues]
    corpus += [json.dumps(tool) for tool in spec.tools] * 50  # the system turn's tool list
    core = train_bpe(corpus, spec.vocab_size, spec.special_tokens, spec.added_tokens)
    if spec.bos is not None:
        with_bos(core, spec.bos)
    return as_transformers(core, spec.chat_template, eos=spec.eos, bos=spec.bos, pad=spec.pad)


def build(spec: ChatModelSpec, out: Path, plan: TrainingPlan = TrainingPlan(),
          log: Callable[[str], None] = print) -> Path:
    """Trains `spec`'s tokenizer and model and writes them to `out` (an HF model directory)."""
    torch.manual_seed(plan.seed)
    # One thread: tiny matrices gain nothing from two, and on a shared 2-core machine two
    # threads thrash (a step took 20x longer).
    torch.set_num_threads(1)
    dialogues = conversations(plan.conversations, plan.seed, spec.thinking, bool(spec.tools))
    tokenizer = build_tokenizer(spec, dialogues)
    ids = {token: tokenizer.convert_tokens_to_ids(token)
           for token in (*spec.special_tokens, *spec.added_tokens)}
    model = spec.model_class(spec.config(len(tokenizer), ids))
    _train(model, tokenizer, dialogues, plan, log, list(spec.tools) or None)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    # Two EOS ids, the tokenizer's first; no sampling defaults (vLLM would apply them).
    (out / "generation_config.json").write_text(json.dumps({
        "bos_token_id": model.config.bos_token_id,
        "eos_token_id": [ids[t] for t in spec.eos_tokens]}, indent=2) + "\n")
    return out


def _train(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast,
           dialogues: list[tuple[str, str]], plan: TrainingPlan,
           log: Callable[[str], None], tools: list[dict] | None = None) -> None:
    """Next-token loss on the replies (the rendered prompt masked), AdamW, cosine decay."""
    examples = [_example(tokenizer, user, reply, tools) for user, reply in dialogues]
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=plan.lr,
                                                   total_steps=plan.steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(plan.seed)
    model.train()
    for step in range(1, plan.steps + 1):
        picks = torch.randint(len(examples), (plan.batch_size,), generator=generator).tolist()
        ids, labels = _batch([examples[i] for i in picks], pad_id=0)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 50 == 0:
            log(f"  step {step}/{plan.steps}: loss {loss.item():.3f}")
    model.eval()


def _example(tokenizer: PreTrainedTokenizerFast, user: str, reply: str,
             tools: list[dict] | None = None) -> tuple[list[int], int]:
    """(token ids of the whole conversation, length of its prompt part) as served: the chat
    template rendered (with `tools` offered), then encoded without adding special tokens (the
    template has them)."""
    messages = [{"role": "user", "content": user}]
    prompt = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                           add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": reply}],
                                          tools=tools, tokenize=False)
    ids = tokenizer.encode(whole.rstrip("\n"), add_special_tokens=False)
    return ids, len(tokenizer.encode(prompt, add_special_tokens=False))


def _batch(examples: list[tuple[list[int], int]], pad_id: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    # ids, labels: [B, S]; labels -100 on the prompt and the padding
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id)
    labels = torch.full((len(examples), width), -100)
    for row, (tokens, prompt_len) in enumerate(examples):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, prompt_len: len(tokens)] = torch.tensor(tokens[prompt_len:])
    return ids, labels
