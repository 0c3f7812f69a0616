"""A tokenizer and a model where the demo reward format's step tag merges with the text around
it, and an engine that serves that model as the server's engines do, for tests that read a
label-token reward model offline (training) and online (the verifiers) and compare.

The tokenizer is a BPE trained here on tagged paths, with the pre-tokenizer of Llama-3 and Qwen2
(punctuation keeps the newlines after it: " #\\n" is one pre-token) and a BOS added to every text,
so that " #\\n" becomes one token, as it can in a real base's vocabulary.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from types import SimpleNamespace

from engine.protocol import Choice, GenerationOutput
from verifiers.reward_format import tagged_path

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
# Llama-3's pre-tokenizer pattern
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
         r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus(count: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        a, b, c = (rng.randint(1, 60) for _ in range(3))
        steps = [f"{a}+{b}={a + b}", f"{a + b}*{c}={(a + b) * c}", f"Answer: {(a + b) * c}"]
        texts.append(tagged_path(f"Compute: {a}+{b}*{c}", steps) + " + -")
    return texts


def merging_tokenizer(vocab_size: int = 320):
    """A byte-level BPE (with BOS) in which the step tag and the newline after it are one
    token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(corpus(), trainer)
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, core.token_to_id(BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS,
                                   pad_token=PAD)


def tiny_label_models(root, tokenizer, seed: int = 0):
    """A tiny random Llama with this tokenizer saved at `root/base`, and two random LoRA
    adapters of it at `root/prm` and `root/orm` (random enough that scores differ step to
    step)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, initializer_range=0.5,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    base = LlamaForCausalLM(config)
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    for name in ("prm", "orm"):
        lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(LlamaForCausalLM(config).eval(), lora).save_pretrained(root / name)
    return root / "base", {"prm": str(root / "prm"), "orm": str(root / "orm")}


class ModelEngine:
    """The engine calls the label verifiers make, answered by a transformers model (a
    PeftModel's adapters by name) as vLLM answers them: text prompts tokenized with the special
    tokens, every position's top-k logprobs by token name (as vLLM names a token it does not
    detokenize), the prompt's own token among them."""

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]

    def _logprobs(self, ids: Sequence[int], adapter: str | None):
        import torch

        if adapter is not None:
            self.model.set_adapter(adapter)
        with torch.no_grad():
            logits = self.model(input_ids=torch.tensor([list(ids)])).logits[0]  # [S, V]
        return torch.log_softmax(logits.double(), dim=-1)

    def _named(self, row, k: int, own: int | None = None) -> dict[str, float]:
        ids = row.topk(k).indices.tolist() + ([] if own is None else [own])
        return {self.tokenizer.convert_ids_to_tokens(i): row[i].item() for i in ids}

    async def next_token_logprobs(self, prompt, k: int, adapter: str | None = None
                                  ) -> dict[str, float]:
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        return self._named(self._logprobs(ids, adapter)[-1], k)

    async def generate(self, prompt, params, request_id: str, adapter: str | None = None):
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        rows = self._logprobs(ids, adapter)
        positions = [None] + [self._named(rows[i - 1], params.prompt_logprobs, ids[i])
                              for i in range(1, len(ids))]
        yield GenerationOutput(request_id, ids, [Choice(0, "", [0], None, "length")], True,
                               prompt_logprobs=positions)


class ModelLLM:
    """vLLM's offline `LLM.generate` as `training.evaluate_rewards` calls it, answered by the
    same model as `ModelEngine`: every token's logprob listed, as vLLM detokenizes it."""

    def __init__(self, model, tokenizer) -> None:
        self._engine = ModelEngine(model, tokenizer)

    def _listed(self, row) -> dict:
        decode = self._engine.tokenizer.decode
        return {i: SimpleNamespace(logprob=row[i].item(), decoded_token=decode([i]))
                for i in range(len(row))}

    def generate(self, prompts, params, lora_request=None) -> list:
        outputs = []
        for prompt in prompts:
            ids = (prompt["prompt_token_ids"] if isinstance(prompt, dict)
                   else self._engine.encode(prompt))
            rows = self._engine._logprobs(ids, lora_request)
            prompt_logprobs = None
            if getattr(params, "prompt_logprobs", None):
                prompt_logprobs = [None] + [self._listed(rows[i - 1]) for i in range(1, len(ids))]
            outputs.append(SimpleNamespace(
                prompt_logprobs=prompt_logprobs,
                outputs=[SimpleNamespace(logprobs=[self._listed(rows[-1])])]))
        return outputs
