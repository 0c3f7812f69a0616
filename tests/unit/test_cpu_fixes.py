"""The CPU LoRA fixes: exact on tiny tensors, and a tripwire if upstream code changes under them."""

import importlib.util
import inspect

import pytest
import torch

lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")

from engine import cpu_fixes, cpu_lora_ops  # noqa: E402



def _upstream_module():
    """A fresh copy of vLLM's torch LoRA ops: cpu_fixes may have patched the imported module."""
    spec = importlib.util.spec_from_file_location("upstream_lora_ops", lora_ops.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


upstream = _upstream_module()


def test_upstream_still_has_the_bug_we_patch():
    # If this fails, vLLM changed the CPU LoRA ops: re-run the repro in cpu_fixes' docstring
    # and drop or re-validate the patch (and extend TESTED_VLLM_VERSIONS).
    import vllm

    assert vllm.__version__ in cpu_fixes.TESTED_VLLM_VERSIONS
    source = inspect.getsource(lora_ops)
    assert "selected_loras = lora_b_weights[lora_indices_tensor]" in source


def test_fixed_shrink_gives_base_rows_zero_and_adapter_rows_their_own_weights():
    torch.manual_seed(0)
    weights = torch.randn(2, 1, 4, 8)  # [slots, 1, rank, in]
    inputs = torch.randn(3, 8)  # [T, in]
    indices = torch.tensor([-1, 0, 1])
    out = torch.full((3, 4), 7.0)
    cpu_lora_ops.bgmv_shrink(inputs, weights, out, indices, 0.5)
    assert torch.equal(out[0], torch.zeros(4))
    for row, slot in ((1, 0), (2, 1)):
        torch.testing.assert_close(out[row], 0.5 * weights[slot, 0] @ inputs[row])


@pytest.mark.parametrize("indices", [[1, 0, 1, 2, 0, 1], [2, 2, 2, 2, 2, 2], [0, 0, 1, 1, 2, 2]])
@pytest.mark.parametrize("stacked", [3, 4])
def test_grouped_ops_equal_upstreams_per_token_ops_where_every_row_has_an_adapter(indices,
                                                                                  stacked):
    # upstream is right when no row is a base-model row: the grouped ops must match it exactly
    torch.manual_seed(1)
    idx = torch.tensor(indices)
    a = torch.randn(3, 1, 4, 8) if stacked == 4 else torch.randn(3, 4, 8)  # [slots, (1), r, in]
    b = torch.randn(3, 1, 10, 4) if stacked == 4 else torch.randn(3, 10, 4)  # [slots, (1), out, r]
    x = torch.randn(6, 8)
    ours, theirs = torch.zeros(6, 4), torch.zeros(6, 4)
    cpu_lora_ops.bgmv_shrink(x, a, ours, idx, 0.5)
    upstream.bgmv_shrink(x, a, theirs, idx, 0.5)
    torch.testing.assert_close(ours, theirs)
    for add in (True, False):
        y_ours, y_theirs = torch.ones(6, 10), torch.ones(6, 10)
        cpu_lora_ops.bgmv_expand(ours, b, y_ours, idx, add)
        upstream.bgmv_expand(theirs, b, y_theirs, idx, add)
        torch.testing.assert_close(y_ours, y_theirs)
        y_ours, y_theirs = torch.ones(6, 24), torch.ones(6, 24)
        cpu_lora_ops.bgmv_expand_slice(ours, b, y_ours, idx, 7, 10, add)
        upstream.bgmv_expand_slice(theirs, b, y_theirs, idx, 7, 10, add)
        torch.testing.assert_close(y_ours, y_theirs)


def test_grouped_expand_adds_nothing_to_base_rows():
    b = torch.randn(2, 10, 4)
    y = torch.ones(3, 10)
    cpu_lora_ops.bgmv_expand(torch.randn(3, 4), b, y, torch.tensor([-1, 1, -1]), True)
    assert torch.equal(y[0], torch.ones(10)) and torch.equal(y[2], torch.ones(10))
    assert not torch.equal(y[1], torch.ones(10))
    y = torch.ones(2, 10)
    cpu_lora_ops.bgmv_expand(torch.randn(2, 4), b, y, torch.tensor([-1, -1]), False)
    assert torch.equal(y, torch.zeros(2, 10))


def test_unfixed_shrink_leaks_the_last_adapter_into_base_rows():
    weights = torch.ones(2, 1, 4, 8)
    weights[1] *= 3
    out = torch.zeros(1, 4)
    upstream.bgmv_shrink(torch.ones(1, 8), weights, out, torch.tensor([-1]), 1.0)
    assert torch.equal(out[0], torch.full((4,), 24.0))  # the bug: slot -1 == last slot


def test_upstream_still_rewinds_generators_with_set_offset():
    from vllm.v1.worker import gpu_model_runner

    assert "gen.set_offset(gen.get_offset() - 4)" in inspect.getsource(gpu_model_runner)


def test_discarded_requests_generators_are_hidden_from_the_rewind_and_restored():
    import numpy as np
    from types import SimpleNamespace

    seen = []

    def original(self):
        seen.append(dict(self.input_batch.generators))
        return "result"

    gens = {0: "g0", 1: "g1", 2: "g2"}
    runner = SimpleNamespace(
        input_batch=SimpleNamespace(generators=gens, num_reqs=3),
        discard_request_mask=SimpleNamespace(np=np.array([False, True, False, True])))
    assert cpu_fixes._no_generator_rewind(original)(runner) == "result"
    assert seen == [{0: "g0", 2: "g2"}]  # request 1's generator is not rewound
    assert gens == {0: "g0", 1: "g1", 2: "g2"}


def test_amx_permission_follows_the_cpu():
    # vLLM's CPU attention picks its AMX kernels when torch reports AMX tiles; the process must
    # then be allowed to run them, or a one-token first request dies of SIGILL
    has_amx = torch.cpu._is_amx_tile_supported()
    assert cpu_fixes.allow_amx() is has_amx
    assert cpu_fixes.amx_permitted() is has_amx


def test_the_xstate_permission_query_reaches_the_kernel():
    # ARCH_GET_XCOMP_PERM answers on every x86-64 Linux: x87 and SSE state are always permitted,
    # so a broken syscall plumbing (which would make allow_amx a silent no-op) shows here
    import ctypes

    mask = ctypes.c_uint64(0)
    assert cpu_fixes._arch_prctl(cpu_fixes._ARCH_GET_XCOMP_PERM, ctypes.addressof(mask)) == 0
    assert mask.value & 0b11 == 0b11
