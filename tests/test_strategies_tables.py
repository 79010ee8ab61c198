"""Hand-built tables and edge cases for the acceptance strategies (docs/strategies.md and
docs/randomness.md).

Greedy rules, the strict accept test, bonus rows with ragged drafts, -1 padding, the fixed-point
sampler on hand-picked draws, the empty-residual fallback, the randomness contract (one seed per
call, rows independent of their batch position, the logits entry), input validation with the
same errors on every backend, and the registry / CLI spec parsing. Everything here is exact;
statistical checks live in test_strategies_stats.py, the noise itself in test_noise.py.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from specbench_cli import kernels
from specbench_cli.sampling import SamplingConfig, process_logits, to_probs
from specbench_cli.strategies import (
    Noise,
    available_strategies,
    get_strategy,
    parse_strategy_spec,
    rule_kinds,
    strategy_class,
)
from specbench_cli.strategies.base import Step
from specbench_cli.strategies.weights import sample_from_weights

ALL = ["greedy", "sps", "block", "tas", "cactus", "topk", "interp"]  # the chain rules
BACKENDS = ["torch"] + (["cpu"] if kernels.compiler_available() else []) + (
    ["cuda"] if torch.cuda.is_available() else [])  # fmt: skip


def noise(B: int, seed: int = 0) -> Noise:
    return Noise(torch.full((B,), seed), torch.arange(B))


def probs(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def random_inputs(B: int, k: int, V: int, seed: int, zeros: bool = True):
    """Random target/draft laws (with top-p-like zeros in q), drafts x ~ p, ragged n_r."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, k + 1, V, generator=g) * 2
    if zeros:
        logits[torch.rand(B, k + 1, V, generator=g) < 0.3] = -math.inf
        logits[..., 0] = 5.0  # keep every row nonempty
    target = torch.softmax(logits, -1)
    draft = torch.softmax(torch.randn(B, k, V, generator=g) * 2, -1)
    x = torch.multinomial(draft.view(-1, V), 1, generator=g).view(B, k)
    n_r = torch.randint(0, k + 1, (B,), generator=g)
    return target, draft, x, n_r, g


# -- greedy -----------------------------------------------------------------------------------


def greedy_target():
    # argmax per row: 2, 0 (tie 0/1 -> lowest id), 3, then the bonus row 1
    return probs([[0.1, 0.2, 0.6, 0.1], [0.4, 0.4, 0.1, 0.1],
                  [0.1, 0.1, 0.1, 0.7], [0.1, 0.6, 0.2, 0.1]])  # fmt: skip


GREEDY_TABLE = [  # drafts, accepted, tokens
    ([2, 0, 3], 3, [2, 0, 3, 1]),  # perfect match: bonus = argmax of the bonus row
    ([2, 1, 3], 1, [2, 0, -1, -1]),  # tie row: draft 1 loses to the lowest id 0
    ([0, 0, 3], 0, [2, -1, -1, -1]),  # first-position mismatch
    ([2, 0, 2], 2, [2, 0, 3, -1]),  # late mismatch
]


@pytest.mark.parametrize(("drafts", "accepted", "tokens"), GREEDY_TABLE)
def test_greedy_table(drafts, accepted, tokens) -> None:
    s = get_strategy("greedy")
    x = torch.tensor([drafts])
    for draft_probs in (None, torch.full((1, 3, 4), 0.25)):  # greedy ignores the draft law
        r = s.verify(greedy_target(), draft_probs, x)  # no generator: greedy draws nothing
        assert r.num_accepted.tolist() == [accepted] and r.tokens.tolist() == [tokens]


def test_greedy_takes_the_argmax_on_logits_when_given() -> None:
    target = probs([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    logits = torch.tensor([[[0.0, 2.0, 1.0], [0.0, 0.0, 1.0]]])  # argmax 1, then 2
    s, x = get_strategy("greedy"), torch.tensor([[1]])
    assert s.verify(target, None, x, target_logits=logits).tokens.tolist() == [[1, 2]]
    assert s.verify(target, None, x).tokens.tolist() == [[2, -1]]


def test_greedy_consumes_no_randomness_and_accepts_no_noise() -> None:
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    r = get_strategy("greedy").verify(greedy_target(), None, torch.tensor([[2, 0, 3]]), g)
    assert torch.equal(g.get_state(), state) and r.num_accepted.item() == 3
    r2 = get_strategy("greedy").verify_with_noise(greedy_target(), None, r.tokens[:, :3], None)
    assert torch.equal(r2.tokens, r.tokens)
    assert not get_strategy("greedy").uses_noise
    assert not get_strategy("tas", bonus="argmax").uses_noise


# -- the accept test, fallback and sampling ---------------------------------------------------


def test_accept_is_strict_u_times_p_below_t() -> None:
    q_x = torch.tensor([[0.25, 0.25, 0.25, 0.0]])
    p_x = torch.tensor([[0.5, 0.5, 0.0, 0.5]])
    below_half = 0.5 - 2.0**-25  # the float32 just below 0.5
    # u*p == q rejects; just below accepts; p(x) = 0 with q > 0 accepts; q(x) = 0 rejects at u = 0
    u = torch.tensor([[0.5, below_half, 0.99, 0.0]])
    step = Step(torch.empty(1, 5, 1), None, torch.zeros(1, 4, dtype=torch.long), None, q_x, p_x, u,
                None)
    assert get_strategy("sps").accept(step).tolist() == [[False, True, True, False]]


@pytest.mark.parametrize("spec", ["sps", "cactus:delta=0.5", "interp"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_residual_falls_back_to_the_target(spec: str, backend: str) -> None:
    # q = p and the draft has p(x) = q(x) = 0: always rejected, residual max(.., 0) is all zero
    B = 64
    target = probs([[0.5, 0.5, 0, 0], [0, 0, 0, 1]]).expand(B, 2, 4).contiguous()
    draft = probs([[0.5, 0.5, 0, 0]]).expand(B, 1, 4).contiguous()
    x = torch.full((B, 1), 2)
    n = noise(B, seed=3)
    r = parse_strategy_spec(spec, backend=backend).verify_with_noise(target, draft, x, n)
    expected = sample_from_weights(target[:, 0], n.final_draws())  # a sample of q, same draw
    assert r.num_accepted.tolist() == [0] * B and torch.equal(r.tokens[:, 0], expected)
    assert set(expected.tolist()) == {0, 1}


def test_fixed_point_sampling_table() -> None:
    w = torch.tensor([[1.0, 0.0, 3.0]] * 5 + [[0.0, 0.0, 0.0]])
    quarter = 2**62  # r / 2^64 = 1/4: the target is exactly the first prefix sum, 2^44
    draws = torch.tensor([0, quarter - 1, quarter, -1, -(2**63), 5])  # -1: 2^64 - 1, -2^63: 2^63
    fallback = torch.tensor([[1.0, 0.0, 0.0]] * 5 + [[0.0, 1.0, 1.0]])
    # targets 0, 2^44 - 1 -> id 0; 2^44 (the zero-weight id 1 is skipped) -> 2; the largest
    # draw -> the last positive id; all-zero weights take the fallback, never a blind token 0
    assert sample_from_weights(w, draws, fallback).tolist() == [0, 0, 2, 2, 2, 1]


def test_tiny_weights_below_the_fixed_point_step_count_as_zero() -> None:
    w = torch.tensor([[2.0**-45, 1.0, 2.0**-44]])
    draws = torch.tensor([-1, 0])
    assert sample_from_weights(w.expand(2, 3), draws).tolist() == [2, 1]


# -- bonus rows, ragged drafts, padding -------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("explicit_draft", [False, True])
def test_all_accepted_rows_take_the_bonus_from_row_n_r(name, backend, explicit_draft) -> None:
    B, k, V = 4, 3, 8
    target = torch.zeros(B, k + 1, V)
    target[:, torch.arange(k + 1), torch.arange(k + 1) + 3] = 1.0  # row j is one-hot at j + 3
    x = torch.arange(k).repeat(B, 1) + 3
    n_r = torch.tensor([0, 1, 3, 2])
    x[0, 1:] = -7  # ids past n_r are padding and never read
    draft = None
    if explicit_draft:
        draft = torch.nn.functional.one_hot(x.clamp_min(0), V).float()
    r = get_strategy(name, backend=backend).verify(
        target, draft, x, torch.Generator().manual_seed(1), num_drafts=n_r)
    assert r.num_accepted.tolist() == [0, 1, 3, 2]
    assert r.tokens.tolist() == [[3, -1, -1, -1], [3, 4, -1, -1], [3, 4, 5, 6], [3, 4, 5, -1]]


@pytest.mark.parametrize("spec", ALL + ["tas:bonus=argmax", "topk:k=1", "cactus:delta=0"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_padding_structure_and_support(spec: str, deterministic: bool) -> None:
    B, k, V = 3000, 5, 12
    target, draft, x, n_r, g = random_inputs(B, k, V, seed=len(spec) + 7 * deterministic)
    if deterministic:
        draft = None
    r = parse_strategy_spec(spec).verify(target, draft, x, g, num_drafts=n_r)
    a, tokens = r.num_accepted, r.tokens
    assert tokens.shape == (B, k + 1) and a.dtype == tokens.dtype == torch.int64
    assert bool((a >= 0).all() and (a <= n_r).all())
    positions = torch.arange(k + 1)
    drafted = positions[None, :k] < a[:, None]
    assert torch.equal(tokens[:, :k][drafted], x[drafted])  # accepted drafts come first
    assert bool((tokens[positions > a[:, None]] == -1).all())  # then only padding
    assert torch.equal((tokens != -1).sum(1), a + 1)  # tokens emitted = accepted + 1
    emitted = tokens.gather(1, a[:, None]).squeeze(1)
    q_emitted = target[torch.arange(B), a, emitted]
    assert bool((q_emitted > 0).all())  # corrections and bonuses stay in the target support
    assert 0 < int((a < n_r).sum()) < B  # both rejections and full acceptances occurred


@pytest.mark.parametrize("name", ALL)
def test_k_zero_is_an_ordinary_decoding_step(name: str) -> None:
    target = probs([[0.0, 0.0, 1.0, 0.0]], [[0.0, 1.0, 0.0, 0.0]])
    r = get_strategy(name).verify(target, None, torch.zeros(2, 0, dtype=torch.long),
                                  torch.Generator().manual_seed(0))  # fmt: skip
    assert r.tokens.tolist() == [[2], [1]] and r.num_accepted.tolist() == [0, 0]


# -- the randomness contract ------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["sps", "block", "cactus", "topk", "interp", "tas"])
def test_verify_draws_exactly_one_seed(spec: str) -> None:
    target, draft, x, n_r, _ = random_inputs(50, 3, 9, seed=4)
    s = parse_strategy_spec(spec)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    r1 = s.verify(target, draft, x, g1, num_drafts=n_r)
    r2 = s.verify_with_noise(target, draft, x, Noise.draw(g2, 50), num_drafts=n_r)
    assert torch.equal(r1.tokens, r2.tokens)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


@pytest.mark.parametrize("spec", ["sps", "cactus", "topk", "interp", "tas"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_with_their_own_seeds_do_not_depend_on_batch_position(spec: str, backend: str) -> None:
    """The batched-engine form: each row's (seed, counter) fixes its tokens, wherever it sits."""
    target, draft, x, n_r, _ = random_inputs(40, 3, 9, seed=6)
    n = Noise(torch.arange(40) * 7919, torch.arange(40) % 5)
    s = parse_strategy_spec(spec, backend=backend)
    whole = s.verify_with_noise(target, draft, x, n, num_drafts=n_r)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    part = order[:13]
    shuffled = s.verify_with_noise(target[part], draft[part], x[part],
                                   Noise(n.seeds[part], n.counters[part]), num_drafts=n_r[part])
    assert torch.equal(shuffled.tokens, whole.tokens[part])


@pytest.mark.parametrize("spec", ["sps", "greedy", "tas", "topk"])
@pytest.mark.parametrize("cfg", [SamplingConfig(0.8, top_k=4), SamplingConfig(0.0),
                                 SamplingConfig(1.0, top_p=0.7)])  # fmt: skip
def test_verify_logits_is_processing_then_verify(spec: str, cfg: SamplingConfig) -> None:
    """The reference of the logits entry is `sampling.py`'s processing, then `verify`."""
    g = torch.Generator().manual_seed(2)
    logits, draft_logits = torch.randn(30, 4, 9, generator=g), torch.randn(30, 3, 9, generator=g)
    draft = to_probs(process_logits(draft_logits, cfg), cfg)
    x = torch.randint(0, 9, (30, 3), generator=g)
    s = parse_strategy_spec(spec)
    processed = process_logits(logits, cfg)
    want = s.verify_with_noise(to_probs(processed, cfg), draft, x, noise(30),
                               target_logits=processed)
    for kwargs in ({"draft_probs": draft}, {"draft_probs": None, "draft_logits": draft_logits}):
        got = s.verify_logits(logits, draft_tokens=x, sampling=cfg, noise=noise(30), **kwargs)
        assert torch.equal(got.tokens, want.tokens)


# -- rule specifics ---------------------------------------------------------------------------


def test_tas_rules() -> None:
    # row 0: H ~ 0.394, tau = min(0.09, 0.3 e^-H) = 0.09; q(0) = 0.05 rejects -> argmax 1
    target = probs([[0.05, 0.9, 0.05], [0.0, 0.0, 1.0]])
    n = noise(1)
    tas, x0, x1, x2 = get_strategy("tas"), *(torch.tensor([[i]]) for i in range(3))
    assert tas.verify_with_noise(target, None, x0, n).tokens.tolist() == [[1, -1]]
    # accepted draft 1; the bonus is sampled from row 1 (one-hot at 2) or its argmax
    assert tas.verify_with_noise(target, None, x1, n).tokens.tolist() == [[1, 2]]
    argmax = get_strategy("tas", bonus="argmax")
    assert argmax.verify_with_noise(target, None, x1, None).tokens.tolist() == [[1, 2]]
    loose = get_strategy("tas", eps=0.0, alpha=0.0)  # accepts every draft with q > 0
    target = probs([[0.001, 0.999, 0.0], [0.2, 0.3, 0.5]])
    assert loose.verify_with_noise(target, None, x0, n).num_accepted.item() == 1
    assert loose.verify_with_noise(target, None, x2, n).tokens.tolist() == [[1, -1]]


def test_topk_rules() -> None:
    s = get_strategy("topk", k=2)  # T = {0, 1}; p(T) = 0.4; |T| - p(T) = 1.6
    pi = s.output_distribution(torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.2, 0.6]))
    torch.testing.assert_close(pi, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    ties = probs([[0.3, 0.3, 0.3, 0.1], [0.25] * 4])  # ties at theta enlarge T
    one = get_strategy("topk", k=1)
    assert one.verify(ties, None, torch.tensor([[2]]), torch.Generator()).num_accepted.item() == 1
    assert one.verify(ties, None, torch.tensor([[3]]), torch.Generator()).num_accepted.item() == 0
    # theta = 0 guard: K beyond the support never accepts or emits a q = 0 token
    narrow = probs([[0.5, 0.5, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0]]).expand(2000, 2, 6)
    x = torch.randint(0, 6, (2000, 1), generator=torch.Generator().manual_seed(0))
    r = get_strategy("topk", k=5).verify(narrow, None, x, torch.Generator().manual_seed(1))
    assert torch.equal(r.num_accepted, (x[:, 0] < 2).long())
    assert bool((r.tokens[:, 0] < 2).all() and (r.tokens[:, 0] >= 0).all())


# -- validation -------------------------------------------------------------------------------


def _good() -> dict:
    target, draft, x, _, _ = random_inputs(2, 3, 5, seed=1, zeros=False)
    return {"target_probs": target, "draft_probs": draft, "draft_tokens": x,
            "num_drafts": torch.tensor([3, 2])}  # fmt: skip


def _poked(t: torch.Tensor, value: float) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = value  # row 0, position 0: live in every check
    return t


BAD_INPUTS = {
    "no bonus row": lambda d: {"target_probs": d["target_probs"][:, :3]},
    "vocab mismatch": lambda d: {"draft_probs": torch.full((2, 3, 6), 1 / 6)},
    "batch mismatch": lambda d: {"draft_tokens": d["draft_tokens"][:1]},
    "2-d target": lambda d: {"target_probs": d["target_probs"][0]},
    "float draft ids": lambda d: {"draft_tokens": d["draft_tokens"].float()},
    "negative target": lambda d: {"target_probs": _poked(d["target_probs"], -0.1)},
    "NaN target": lambda d: {"target_probs": _poked(d["target_probs"], math.nan)},
    "inf target": lambda d: {"target_probs": _poked(d["target_probs"], math.inf)},
    "NaN draft": lambda d: {"draft_probs": _poked(d["draft_probs"], math.nan)},
    "rows not summing to 1": lambda d: {"target_probs": d["target_probs"] * 2},
    "draft id >= V": lambda d: {"draft_tokens": _poked(d["draft_tokens"], 5)},
    "negative draft id": lambda d: {"draft_tokens": _poked(d["draft_tokens"], -1)},
    "n_r > k": lambda d: {"num_drafts": torch.tensor([4, 1])},
    "n_r < 0": lambda d: {"num_drafts": torch.tensor([-1, 1])},
    "n_r shape": lambda d: {"num_drafts": torch.tensor([1, 1, 1])},
    "logits shape": lambda d: {"target_logits": torch.zeros(2, 3, 5)},
    "logits NaN": lambda d: {"target_logits": torch.full((2, 4, 5), math.nan)},
}


@pytest.mark.parametrize("name", ["sps", "greedy", "tas"])
@pytest.mark.parametrize("label", list(BAD_INPUTS))
def test_bad_inputs_raise_the_same_error_on_every_backend(name: str, label: str) -> None:
    """Compiled kernels check values in their first pass; the error is the reference's own, and
    bad input consumes no randomness."""
    messages = set()
    for backend in BACKENDS:
        inputs = _good()
        inputs.update(BAD_INPUTS[label](inputs))
        g = torch.Generator().manual_seed(0)
        state = g.get_state()
        with pytest.raises(ValueError) as err:
            get_strategy(name, backend=backend).verify(generator=g, **inputs)
        assert torch.equal(g.get_state(), state), backend
        messages.add(str(err.value))
    assert len(messages) == 1, messages


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_logits_raise_the_reference_paths_error(backend: str) -> None:
    inputs = _good()
    logits = inputs["target_probs"].log()
    x, cfg = inputs["draft_tokens"], SamplingConfig(0.9, top_k=3)
    s = get_strategy("sps", backend=backend)
    s.verify_logits(logits, None, x, cfg, noise=noise(2))
    for bad, fragment in ((math.nan, "target_probs"), (math.inf, "target_probs")):
        with pytest.raises(ValueError, match=fragment):
            s.verify_logits(_poked(logits, bad), None, x, cfg, noise=noise(2))
    with pytest.raises(ValueError, match="target_logits contain NaN"):  # greedy: no softmax
        s.verify_logits(_poked(logits, math.nan), None, x, SamplingConfig(0.0), noise=noise(2))


def test_validation_edges() -> None:
    inputs = _good()
    s = get_strategy("sps")
    s.verify(**inputs)
    s.verify(**{**inputs, "target_probs": inputs["target_probs"] * 1.0005})  # within 1e-3
    s.verify(**{**inputs, "target_probs": inputs["target_probs"] * 2}, validate=False)
    with pytest.raises(ValueError, match="target_probs"):  # shapes are checked regardless
        s.verify(**{**inputs, "target_probs": inputs["target_probs"][:, :3]}, validate=False)
    with pytest.raises(ValueError, match="needs noise"):
        s.verify_with_noise(inputs["target_probs"], inputs["draft_probs"],
                            inputs["draft_tokens"], None)  # fmt: skip
    with pytest.raises(ValueError, match="noise seeds must be an int64 \\[2\\] tensor"):
        s.verify_with_noise(inputs["target_probs"], inputs["draft_probs"],
                            inputs["draft_tokens"], Noise.draw(None, 3))  # fmt: skip
    with pytest.raises(ValueError, match="draft_logits must be None or"):
        s.verify_logits(inputs["target_probs"].log(), None, inputs["draft_tokens"],
                        SamplingConfig(), draft_logits=torch.zeros(2, 3, 6))  # fmt: skip


# -- registry and specs -----------------------------------------------------------------------


def test_registry_metadata() -> None:
    assert available_strategies() == ["block", "cactus", "greedy", "interp", "rrs", "specinfer",
                                      "spectr", "sps", "tas", "topk"]
    assert [n for n in available_strategies() if "tree" in rule_kinds(strategy_class(n))] == [
        "greedy", "rrs", "specinfer", "spectr"]
    for name in available_strategies():
        cls = strategy_class(name)
        assert cls.name == name and isinstance(cls.LOSSLESS, bool)
        assert isinstance(cls.PARAMS, dict) and cls.__doc__.splitlines()[0].strip()
        assert get_strategy(name).params == cls.PARAMS
    assert get_strategy("tas").params == {"eps": 0.09, "alpha": 0.3, "bonus": "sample"}


def test_listing_names_does_not_import_torch() -> None:
    code = ("import sys, specbench_cli.strategies as s; s.available_strategies(); "
            "assert 'torch' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


# fmt: off
GOOD_SPECS = [
    ("sps", "sps"), ("cactus:delta=0.5,", "cactus:delta=0.5"), (" topk : k = 3 ", "topk:k=3"),
    ("interp:alpha=1", "interp:alpha=1.0"), ("cactus", "cactus:delta=1.0"),
    ("tas:bonus=argmax,eps=0.1", "tas:alpha=0.3,bonus=argmax,eps=0.1"),
]
BAD_SPECS = [
    ("", "expected 'name'"), (":delta=1", "expected 'name'"),
    ("cactus:delta", "is not key=value"), ("cactus:delta=", "is not key=value"),
    ("cactus:=1", "is not key=value"), ("cactus:delta=1,delta=2", "given twice"),
    ("cactus:delta=abc", "expects a finite float"), ("cactus:delta=nan", "expects a finite float"),
    ("topk:k=2.5", "expects a finite int"), ("spss", "did you mean 'sps'"),
    ("cactus:delt=1", "did you mean 'delta'"), ("sps:delta=1", "parameters: none"),
    ("cactus:delta=-1", "delta must be >= 0"),
]
BAD_PARAMS = [
    ("topk", {"k": 0}), ("topk", {"k": True}), ("interp", {"alpha": 1.5}),
    ("interp", {"alpha": -0.1}), ("tas", {"eps": -0.01}), ("tas", {"alpha": -1.0}),
    ("tas", {"bonus": "maybe"}), ("cactus", {"delta": math.inf}), ("greedy", {"delta": 1.0}),
    ("nope", {}),
]
# fmt: on


@pytest.mark.parametrize(("spec", "label"), GOOD_SPECS)
def test_parse_strategy_spec_good(spec: str, label: str) -> None:
    s = parse_strategy_spec(spec)
    assert s.label == label and parse_strategy_spec(s.label).params == s.params


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_parse_strategy_spec_bad(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_strategy_spec(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("name", "params"), BAD_PARAMS)
def test_get_strategy_rejects(name: str, params: dict) -> None:
    with pytest.raises(ValueError):
        get_strategy(name, **params)


def test_backend_keyword() -> None:
    for backend in ("torch", "cpu", "cuda", "auto"):
        assert get_strategy("sps", backend=backend).backend == backend
    with pytest.raises(ValueError, match="backend 'tpu' not available"):
        get_strategy("sps", backend="tpu")
