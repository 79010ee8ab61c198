"""Block verification (docs/strategies.md): lossless for the joint law of the emitted sequence,
and never fewer accepted tokens than SpS on the same drafts.

A "world" gives every prefix (up to 3 tokens) its own target law q and draft law p. Exact tests
enumerate every drafted block with an independent, literal transcription of the paper's
Algorithm 2 (and show that the SpS residual in its place would break the law, so the check can
fail). Monte Carlo tests run `Block.verify` on a million blocks drawn from the world, complete each
step to m tokens with plain target samples, and compare the law of the first m tokens with the
target's (chi-square and TV bound, eta = 1e-6, fixed seeds).

Run: .venv/bin/python -m pytest tests/test_block.py -q
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from test_strategies_stats import chi_square_pvalue, tv_bound
from test_strategies_tables import random_inputs

from specbench_cli.strategies import Noise, get_strategy

pytestmark = pytest.mark.usefixtures("one_thread")
ETA = 1e-6
K = 2  # drafted block length in the world tests (positions 1 and 2 both matter)


# -- worlds ------------------------------------------------------------------------------------


def make_world(V: int, seed: int, kind: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`(Q, P)`: `Q[L]` `[V^L, V]` target rows of every prefix of length L (L = 0..K+1), `P[L]`
    the draft rows (L = 0..K-1). kinds: dirichlet, sparse (zeros in p where q > 0 and the
    reverse), onehot_q (some target rows one-hot)."""
    rng = np.random.default_rng(seed)
    Q, P = [], []
    for L in range(K + 2):
        q = rng.dirichlet([0.7] * V, size=V**L)
        p = rng.dirichlet([0.7] * V, size=V**L)
        if kind == "sparse":
            p *= rng.random(p.shape) < 0.6
            q *= rng.random(q.shape) < 0.7
            p[p.sum(1) == 0, 0] = 1.0
            q[q.sum(1) == 0, -1] = 1.0
        if kind == "onehot_q":
            hot = rng.random(V**L) < 0.5
            q[hot] = np.eye(V)[rng.integers(V, size=int(hot.sum()))]
        Q.append(_f32(q))
        P.append(_f32(p))
    return Q, P[:K]


def _f32(rows: np.ndarray) -> np.ndarray:
    """Round to float32 (as the strategies see the rows), then normalize exactly in float64."""
    rows = torch.from_numpy(rows / rows.sum(1, keepdims=True)).float().double().numpy()
    return rows / rows.sum(1, keepdims=True)


def prefix_id(tokens: tuple[int, ...], V: int) -> int:
    index = 0
    for t in tokens:
        index = index * V + t
    return index


def target_law(Q: list[np.ndarray], m: int, V: int) -> np.ndarray:
    """P(y_1..y_m) = prod_t q(y_t | y_<t), flattened in base V."""
    law = np.ones(1)
    for L in range(m):
        law = (law[:, None] * Q[L]).reshape(-1)
    return law


# -- the paper's algorithm, transcribed literally (independent of the module) -----------------


def block_step_law(Q, P, V, residual="block"):
    """{emitted tuple: probability} and E[accepted] of one step of Algorithm 2 from the empty
    prefix (eta_i <= h_i; tau = the largest such i). residual="sps" is the broken variant."""
    out, accepted = {}, 0.0
    for x in itertools.product(range(V), repeat=K):
        q = [Q[i][prefix_id(x[:i], V)] for i in range(K + 1)]  # target after x_1..x_i
        p = [P[i][prefix_id(x[:i], V)] for i in range(K)]
        px = math.prod(p[i][x[i]] for i in range(K))
        if px == 0:
            continue
        ratio = [1.0]
        for i in range(K):
            ratio.append(min(1.0, ratio[-1] * q[i][x[i]] / p[i][x[i]]))
        h = []
        for i in range(1, K):
            z = np.maximum(ratio[i] * q[i] - p[i], 0).sum()
            h.append(z / (z + 1 - ratio[i]) if z + 1 - ratio[i] > 0 else 0.0)
        h.append(ratio[K])
        for tau in range(K + 1):
            later = math.prod(1 - h[j - 1] for j in range(tau + 1, K + 1))
            p_tau = (h[tau - 1] if tau else 1.0) * later
            if p_tau == 0:
                continue
            if tau == K:
                w = q[K]
            else:
                scale = ratio[tau] if residual == "block" else 1.0
                w = np.maximum(scale * q[tau] - p[tau], 0)
                w = w if w.sum() > 0 else q[tau]
            for y in range(V):
                key = x[:tau] + (y,)
                out[key] = out.get(key, 0.0) + px * p_tau * w[y] / w.sum()
            accepted += px * p_tau * tau
    return out, accepted


def sps_expected_accepted(Q, P, V) -> float:
    total = 0.0
    for x in itertools.product(range(V), repeat=K):
        px = math.prod(P[i][prefix_id(x[:i], V)][x[i]] for i in range(K))
        if px == 0:
            continue
        alive = 1.0
        for i in range(K):
            q_x, p_x = Q[i][prefix_id(x[:i], V)][x[i]], P[i][prefix_id(x[:i], V)][x[i]]
            alive *= min(1.0, q_x / p_x)
            total += px * alive
    return total


def completed_law(step: dict, Q, V: int, m: int) -> np.ndarray:
    """Law of the first m tokens when a step's output is completed with target samples."""
    law = np.zeros(V**m)
    for emitted, prob in step.items():
        head = emitted[:m]
        tail = np.ones(1)
        for L in range(len(head), m):
            tail = (tail[:, None] * Q[L][prefix_id(head, V) * V ** (L - len(head)) + np.arange(
                V ** (L - len(head)))]).reshape(-1)
        start = prefix_id(head, V) * V ** (m - len(head))
        law[start : start + V ** (m - len(head))] += prob * tail
    return law


@pytest.mark.parametrize("kind", ["dirichlet", "sparse", "onehot_q"])
def test_algorithm_is_lossless_and_beats_sps_exactly(kind: str) -> None:
    for seed in range(40):
        V = 3 + seed % 2
        Q, P = make_world(V, seed, kind)
        step, block_accepted = block_step_law(Q, P, V)
        for m in (2, 3):
            np.testing.assert_allclose(completed_law(step, Q, V, m), target_law(Q, m, V),
                                       rtol=0, atol=1e-12)  # fmt: skip
        assert block_accepted >= sps_expected_accepted(Q, P, V) - 1e-12


def test_the_exact_check_can_fail() -> None:
    """With the SpS residual at every tau the law breaks: the exact test would notice."""
    Q, P = make_world(3, 0, "dirichlet")
    step, _ = block_step_law(Q, P, 3, residual="sps")
    assert np.abs(completed_law(step, Q, 3, 2) - target_law(Q, 2, 3)).max() > 1e-3


def test_paper_example() -> None:
    """Context-free target (a 1/3, b 2/3) and draft (a 2/3, b 1/3), two drafts: 11/9 vs 10/9
    accepted tokens per step (the paper's motivating example)."""
    q, p = np.array([1 / 3, 2 / 3]), np.array([2 / 3, 1 / 3])
    Q = [np.tile(q, (2**L, 1)) for L in range(K + 2)]
    P = [np.tile(p, (2**L, 1)) for L in range(K)]
    assert block_step_law(Q, P, 2)[1] == pytest.approx(11 / 9)
    assert sps_expected_accepted(Q, P, 2) == pytest.approx(10 / 9)


# -- the implementation, Monte Carlo over the world --------------------------------------------


def draw_blocks(Q, P, V: int, N: int, g: torch.Generator, deterministic: bool):
    """N blocks drawn from the world: (q [N, K+1, V], p [N, K, V] or None, x [N, K])."""
    Qt = [torch.from_numpy(t).float() for t in Q]
    Pt = [torch.from_numpy(t).float() for t in P]
    x = torch.zeros(N, K, dtype=torch.long)
    ids = torch.zeros(N, dtype=torch.long)
    q_rows, p_rows = [], []
    for i in range(K + 1):
        q_rows.append(Qt[i][ids])
        if i == K:
            break
        law = Pt[i][ids]
        if deterministic:  # the draft's argmax, reported as one-hot
            x[:, i] = law.argmax(1)
        else:
            x[:, i] = torch.multinomial(law, 1, generator=g).squeeze(1)
            p_rows.append(law)
        ids = ids * V + x[:, i]
    return torch.stack(q_rows, 1), None if deterministic else torch.stack(p_rows, 1), x


def complete(tokens: torch.Tensor, Q, V: int, m: int, g: torch.Generator) -> torch.Tensor:
    """First m tokens of each row, the missing ones drawn from the target: `[N]` base-V ids."""
    Qt = [torch.from_numpy(t).float() for t in Q]
    N = tokens.shape[0]
    out = torch.zeros(N, dtype=torch.long)
    for L in range(m):
        have = tokens[:, L] >= 0 if L < tokens.shape[1] else torch.zeros(N, dtype=torch.bool)
        draw = torch.multinomial(Qt[L][out], 1, generator=g).squeeze(1)
        nxt = torch.where(have, tokens[:, min(L, tokens.shape[1] - 1)], draw)
        out = out * V + nxt
    return out


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("kind", ["dirichlet", "sparse", "onehot_q"])
def test_block_verify_samples_the_target_law(kind: str, deterministic: bool) -> None:
    V, N = 3, 600_000
    Q, P = make_world(V, 7, kind)
    g = torch.Generator().manual_seed(11)
    q, p, x = draw_blocks(Q, P, V, N, g, deterministic)
    if deterministic:  # the world's drafts are the draft argmaxes: P is one-hot on them
        P = [np.eye(V)[row.argmax(1)] for row in P]
    r = get_strategy("block").verify(q, p, x, g)
    for m in (2, 3):
        counts = torch.bincount(complete(r.tokens, Q, V, m, g), minlength=V**m).numpy()
        law = target_law(Q, m, V)
        what = f"{kind} det={deterministic} m={m}"
        assert not (counts[law == 0] > 0).any(), what
        tv = 0.5 * np.abs(counts / N - law).sum()
        assert tv <= tv_bound(V**m, N), f"{what}: TV {tv:.5f}"
        assert chi_square_pvalue(counts, law) > ETA, what
    # the implementation's mean accepted length matches the literal algorithm's expectation
    _, exact = block_step_law(Q, P, V)
    slack = K * math.sqrt(math.log(2 / ETA) / (2 * N))  # Hoeffding, accepted in [0, K]
    assert abs(float(r.num_accepted.double().mean()) - exact) <= slack


@pytest.mark.parametrize("deterministic", [False, True])
def test_accepts_at_least_sps_on_the_same_drafts(deterministic: bool) -> None:
    B, k, V = 200_000, 4, 8
    q, p, x, _, g = random_inputs(B, k, V, seed=3, zeros=False)
    draft = None if deterministic else p
    noise = Noise.draw(g, B)
    block = get_strategy("block").verify_with_noise(q, draft, x, noise).num_accepted.double()
    sps = get_strategy("sps").verify_with_noise(q, draft, x, noise).num_accepted.double()
    diff = block - sps
    margin = 6 * float(diff.std()) / math.sqrt(B)
    if deterministic:  # a one-hot draft leaves nothing to gain: equal in expectation
        assert abs(float(diff.mean())) < margin
    else:  # strictly more here, far beyond the noise
        assert float(diff.mean()) > margin


def test_one_hot_targets_give_greedy_and_one_draft_gives_sps() -> None:
    B, k, V = 20_000, 4, 8
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(B, k + 1, V, generator=g)
    q_hot = torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    x = torch.where(torch.rand(B, k, generator=g) < 0.7, logits[:, :k].argmax(-1),
                    torch.randint(0, V, (B, k), generator=g))  # fmt: skip
    noise = Noise.draw(g, B)
    block = get_strategy("block").verify_with_noise(q_hot, None, x, noise)
    greedy = get_strategy("greedy").verify_with_noise(q_hot, None, x, None)
    assert torch.equal(block.tokens, greedy.tokens)
    q = torch.softmax(logits, -1)[:, :2]
    p = torch.softmax(torch.randn(B, 1, V, generator=g), -1)
    x1 = torch.multinomial(p[:, 0], 1, generator=g)
    one = Noise.draw(g, B)
    a = get_strategy("block").verify_with_noise(q, p, x1, one)
    b = get_strategy("sps").verify_with_noise(q, p, x1, one)
    assert torch.equal(a.tokens, b.tokens)


def test_ragged_rows_are_shorter_blocks() -> None:
    """A row with n_r real drafts is verified exactly as a block of n_r drafts."""
    B, k, V = 6_000, 4, 6
    q, p, x, n_r, g = random_inputs(B, k, V, seed=9)
    noise = Noise.draw(g, B)
    ragged = get_strategy("block").verify_with_noise(q, p, x, noise, num_drafts=n_r)
    for n in range(k + 1):
        rows = n_r == n
        short = get_strategy("block").verify_with_noise(
            q[rows, : n + 1].contiguous(), p[rows, :n].contiguous(), x[rows, :n].contiguous(),
            Noise(noise.seeds[rows], noise.counters[rows]))  # a row's noise is its own
        assert torch.equal(ragged.tokens[rows, : n + 1], short.tokens)
        assert bool((ragged.tokens[rows, n + 1 :] == -1).all())
