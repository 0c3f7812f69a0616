"""The LoRA family of `training.lora --method`: what each method trains and how it is served.

| method     | trains                                              | served as                    |
|------------|-----------------------------------------------------|------------------------------|
| lora       | B A on a frozen base (peft LoraConfig)              | adapter                      |
| rslora     | the same, scaled alpha / sqrt(r) (Kalajdzievski)    | adapter                      |
| adalora    | P diag(E) Q with a rank budget (peft AdaLoraConfig) | adapter (exported as LoRA)   |
| qlora      | LoRA on a 4-bit NF4 base (bitsandbytes)             | adapter, on the fp32 base    |
| dora       | magnitude + direction (peft use_dora)               | merged model (--model)       |
| delta_lora | LoRA, and W moves by the delta of B A (Zi et al.)   | merged model (--model)       |

vLLM serves LoRA with per-module ranks (rank_pattern / alpha_pattern), not DoRA's magnitude
vector, and Delta-LoRA's product is in W itself: those two are merged into the base and served
as a model of their own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

METHODS = ("lora", "rslora", "dora", "adalora", "qlora", "delta_lora")
MERGED = ("dora", "delta_lora")  # exported as a merged model, served with --model


def served_as(method: str) -> str:
    return "merged model" if method in MERGED else "adapter"


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, default="lora",
                        help="which member of the LoRA family to train (see training/README)")
    parser.add_argument("--adalora-init-r", type=int, default=12,
                        help="adalora: every module's rank before the budget prunes it to --r")
    parser.add_argument("--delta-update-ratio", type=float, default=2.0,
                        help="delta_lora: lambda, how far W moves per step of B A (Zi et al. 2023)")
    parser.add_argument("--delta-start-step", type=int, default=50,
                        help="delta_lora: optimizer steps of plain LoRA before W starts to move")


def method_problems(args: argparse.Namespace) -> list[str]:
    """Settings a method cannot take, each naming the fix."""
    problems = []
    if args.method == "adalora":
        if args.max_steps <= 0:
            problems.append("--method adalora schedules its rank budget over the run: give "
                            "--max-steps")
        if args.adalora_init_r < args.r:
            problems.append(f"--adalora-init-r {args.adalora_init_r} must be at least --r {args.r}"
                            " (the budget prunes ranks, it never adds them)")
        elif args.adalora_init_r > args.server_max_rank:
            problems.append(f"--adalora-init-r {args.adalora_init_r} exceeds the server's max LoRA"
                            f" rank {args.server_max_rank}: the exported ranks can reach it")
    if args.method == "delta_lora" and args.lora_dropout:
        problems.append("--method delta_lora trains without LoRA dropout (Zi et al. 2023: it "
                        "breaks the link between the delta of B A and W's gradient): drop "
                        "--lora-dropout")
    if args.method == "rslora" and not args.use_rslora:
        args.use_rslora = True  # the method is rsLoRA's scaling; the flag predates it
    return problems


def load_base(args: argparse.Namespace):
    """The base model: float32, or for qlora its linear layers quantized to 4-bit NF4 with double
    quantization (bitsandbytes' CPU backend on a CPU, its CUDA kernels on a GPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    if args.method != "qlora":
        return AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.float32)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(args.model, quantization_config=quantization,
                                                 device_map=device)
    keep_4bit_weights_trainable(model)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def keep_4bit_weights_trainable(model) -> None:
    """bitsandbytes >= 0.50 on a CPU with AVX512-BF16 repacks a Linear4bit's weight for its
    inference kernel the first time the layer runs in eval mode without grad (our accuracy
    before training), and keeps that layout: later training forwards then run that kernel, which
    has no backward, so no gradient flows through the frozen layers (silently: the adapter
    trained to eval loss 1.37 against LoRA's 0.19, and 0% accuracy). Turning the repacking off
    keeps every forward on the differentiable path."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def method_config(model, args: argparse.Namespace):
    """peft's config of the method (adalora's budget spread over --max-steps)."""
    from peft import AdaLoraConfig, LoraConfig

    from training.components.peft import resolve_targets

    common = dict(target_modules=resolve_targets(model, args.target_modules),
                  lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                  layers_to_transform=args.layers_to_transform, bias="none",
                  task_type="CAUSAL_LM")
    if args.method == "adalora":
        total = args.max_steps
        return AdaLoraConfig(init_r=args.adalora_init_r, target_r=args.r, total_step=total,
                             tinit=total // 10, tfinal=total // 5, deltaT=max(1, total // 20),
                             **common)
    return LoraConfig(r=args.r, use_rslora=args.use_rslora, use_dora=args.method == "dora",
                      **common)


def weight_bytes(model) -> int:
    """Bytes of every parameter and buffer (a 4-bit weight counts its packed bytes)."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


# -- AdaLoRA ----------------------------------------------------------------------------------


def adalora_callback(model):
    """A TrainerCallback that runs AdaLoRA's rank allocation after every optimizer step, while
    the gradients it reads for the importance scores are still there (peft's contract); when
    training ends, it drops the orthogonality penalty that peft's AdaLoRA adds to every loss
    computed with labels (a regularizer of training: with it the held-out eval_loss was the
    model's cross-entropy plus 0.5 x the penalty, 2.34 for a cross-entropy of 1.59, and could
    not be compared with the other methods' or the exported adapter's)."""
    from transformers import TrainerCallback

    class RankAllocation(TrainerCallback):
        def on_optimizer_step(self, args, state, control, **kwargs):
            model.base_model.update_and_allocate(state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            model.peft_config["default"].orth_reg_weight = 0.0

    return RankAllocation()


def adalora_as_lora(model) -> tuple[dict, dict]:
    """(state dict, adapter_config) of a plain LoRA with the same output as the AdaLoRA `model`.

    AdaLoRA adds (x (A * E)^T B^T) * scaling / ranknum; the ranks the budget pruned have E = 0.
    Each module keeps its live ranks: A' = (A * E)[kept], B' = B[:, kept] * scaling / ranknum,
    its rank in rank_pattern and alpha = rank in alpha_pattern, so vLLM's (and peft's) scaling
    alpha / r is 1. A module with no rank left keeps one zero rank (vLLM needs r >= 1)."""
    import torch
    from peft import LoraConfig

    state, ranks = {}, {}
    for name, module in model.named_modules():
        if not hasattr(module, "lora_E") or "default" not in module.lora_E:
            continue
        A = module.lora_A["default"].detach()  # [r, in]
        E = module.lora_E["default"].detach()  # [r, 1]
        B = module.lora_B["default"].detach()  # [out, r]
        scale = module.scaling["default"] / (module.ranknum["default"].item() + 1e-5)
        kept = torch.nonzero(E[:, 0]).flatten()
        if len(kept):
            new_a, new_b = (A * E)[kept], B[:, kept] * scale
        else:
            new_a, new_b = A.new_zeros(1, A.shape[1]), B.new_zeros(B.shape[0], 1)
        key = name.removeprefix("base_model.model.")
        state[f"base_model.model.{key}.lora_A.weight"] = new_a.float().contiguous()
        state[f"base_model.model.{key}.lora_B.weight"] = new_b.float().contiguous()
        ranks[key] = new_a.shape[0]
    source = model.peft_config["default"]
    top = max(ranks.values())
    config = LoraConfig(r=top, lora_alpha=top, rank_pattern=ranks, alpha_pattern=dict(ranks),
                        target_modules=sorted(source.target_modules),
                        layers_to_transform=source.layers_to_transform, bias="none",
                        task_type="CAUSAL_LM",
                        base_model_name_or_path=source.base_model_name_or_path)
    return state, config


def save_adalora_as_lora(model, out: Path) -> dict:
    """Writes the exported LoRA (adapter_config.json + adapter_model.safetensors); returns its
    per-module ranks."""
    from safetensors.torch import save_file

    state, config = adalora_as_lora(model)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    save_file(state, str(out / "adapter_model.safetensors"))
    return dict(config.rank_pattern)


# -- Delta-LoRA -------------------------------------------------------------------------------


class DeltaLoRA:
    """Delta-LoRA (Zi et al. 2023, "Fine-Tuning High-Rank Parameters with the Delta of Low-Rank
    Matrices"): after `start_step` optimizer steps, every step also moves the frozen weight by
    the change of the adapter's product, W <- W + ratio * (s B' A' - s B A), s = the LoRA
    scaling (alpha / r), B A before the step and B' A' after it. W gets no gradient and no
    optimizer state: the update costs one product per module. `before_step` / `after_step`
    bracket each optimizer step (the TrainerCallback below calls them)."""

    def __init__(self, model, ratio: float, start_step: int) -> None:
        self.ratio, self.start_step = ratio, start_step
        self.layers = [m for m in model.modules()
                       if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})]
        if not self.layers:
            raise ValueError("Delta-LoRA needs a model with LoRA layers")
        self._before: list = []

    def products(self) -> list:
        """s B A of every LoRA layer, [out, in] each."""
        return [m.scaling["default"] * (m.lora_B["default"].weight @ m.lora_A["default"].weight)
                for m in self.layers]

    def before_step(self) -> None:
        import torch

        with torch.no_grad():
            self._before = self.products()

    def after_step(self, step: int) -> None:
        """`step`: the index of the optimizer step just taken (0 for the first)."""
        import torch

        if step < self.start_step:
            return
        with torch.no_grad():
            for layer, before, after in zip(self.layers, self._before, self.products()):
                layer.get_base_layer().weight.add_(self.ratio * (after - before))

    def callback(self):
        from transformers import TrainerCallback

        delta = self

        class DeltaLoRAStep(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, **kwargs):
                delta.before_step()

            def on_optimizer_step(self, args, state, control, **kwargs):
                delta.after_step(state.global_step)

        return DeltaLoRAStep()


# -- merged export ----------------------------------------------------------------------------


def save_merged(peft_model, tokenizer, out: Path):
    """The base with the adapter merged in (DoRA's magnitude and direction, Delta-LoRA's moved W
    plus its last B A), as an HF model directory the server serves with --model."""
    import torch

    merged = peft_model.merge_and_unload()
    merged = merged.to(torch.float32)
    merged.config.use_cache = True
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return merged


def serving_note(method: str, out: Path) -> str:
    if method in MERGED:
        return (f"{method} is not a LoRA vLLM can serve: this is a merged model; serve it with "
                f"python -m server --model {out}")
    return f"a LoRA adapter: load it with /v1/load_lora_adapter or --lora-modules NAME={out}"

