"""The LoRA family on tiny shapes: AdaLoRA's export is the same function as the trained adapter,
Delta-LoRA's weight update equals a reference computation, merged exports (DoRA, Delta-LoRA)
reproduce the unmerged model, and each method's refusals name the fix."""

from __future__ import annotations

import argparse
import copy

import pytest
import torch
from peft import AdaLoraConfig, LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from training.components.peft_methods import (DeltaLoRA, adalora_as_lora, adalora_callback,
                                              method_problems, save_adalora_as_lora, save_merged)
from training.components.tokenizer import build_tokenizer

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         head_dim=16, max_position_embeddings=64, tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


def batch(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(4, 100, (3, 10), generator=generator)  # [B, S]


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def sgd_steps(model, steps: int, callback=None, lr: float = 0.05) -> None:
    """A few optimizer steps on random tokens (the loss only has to move the adapter)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr)
    model.train()
    for step in range(steps):
        ids = batch(step + 10)
        model(input_ids=ids, labels=ids).loss.backward()
        if callback:
            callback.before(step)
        optimizer.step()
        if callback:
            callback.after(step)
        optimizer.zero_grad()
    model.eval()


def test_adalora_export_is_a_plain_lora_with_the_same_outputs(tmp_path):
    model = get_peft_model(tiny_llama(), AdaLoraConfig(
        init_r=6, target_r=2, total_step=8, tinit=1, tfinal=2, deltaT=1, lora_alpha=8,
        target_modules=TARGETS, task_type="CAUSAL_LM"))

    class Allocate:
        def before(self, step):
            pass

        def after(self, step):
            model.base_model.update_and_allocate(step)

    sgd_steps(model, 8, Allocate())
    with torch.no_grad():  # E learns slowly from zero; random live values test the algebra
        for module in model.modules():
            if hasattr(module, "lora_E") and "default" in module.lora_E:
                E = module.lora_E["default"]
                E.copy_(torch.where(E != 0, torch.randn_like(E), E))
    ranks = save_adalora_as_lora(model, tmp_path / "exported")
    # the budget pruned ranks unevenly: per-module ranks below init_r, as rank_pattern
    assert max(ranks.values()) <= 6 and min(ranks.values()) < 6
    assert len(set(ranks.values())) > 1
    served = PeftModel.from_pretrained(tiny_llama(), str(tmp_path / "exported"))
    assert served.peft_config["default"].peft_type.value == "LORA"
    ids = batch()
    expected, got = logits(model, ids), logits(served, ids)
    assert not torch.allclose(expected, logits(tiny_llama(), ids), atol=1e-4)  # it learned
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_adalora_export_keeps_a_zero_rank_for_a_module_the_budget_emptied():
    model = get_peft_model(tiny_llama(), AdaLoraConfig(
        init_r=4, target_r=2, total_step=10, tinit=1, tfinal=2, target_modules=["q_proj"],
        task_type="CAUSAL_LM"))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    with torch.no_grad():
        layer.lora_E["default"].zero_()
    state, config = adalora_as_lora(model)
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    assert config.rank_pattern["model.layers.0.self_attn.q_proj"] == 1
    assert state[key].abs().sum() == 0


def test_after_adalora_training_its_loss_is_the_cross_entropy_without_the_penalty():
    """peft's AdaLoRA adds 0.5 x an orthogonality penalty to a loss computed with labels: the
    callback leaves it in training and takes it out when training ends, so the recipe's held-out
    eval_loss is the model's (and the exported adapter's) cross-entropy."""
    model = get_peft_model(tiny_llama(), AdaLoraConfig(
        init_r=4, target_r=2, total_step=10, tinit=1, tfinal=2, target_modules=TARGETS,
        task_type="CAUSAL_LM"))
    callback = adalora_callback(model)
    ids = batch()

    def losses():
        with torch.no_grad():
            out = model(input_ids=ids, labels=ids)
        cross_entropy = torch.nn.functional.cross_entropy(
            out.logits[:, :-1].reshape(-1, out.logits.shape[-1]), ids[:, 1:].reshape(-1))
        return out.loss.item(), cross_entropy.item()

    with_penalty, cross_entropy = losses()
    assert with_penalty > cross_entropy + 0.1  # training minimises the penalty too
    callback.on_train_end(None, None, None)
    assert losses()[0] == pytest.approx(cross_entropy, abs=1e-6)


class DeltaCallback:
    def __init__(self, delta: DeltaLoRA) -> None:
        self.delta = delta

    def before(self, step):
        self.delta.before_step()

    def after(self, step):
        self.delta.after_step(step)


def test_delta_lora_moves_w_by_the_delta_of_the_product_as_the_paper_says():
    """Reference: the same SGD steps written out with plain tensors; after `start` steps,
    W <- W + ratio * scaling * (B' A' - B A)."""
    ratio, start, steps, lr = 0.5, 2, 5, 0.05
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"],
                                                    task_type="CAUSAL_LM"))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    with torch.no_grad():  # B starts at zero in peft; a random B makes step 0 count too
        layer.lora_B["default"].weight.normal_(0, 0.1)
    reference = copy.deepcopy(model)
    delta = DeltaLoRA(model, ratio, start)
    sgd_steps(model, steps, DeltaCallback(delta), lr)

    # the reference: plain SGD on A and B, W moved by hand from the products before and after
    ref_layer = reference.base_model.model.model.layers[0].self_attn.q_proj
    A, B = ref_layer.lora_A["default"].weight, ref_layer.lora_B["default"].weight
    W = ref_layer.get_base_layer().weight
    scaling = 8 / 4
    params = [p for p in reference.parameters() if p.requires_grad]
    reference.train()
    for step in range(steps):
        ids = batch(step + 10)
        reference(input_ids=ids, labels=ids).loss.backward()
        with torch.no_grad():
            before = scaling * (B @ A)
            for p in params:
                p -= lr * p.grad
                p.grad = None
            if step >= start:
                W += ratio * (scaling * (B @ A) - before)
    torch.testing.assert_close(layer.get_base_layer().weight, W, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(layer.lora_B["default"].weight, B)
    # and W did move (steps 2..4), while the layers without LoRA did not
    assert not torch.allclose(W, tiny_llama().model.layers[0].self_attn.q_proj.weight)
    torch.testing.assert_close(model.base_model.model.model.layers[0].self_attn.k_proj.weight,
                               tiny_llama().model.layers[0].self_attn.k_proj.weight)


@pytest.mark.parametrize("method", ["dora", "delta_lora"])
def test_a_merged_export_reproduces_the_unmerged_model(tmp_path, method):
    model = get_peft_model(tiny_llama(), LoraConfig(
        r=4, lora_alpha=8, target_modules=TARGETS, use_dora=method == "dora",
        task_type="CAUSAL_LM"))
    callback = DeltaCallback(DeltaLoRA(model, 1.0, 1)) if method == "delta_lora" else None
    sgd_steps(model, 3, callback)
    ids = batch()
    unmerged = logits(model, ids)
    save_merged(model, build_tokenizer(), tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"), dtype=torch.float32)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged, ids), unmerged, atol=1e-5, rtol=1e-5)


def args(**overrides) -> argparse.Namespace:
    values = dict(method="lora", max_steps=100, r=8, adalora_init_r=12, server_max_rank=16,
                  lora_dropout=0.0, use_rslora=False)
    return argparse.Namespace(**{**values, **overrides})


@pytest.mark.parametrize("overrides, words", [
    ({"method": "adalora", "max_steps": -1}, "--max-steps"),
    ({"method": "adalora", "adalora_init_r": 4}, "at least --r"),
    ({"method": "adalora", "adalora_init_r": 32}, "max LoRA rank"),
    ({"method": "delta_lora", "lora_dropout": 0.1}, "--lora-dropout"),
])
def test_a_method_refuses_what_it_cannot_take(overrides, words):
    assert words in " ".join(method_problems(args(**overrides)))


def test_rslora_sets_rslora_scaling():
    namespace = args(method="rslora")
    assert method_problems(namespace) == [] and namespace.use_rslora


def qlora_lora_grads(base_dir, evaluate_first: bool) -> dict[str, torch.Tensor]:
    """LoRA gradients of one training step on the 4-bit base, optionally after an eval-mode,
    no-grad forward (what the recipe's accuracy before training runs)."""
    from training.components.peft_methods import load_base

    model = load_base(argparse.Namespace(method="qlora", model=str(base_dir)))
    torch.manual_seed(3)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS,
                                             init_lora_weights=False))
    ids = batch()
    if evaluate_first:
        model.eval()
        logits(model, ids)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


def test_qlora_base_is_4_bit_and_trains_the_same_after_an_evaluation(tmp_path):
    import bitsandbytes as bnb

    torch.manual_seed(0)  # widths bitsandbytes' CPU inference repacking accepts (blocks of 32 x 64)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, head_dim=16, max_position_embeddings=64,
        tie_word_embeddings=False)).save_pretrained(str(tmp_path / "base"))
    from training.components.peft_methods import load_base

    quantized = load_base(argparse.Namespace(method="qlora", model=str(tmp_path / "base")))
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quantized.modules())
    fresh = qlora_lora_grads(tmp_path / "base", evaluate_first=False)
    evaluated = qlora_lora_grads(tmp_path / "base", evaluate_first=True)
    assert fresh.keys() == evaluated.keys() and len(fresh) == 2 * 2 * len(TARGETS)
    for name in fresh:  # layer 0's A only learns if the gradient crosses layer 1's 4-bit weights
        torch.testing.assert_close(evaluated[name], fresh[name], atol=1e-5, rtol=1e-4)
