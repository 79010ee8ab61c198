"""Statistical and exact-law tests for the acceptance strategies (docs/strategies.md).

One-step tests: for fixed (q, p) pairs, N batch rows each verify one draft x ~ p (k = 1) in a
single batched call. The token emitted at position 0 must follow `output_distribution(q, p)`
(support, Bretagnolle-Huber-Carol TV bound, chi-square, both at eta = 1e-6), the acceptance rate
must match `acceptance_probability` (Hoeffding bound), and after an acceptance the bonus at
position 1 must follow the bonus row of q. Seeds are fixed, so every run is deterministic; the
small eta keeps a correct implementation from failing on an unlucky seed.

Cactus: invariants of the boosted target h^(n), the O(V log V) law against an independent
O(V^2) double sum, monotone acceptance in delta, and delta = 0 equal to SpS token for token.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from specbench_cli.strategies import Noise, get_strategy, parse_strategy_spec
from specbench_cli.strategies.cactus import boost

ETA = 1e-6
ROWS = {2: 500_000, 8: 250_000, 32: 100_000}  # N per (q, p) pair, sized for a 2-core CPU
VARIANTS = [
    "greedy",
    "sps",
    "block",
    "tas",
    "tas:bonus=argmax",
    "cactus:delta=0",
    "cactus:delta=0.1",
    "cactus:delta=1",
    "topk",
    "topk:k=1",
    "interp:alpha=0",
    "interp",
]
EXACT_ONLY = ["tas:eps=0,alpha=0", "interp:alpha=1", "topk:k=100"]  # edge values, exact laws


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Large elementwise batches on a shared 2-core box: OpenMP contention costs more than it
    gains, so run this module single-threaded and restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- inputs ---------------------------------------------------------------------------------


def _dist(values: np.ndarray) -> torch.Tensor:
    """Normalize in float64, then round to the float32 the strategies work in."""
    values = np.asarray(values, dtype=np.float64)
    return torch.from_numpy(values / values.sum()).float()


def make_cases(V: int) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
    """(name, q, p) pairs of the one-step law tests; p None: a deterministic draft of
    `draft_id(q)`."""
    rng = np.random.default_rng(1000 + V)
    half = V // 2
    cases = []
    for alpha in (0.1, 1.0, 3.0):
        cases.append((f"dirichlet{alpha}", _dist(rng.dirichlet([alpha] * V)),
                      _dist(rng.dirichlet([alpha] * V))))  # fmt: skip
    same = _dist(rng.dirichlet([1.0] * V))
    cases.append(("p=q", same, same.clone()))
    cases.append(("q one-hot", _dist(np.eye(V)[V - 1]), _dist(rng.dirichlet([1.0] * V))))
    cases.append(("p one-hot", _dist(rng.dirichlet([1.0] * V)), None))
    p_zeros = rng.dirichlet([1.0] * V) * (np.arange(V) % 2 == 0)
    cases.append(("zeros in p", _dist(rng.dirichlet([1.0] * V)), _dist(p_zeros)))
    q_zeros = rng.dirichlet([1.0] * V) * (np.arange(V) < max(1, half))
    cases.append(("zeros in q", _dist(q_zeros), _dist(rng.dirichlet([1.0] * V))))
    low = np.arange(V) < max(1, half)
    cases.append(("disjoint", _dist(rng.dirichlet([1.0] * V) * low),
                  _dist(rng.dirichlet([1.0] * V) * ~low)))  # fmt: skip
    ties = np.where(np.arange(V) < max(1, half), 1.0, 1.0 - 1e-6)  # exact and near ties
    ties[-1] = 0.5
    cases.append(("near ties", _dist(ties), _dist(rng.dirichlet([1.0] * V))))
    return cases


def draft_id(q: torch.Tensor) -> int:
    """Deterministic drafts propose the target's second choice, so both paths get exercised."""
    return int(q.argsort(descending=True)[min(1, q.numel() - 1)])


def one_hot(V: int, index: int) -> torch.Tensor:
    return torch.zeros(V).index_fill_(0, torch.tensor(index), 1.0)


def bonus_row(V: int) -> torch.Tensor:
    return _dist(np.random.default_rng(7 * V).dirichlet([1.0] * V))


def bonus_law(spec: str, r: torch.Tensor) -> torch.Tensor:
    """Law of the bonus token: q itself, except for argmax bonuses."""
    strategy = parse_strategy_spec(spec)
    if strategy.name == "greedy" or strategy.params.get("bonus") == "argmax":
        return one_hot(r.numel(), int(r.argmax())).double()
    return r.double()


# -- statistics -------------------------------------------------------------------------------


def tv_bound(V: int, N: int) -> float:
    """Bretagnolle-Huber-Carol: TV(empirical, law) <= this with probability >= 1 - ETA."""
    return math.sqrt((V * math.log(2) + math.log(1 / ETA)) / (2 * N))


def chi_square_pvalue(counts: np.ndarray, law: np.ndarray) -> float:
    """Pearson chi-square after merging bins whose expected count is below 5."""
    N = counts.sum()
    expected = law / law.sum() * N
    keep = expected >= 5
    e, o = list(expected[keep]), list(counts[keep].astype(float))
    rest_e, rest_o = expected[~keep].sum(), counts[~keep].sum()
    if rest_e > 0:
        if rest_e >= 5 or not e:
            e.append(rest_e)
            o.append(rest_o)
        else:
            i = int(np.argmin(e))
            e[i] += rest_e
            o[i] += rest_o
    if len(e) < 2:
        return 1.0  # one bin carries no information; the support check covers this law
    statistic = sum((oi - ei) ** 2 / ei for oi, ei in zip(o, e, strict=True))
    return float(stats.chi2.sf(statistic, len(e) - 1))


def assert_follows(counts: torch.Tensor, law: torch.Tensor, what: str) -> None:
    counts, law = counts.numpy(), law.double().numpy()
    N, V = int(counts.sum()), len(law)
    outside = np.flatnonzero((law <= 1e-12) & (counts > 0))
    assert outside.size == 0, f"{what}: emitted ids {outside.tolist()} that have probability 0"
    tv = 0.5 * np.abs(counts / N - law).sum()
    assert tv <= tv_bound(V, N), f"{what}: TV {tv:.5f} > bound {tv_bound(V, N):.5f} (N={N})"
    p_value = chi_square_pvalue(counts, law)
    assert p_value > ETA, f"{what}: chi-square p-value {p_value:.3g} (N={N})"


def run_one_step(spec, q, p, r, N, seed):
    """Verify N rows of the pair at k = 1; returns first-token counts, accepts, bonus counts."""
    V = q.numel()
    g = torch.Generator().manual_seed(seed)
    draft_law = one_hot(V, draft_id(q)) if p is None else p
    x = torch.multinomial(draft_law, N, replacement=True, generator=g)[:, None]  # [N, 1]
    target = torch.stack([q, r])[None].expand(N, 2, V).contiguous()  # [N, 2, V]
    draft = None if p is None else p[None, None].expand(N, 1, V).contiguous()  # [N, 1, V]
    result = parse_strategy_spec(spec).verify(target, draft, x, g)
    accepted = result.num_accepted == 1
    assert bool((result.tokens[~accepted, 1] == -1).all())
    first = torch.bincount(result.tokens[:, 0], minlength=V)
    bonus = torch.bincount(result.tokens[accepted, 1], minlength=V)
    return first, int(accepted.sum()), bonus


def _one_step_checks(spec: str, V: int) -> None:
    strategy = parse_strategy_spec(spec)
    N, r = ROWS[V], bonus_row(V)
    for i, (case, q, p) in enumerate(make_cases(V)):
        what = f"{spec} V={V} {case}"
        p_law = one_hot(V, draft_id(q)) if p is None else p
        first, accepts, bonus = run_one_step(spec, q, p, r, N, seed=V * 100 + i)
        assert_follows(first, strategy.output_distribution(q, p_law), what)
        alpha = strategy.acceptance_probability(q, p_law)
        slack = math.sqrt(math.log(2 / ETA) / (2 * N))
        assert abs(accepts / N - alpha) <= slack, f"{what}: acceptance {accepts / N} vs {alpha}"
        if accepts:
            assert_follows(bonus, bonus_law(spec, r), what + " (bonus row)")


@pytest.mark.parametrize("V", sorted(ROWS))
@pytest.mark.parametrize("spec", VARIANTS)
def test_one_step_law(spec: str, V: int) -> None:
    _one_step_checks(spec, V)


@pytest.mark.parametrize("spec", VARIANTS + EXACT_ONLY)
def test_output_distribution_is_a_law(spec: str) -> None:
    strategy = parse_strategy_spec(spec)
    for V in sorted(ROWS):
        for case, q, p in make_cases(V):
            p_law = one_hot(V, draft_id(q)) if p is None else p
            pi = strategy.output_distribution(q, p_law)
            assert pi.dtype == torch.float64 and pi.shape == (V,)
            assert float(pi.min()) >= -1e-15, f"{spec} V={V} {case}"
            assert abs(float(pi.sum()) - 1.0) < 1e-6, f"{spec} V={V} {case}"
            assert 0.0 <= strategy.acceptance_probability(q, p_law) <= 1.0 + 1e-6


@pytest.mark.parametrize("spec", ["sps", "block", "cactus:delta=0", "interp:alpha=0"])
def test_lossless_law_equals_target(spec: str) -> None:
    strategy = parse_strategy_spec(spec)
    assert strategy.lossless
    for V in sorted(ROWS):
        for case, q, p in make_cases(V):
            p_law = one_hot(V, draft_id(q)) if p is None else p
            pi = strategy.output_distribution(q, p_law)
            # float32 inputs sum to 1 only within ~1e-7, which moves the exact law that much
            torch.testing.assert_close(pi, q.double(), rtol=0, atol=1e-6, msg=f"{spec} {case}")


@pytest.mark.parametrize("spec", ["cactus:delta=0.1", "interp", "topk", "tas", "greedy"])
def test_lossy_law_differs_somewhere(spec: str) -> None:
    strategy = parse_strategy_spec(spec)
    assert not strategy.lossless or strategy.name == "greedy"
    gaps = [
        float((strategy.output_distribution(q, p) - q.double()).abs().sum())
        for _, q, p in make_cases(32)
        if p is not None
    ]
    assert max(gaps) > 1e-3


def test_interp_and_cactus_limits() -> None:
    q, p = torch.tensor([0.7, 0.3, 0.0]), torch.tensor([0.1, 0.3, 0.6])
    full = get_strategy("interp", alpha=1.0)
    torch.testing.assert_close(full.output_distribution(q, p), p.double())
    assert full.acceptance_probability(q, p) == pytest.approx(1.0)
    h, s = boost(torch.tensor([0.25, 1.0, 0.0]), 0.5)  # 0.25 + sqrt(0.1875); one-hot; zero
    torch.testing.assert_close(h, torch.tensor([0.25 + math.sqrt(0.1875), 1.0, 0.0]))
    torch.testing.assert_close(s, torch.tensor([(0.75 - math.sqrt(0.1875)) / 0.75, 0.0, 1.0]))
    assert get_strategy("cactus", delta=0.0).lossless and not get_strategy("cactus").lossless
    assert get_strategy("interp", alpha=0.0).lossless and not get_strategy("interp").lossless


# -- Cactus ---------------------------------------------------------------------------------


def cactus_law_brute_force(q: np.ndarray, p: np.ndarray, delta: float) -> np.ndarray:
    """O(V^2) double sum of 1.4: pi = sum_n p_n [a_n 1{x = n} + (1 - a_n) r_n], written
    independently of the module (empty residuals fall back to q, as the driver does)."""
    V = len(q)
    h_n = np.clip(q + np.sqrt(np.maximum(2 * delta * q * (1 - q), 0)), 0, 1)
    pi = np.zeros(V)
    for n in range(V):
        if p[n] == 0:
            continue
        s_n = (1 - h_n[n]) / (1 - q[n]) if 1 - q[n] > 1e-10 else 0.0
        h = s_n * q
        h[n] = h_n[n]
        a = min(1.0, h_n[n] / p[n])
        pi[n] += p[n] * a
        w = np.maximum(h - p, 0)
        pi += p[n] * (1 - a) * (w / w.sum() if w.sum() > 0 else q)
    return pi


def _random_pairs(count: int, seed: int, max_V: int = 64):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        V = int(rng.integers(2, max_V + 1))
        pair = []
        for _side in range(2):
            v = rng.dirichlet([rng.choice([0.1, 1.0, 3.0])] * V)
            if rng.random() < 0.4:
                v = v * (rng.random(V) < 0.6)
            if v.sum() == 0:
                v[rng.integers(V)] = 1.0
            pair.append(_dist(v).double().numpy())
        yield pair[0], pair[1], float(rng.choice([0.0, 0.01, 0.1, 1.0, 5.0]))


def test_cactus_law_matches_brute_force() -> None:
    for q, p, delta in _random_pairs(400, seed=3):
        cactus = get_strategy("cactus", delta=delta)
        fast = cactus.output_distribution(torch.tensor(q), torch.tensor(p))
        slow = cactus_law_brute_force(q, p, delta)
        np.testing.assert_allclose(fast.numpy(), slow, rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("delta", [0.0, 0.01, 0.1, 1.0, 5.0])
def test_cactus_boost_invariants(delta: float, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(11)
    targets = [rng.dirichlet([a] * V) for a in (0.1, 1.0) for V in (2, 8, 64)]
    targets += [np.eye(8)[3], np.array([0.5, 0.5, 0.0, 0.0])]
    for target in targets:
        q = _dist(target).to(dtype)
        h_n, s_n = boost(q, delta)  # every token drafted in turn
        h = s_n[:, None] * q[None, :]  # h[n] = h^(n)
        h.diagonal().copy_(h_n)
        h, q64 = h.double(), q.double()
        assert bool((h >= 0).all())
        torch.testing.assert_close(h.sum(1), torch.ones(len(q), dtype=torch.float64),
                                   rtol=0, atol=1e-6)  # fmt: skip
        assert bool((h_n >= q).all())
        kl = torch.where(h > 0, h * (h / q64).log(), 0.0).sum(1)
        assert float(kl.max()) <= math.log(1 + 2 * delta) + 1e-6


def test_cactus_acceptance_nondecreasing_in_delta() -> None:
    deltas = [0.0, 0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 10.0]
    for q, p, _ in _random_pairs(100, seed=5):
        rates = [get_strategy("cactus", delta=d).acceptance_probability(q, p) for d in deltas]
        assert all(b >= a - 1e-12 for a, b in zip(rates, rates[1:], strict=False)), rates
    q, p = _dist([0.35, 0.35, 0.3]), _dist([0.9, 0.05, 0.05])  # strictly increases here
    assert get_strategy("cactus", delta=1.0).acceptance_probability(q, p) > (
        get_strategy("sps").acceptance_probability(q, p) + 0.1
    )


@pytest.mark.parametrize("deterministic", [False, True])
def test_delta_zero_and_alpha_zero_are_sps_token_for_token(deterministic: bool) -> None:
    B, k, V = 20_000, 4, 16
    g = torch.Generator().manual_seed(21)
    target = torch.softmax(torch.randn(B, k + 1, V, generator=g) * 2, -1)
    draft = torch.softmax(torch.randn(B, k, V, generator=g) * 2, -1)
    x = torch.multinomial(draft.view(-1, V), 1, generator=g).view(B, k)
    n_r = torch.randint(0, k + 1, (B,), generator=g)
    noise = Noise.draw(g, B)
    draft_probs = None if deterministic else draft
    reference = get_strategy("sps").verify_with_noise(target, draft_probs, x, noise, num_drafts=n_r)
    assert 0 < int(reference.num_accepted.sum()) < int(n_r.sum())  # both paths exercised
    for spec in ("cactus:delta=0", "interp:alpha=0"):
        other = parse_strategy_spec(spec).verify_with_noise(
            target, draft_probs, x, noise, num_drafts=n_r
        )
        assert torch.equal(other.tokens, reference.tokens), spec
        assert torch.equal(other.num_accepted, reference.num_accepted), spec
