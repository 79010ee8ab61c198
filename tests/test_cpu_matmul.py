"""The CPU linear layers (`cpu_matmul.py`, `kernels/few_row_matmul.cpp`, oneDNN): the same
products as `F.linear` from every kernel body, the fallback and oneDNN, each where it applies (few
rows, many rows, autograd), bad inputs refused, switched off by its environment variable, and
lossless greedy decoding on top of it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from specbench_cli import cpu_matmul
from specbench_cli.cpu_matmul import CpuLinear, use_cpu_matmul
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy


def tiny_lm(seed: int = 0) -> LlamaForCausalLM:
    cfg = LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, initializer_range=0.5,
                      max_position_embeddings=256)  # fmt: skip
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 3), (1, 12), (1, 13), (4, 4), (1, 17),
                                   (3, 50), (3,)])  # fmt: skip
def test_cpu_linear_computes_f_linear(shape: tuple[int, ...], bias: bool) -> None:
    g = torch.Generator().manual_seed(len(shape) + sum(shape))
    layer = torch.nn.Linear(48, 40, bias=bias)
    x = torch.randn(*shape, 48, generator=g)
    want = F.linear(x, layer.weight, layer.bias)
    layer.__class__ = CpuLinear
    with torch.inference_mode():
        got = layer(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_cpu_linear_keeps_f_linear_while_autograd_records() -> None:
    """The kernel and oneDNN's op have no backward: with autograd recording, F.linear itself."""
    layer = torch.nn.Linear(48, 40)
    layer.__class__ = CpuLinear
    for rows in (1, 5, 30):
        x = torch.randn(rows, 48, requires_grad=True)
        y = layer(x)
        assert torch.equal(y, F.linear(x, layer.weight, layer.bias))
        y.sum().backward()
        assert x.grad is not None and layer.weight.grad is not None


def test_onednn_computes_f_linear_over_many_rows() -> None:
    run = cpu_matmul.onednn()
    assert run is not None, "torch's CPU wheel ships oneDNN: the many-row path must be there"
    g = torch.Generator().manual_seed(4)
    for rows, width, out in ((13, 48, 40), (64, 576, 192), (141, 37, 13), (300, 96, 7)):
        w, b = torch.randn(out, width, generator=g), torch.randn(out, generator=g)
        x = torch.randn(rows, width, generator=g)
        torch.testing.assert_close(run(x, w, b), F.linear(x, w, b), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(run(x, w, None), F.linear(x, w), rtol=1e-5, atol=1e-4)


def test_only_plain_float32_cpu_linear_layers_change(monkeypatch) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4).double(),
                                torch.nn.Embedding(5, 4))  # fmt: skip
    assert use_cpu_matmul(model) == 1
    assert [type(m) for m in model] == [CpuLinear, torch.nn.Linear, torch.nn.Embedding]
    monkeypatch.setenv("SPECBENCH_CPU_MATMUL", "off")
    assert use_cpu_matmul(tiny_lm()) == 0
    assert cpu_matmul.mode() == "F.linear"


@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_speculative_on_few_row_matmul_equals_generate(k: int) -> None:
    """Prefills (20 rows) run on oneDNN, plain steps and verify steps (2..k+1 rows) on the kernel:
    greedy speculative decoding still emits `generate`'s tokens, token for token."""
    target = tiny_lm()
    assert use_cpu_matmul(target) == 2 * 7 + 1  # q, k, v, o, gate, up, down; lm_head
    g = torch.Generator().manual_seed(7)
    greedy = SamplingConfig(temperature=0.0)
    for _ in range(4):
        prompt = torch.randint(0, 16, (20,), generator=g).tolist()
        want = target.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, 20).long(),
                               do_sample=False, max_new_tokens=40,
                               eos_token_id=None, pad_token_id=0)[0, 20:].tolist()  # fmt: skip
        engine = Engine(target, 16, greedy, get_strategy("greedy"), NgramDrafter(min_ngram=1), k)
        tokens = [t for step in engine.generate(prompt, 40, seed=0) for t in step.tokens]
        assert tokens == want


def _isas() -> list[str]:
    """The kernel bodies this CPU can run (torch's own reading of the CPU)."""
    capability = torch.backends.cpu.get_cpu_capability()
    return ["auto", "scalar", *(["avx2"] if capability in ("AVX2", "AVX512") else []),
            *(["avx512"] if capability == "AVX512" else [])]  # fmt: skip


@pytest.mark.parametrize("isa", _isas())
def test_kernel_bodies_compute_f_linear_for_every_row_count(isa: str) -> None:
    """Every body, every row count 1-16, widths with and without a vector tail, output counts
    that leave a partial block of weight rows, with and without bias."""
    run = cpu_matmul.kernel()
    assert run is not None, "the few-row kernel must build wherever the tests run"
    g = torch.Generator().manual_seed(3)
    for width, out in ((64, 48), (37, 13), (576, 191), (7, 5)):
        w, b = torch.randn(out, width, generator=g), torch.randn(out, generator=g)
        for n in range(1, cpu_matmul.MAX_ROWS + 1):
            x = torch.randn(n, width, generator=g)
            torch.testing.assert_close(run(x, w, b, isa=isa), F.linear(x, w, b),
                                       rtol=1e-5, atol=1e-4)  # fmt: skip
            torch.testing.assert_close(run(x, w, isa=isa), F.linear(x, w), rtol=1e-5, atol=1e-4)


def test_kernel_refuses_bad_inputs() -> None:
    run = cpu_matmul.kernel()
    w = torch.randn(6, 8)
    bad = {
        "17 rows": (torch.randn(17, 8), w, None, "auto"),
        "no rows": (torch.randn(0, 8), w, None, "auto"),
        "width mismatch": (torch.randn(2, 7), w, None, "auto"),
        "float64": (torch.randn(2, 8).double(), w, None, "auto"),
        "non-contiguous": (torch.randn(8, 2).t(), w, None, "auto"),
        "bias length": (torch.randn(2, 8), w, torch.randn(5), "auto"),
        "unknown isa": (torch.randn(2, 8), w, None, "neon"),
    }
    for name, (x, weight, bias, isa) in bad.items():
        with pytest.raises(ValueError, match="few_row_linear"):
            run(x, weight, bias, isa=isa)
            pytest.fail(name)


def test_models_run_on_the_kernel_and_the_fallback_computes_f_linear() -> None:
    assert cpu_matmul.mode() == "few-row kernel + oneDNN"
    g = torch.Generator().manual_seed(5)
    w, b = torch.randn(40, 48, generator=g), torch.randn(40, generator=g)
    for n in (1, 2, 5, 16):
        x = torch.randn(n, 48, generator=g)
        torch.testing.assert_close(cpu_matmul.mm_rows(x, w, b), F.linear(x, w, b),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
        if n > 1:  # row-major, as the verify kernel reads logits
            assert cpu_matmul.mm_rows(x, w, None).is_contiguous()
