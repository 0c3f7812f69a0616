"""LoRA matmuls for vLLM's CPU path, grouped by adapter instead of gathered per token.

vLLM's torch ops (`vllm/lora/ops/torch_ops/lora_ops.py`) copy one weight matrix per token
(`lora_weights[indices]`: [T, out, in]) and einsum over it, for base-model rows too, whose index
-1 then picks the last slot's adapter (the mixed-batch bug). Profiled on the reasoning benchmark,
that copy was half of the engine's time. Here each adapter present in the batch gets one matmul
over its rows, and base-model rows get exactly zero: the same sums, without the copies or the bug.

Signatures are those of the ops they replace (`bgmv_shrink`, `bgmv_expand`, `bgmv_expand_slice`;
the `sgmv_*` ops expand per-sequence indices to per-token ones and call these).
"""

from __future__ import annotations

import torch


def grouped_lora_matmul(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                        dtype: torch.dtype) -> torch.Tensor:
    """Row t of the result is weights[indices[t]] @ inputs[t], or zeros where indices[t] < 0.

    inputs: [T, in]; weights: [slots, out, in] or [slots, 1, out, in]; indices: [T] -> [T, out]
    """
    if weights.dim() == 4:
        weights = weights.squeeze(1)
    x = inputs.to(dtype)
    slots = indices.unique().tolist()
    if len(slots) == 1 and slots[0] >= 0:  # one adapter for the whole batch: one plain matmul
        return x @ weights[slots[0]].to(dtype).T
    out = x.new_zeros(x.shape[0], weights.shape[1])
    for slot in slots:
        if slot < 0:
            continue  # base model: no adapter, zero
        rows = torch.nonzero(indices == slot).squeeze(1)
        out.index_copy_(0, rows, x.index_select(0, rows) @ weights[slot].to(dtype).T)
    return out


def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
    out = grouped_lora_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : out.shape[1]] = scaling * out


def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
    out = grouped_lora_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    # as upstream: one input row fills only the first output row; adapter and model may pad
    # their widths differently
    limit = 1 if out.shape[0] == 1 and output_tensor.shape[0] != 1 else output_tensor.shape[0]
    width = min(out.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :width] += out[:limit, :width]
    else:
        output_tensor[:, :width] = out[:limit, :width]


def bgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor,
                      output_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor,
                      slice_offset: int, slice_size: int, add_inputs: bool = True) -> None:
    out = grouped_lora_matmul(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset: slice_offset + slice_size] += out
    else:
        output_tensor[:, slice_offset: slice_offset + slice_size] = out
