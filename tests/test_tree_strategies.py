"""Tree rules (docs/trees.md): specinfer, rrs, spectr and the tree form of greedy.

Statistical tests verify N same-shaped trees in one batched call, siblings drawn the way each
rule requires (i.i.d., without replacement by an exponential race, or deterministic), and compare
the emitted law with the exact one: depth-1 trees with 2-4 siblings against `q` (one token), and
depth-2 trees against the target's joint law of two tokens (a step that emits one token is
completed with a plain target sample). Support, TV bound and chi-square at eta = 1e-6, fixed
seeds. Closed-form acceptance probabilities are checked against independent enumeration and
against the optimal multi-draft acceptance (no lossless verifier can exceed it).

Run: .venv/bin/python -m pytest tests/test_tree_strategies.py -q
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest
import torch
from test_strategies_stats import _dist, assert_follows
from test_strategies_tables import random_inputs

from specbench_cli.strategies import DraftTree, Noise, get_strategy

pytestmark = pytest.mark.usefixtures("one_thread")
ETA = 1e-6
RULES = ["specinfer", "rrs", "spectr", "greedy"]


# -- drawing siblings ---------------------------------------------------------------------------


def draw_siblings(rule: str, law: torch.Tensor, count: int, g: torch.Generator,
                  deterministic: bool) -> torch.Tensor:  # fmt: skip
    """`[N, count]` sibling tokens for rows of `law` `[N, V]`, drawn as `rule` requires;
    deterministic: the `count` most likely tokens (spectr: the most likely one, repeated)."""
    if deterministic:
        top = law.argsort(dim=-1, descending=True, stable=True)
        return top[:, :1].expand(-1, count) if rule == "spectr" else top[:, :count]
    if rule == "rrs":  # sequential sampling without replacement = order of an exponential race
        race = torch.empty_like(law).exponential_(generator=g) / law
        return race.argsort(dim=-1, stable=True)[:, :count]
    return torch.multinomial(law, count, replacement=True, generator=g)


def depth1_cases(V: int) -> list[tuple[str, torch.Tensor, torch.Tensor, bool]]:
    """(name, q, p, deterministic drafts)."""
    rng = np.random.default_rng(100 + V)
    half = np.arange(V) < V // 2
    d = lambda a=1.0: _dist(rng.dirichlet([a] * V))  # noqa: E731
    same = d()
    return [
        ("dirichlet0.3", d(0.3), d(0.3), False),
        ("dirichlet1", d(), d(), False),
        ("dirichlet3", d(3.0), d(3.0), False),
        ("p=q", same, same.clone(), False),
        ("q one-hot", _dist(np.eye(V)[V - 1]), d(), False),
        ("p=0 where q>0", d(), _dist(rng.dirichlet([1.0] * V) * half), False),
        ("q=0 where p>0", _dist(rng.dirichlet([1.0] * V) * half), d(), False),
        ("disjoint", _dist(rng.dirichlet([1.0] * V) * half),
         _dist(rng.dirichlet([1.0] * V) * ~half), False),
        ("deterministic", d(), d(), True),
    ]


def star(K: int) -> torch.Tensor:
    return torch.full((K,), -1, dtype=torch.long)


def _first_token_counts(rule: str, q, p, K, N, det, seed):
    V = q.numel()
    g = torch.Generator().manual_seed(seed)
    tokens = draw_siblings(rule, p[None].expand(N, V), K, g, det)
    bonus = _dist(np.random.default_rng(seed).dirichlet([1.0] * V))
    target = torch.cat([q[None], bonus[None].expand(K, V)])[None].expand(N, K + 1, V)
    probs = None if det else p[None, None].expand(N, K, V)
    r = get_strategy(rule).verify_tree(target, DraftTree(tokens, star(K), probs), g)
    accepted = r.num_accepted == 1
    assert bool((r.path[accepted, 0] >= 0).all()) and bool((r.path[~accepted, 0] == -1).all())
    kept = tokens[accepted].gather(1, r.path[accepted, :1])[:, 0]
    assert torch.equal(r.tokens[accepted, 0], kept)
    first = torch.bincount(r.tokens[:, 0], minlength=V)
    return first, accepted, torch.bincount(r.tokens[accepted, 1], minlength=V), bonus


@pytest.mark.parametrize("V,K", [(8, 2), (8, 3), (8, 4), (16, 4)])
@pytest.mark.parametrize("rule", RULES)
def test_depth1_law(rule: str, V: int, K: int) -> None:
    N = 200_000
    s = get_strategy(rule)
    for i, (case, q, p, det) in enumerate(depth1_cases(V)):
        what = f"{rule} V={V} K={K} {case}"
        first, accepted, bonus, bonus_row = _first_token_counts(rule, q, p, K, N, det, 7 * i + K)
        assert_follows(first, s.output_distribution(q, p, K), what)
        if not det and (rule != "rrs" or V <= 8):  # rrs enumerates V^K tuples
            alpha = s.acceptance_probability(q, p, K)
            slack = math.sqrt(math.log(2 / ETA) / (2 * N))
            assert abs(float(accepted.double().mean()) - alpha) <= slack, what
        if int(accepted.sum()):
            expected = bonus_row if rule != "greedy" else torch.eye(V)[int(bonus_row.argmax())]
            assert_follows(bonus, expected, what + " (bonus)")


# -- depth 2: the joint law of two tokens ----------------------------------------------------------


SHAPES = {"3x2": [-1, -1, -1, 0, 0, 1, 1, 2, 2], "2x3": [-1, -1, 0, 0, 0, 1, 1, 1],
          "irregular": [-1, -1, -1, 0, 0, 1]}  # fmt: skip


def world(V: int, seed: int, kind: str):
    """Root target/draft rows, one target/draft row per depth-1 token, target rows per pair."""
    rng = np.random.default_rng(seed)

    def rows(n: int, sparse: bool = False, hot: bool = False) -> torch.Tensor:
        r = rng.dirichlet([0.8] * V, size=n)
        if sparse:
            r *= rng.random(r.shape) < 0.6
            r[r.sum(1) == 0, 0] = 1.0
        if hot:
            pick = rng.random(n) < 0.5
            r[pick] = np.eye(V)[rng.integers(V, size=int(pick.sum()))]
        return torch.stack([_dist(x) for x in r])

    sparse, hot = kind == "sparse", kind == "onehot_q"
    q0, q1, q2 = rows(1, sparse, hot)[0], rows(V, sparse, hot), rows(V * V)
    p0, p1 = rows(1, sparse)[0], rows(V, sparse)
    return q0, q1, q2, p0, p1


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", ["dirichlet", "sparse", "onehot_q", "deterministic"])
@pytest.mark.parametrize("rule", RULES)
def test_depth2_joint_law(rule: str, kind: str, shape: str) -> None:
    V, N = 4, 200_000
    parents = torch.tensor(SHAPES[shape])
    det = kind == "deterministic"
    if rule == "rrs" and not det and kind == "sparse":
        kind = "dirichlet"  # without replacement needs as many tokens with mass as siblings
    q0, q1, q2, p0, p1 = world(V, zlib.crc32(f"{kind}{shape}".encode()) % 1000, kind)
    g = torch.Generator().manual_seed(len(rule) + 10 * len(kind))
    tokens, probs = _draw_tree(rule, parents, p0, p1, N, g, det)
    target = [q0[None].expand(N, V)]
    for i, parent in enumerate(parents.tolist()):
        if parent < 0:
            target.append(q1[tokens[:, i]])
        else:
            target.append(q2[tokens[:, parent] * V + tokens[:, i]])
    target = torch.stack(target, 1)
    r = get_strategy(rule).verify_tree(target, DraftTree(tokens, parents, probs), g)
    y1 = r.tokens[:, 0]
    # a step that emitted one token is completed by the decoding it stands for
    if rule == "greedy":
        plain = q1[y1].argmax(1)
    else:
        plain = torch.multinomial(q1[y1], 1, generator=g)[:, 0]
    y2 = torch.where(r.num_accepted >= 1, r.tokens[:, 1], plain)
    counts = torch.bincount(y1 * V + y2, minlength=V * V)
    if rule == "greedy":
        a = int(q0.argmax())
        law = torch.zeros(V * V, dtype=torch.float64)
        law[a * V + int(q1[a].argmax())] = 1.0
    else:
        law = (q0.double()[:, None] * q1.double()).reshape(-1)
    assert_follows(counts, law, f"{rule} {kind} {shape}")


def _draw_tree(rule, parents, p0, p1, N, g, det):
    """Tokens `[N, n]` and draft rows `[N, n, V]` (None if deterministic) of trees whose
    depth-1 siblings come from p0 and whose depth-2 siblings under token c come from p1[c]."""
    n, V = len(parents), p0.numel()
    tokens = torch.zeros(N, n, dtype=torch.long)
    probs = torch.zeros(N, n, V)
    groups: dict[int, list[int]] = {}
    for i, parent in enumerate(parents.tolist()):
        groups.setdefault(parent, []).append(i)
    for parent, kids in groups.items():  # parents come first: dict order is insertion order
        law = p0[None].expand(N, V) if parent < 0 else p1[tokens[:, parent]]
        tokens[:, kids] = draw_siblings(rule, law, len(kids), g, det)
        probs[:, kids] = law[:, None]
    return tokens, None if det else probs


# -- closed forms ----------------------------------------------------------------------------------


def brute_acceptance(q: np.ndarray, p: np.ndarray, K: int, scheme: str, rule: str) -> float:
    """P(some sibling accepted) by enumerating the ordered sibling tuples (independent code)."""
    V = len(q)
    total = 0.0
    for tup in itertools.product(range(V), repeat=K):
        prob, q_i, excluded, rejected = 1.0, q.copy(), [], 1.0
        rho = _rho(q, p, K) if rule == "spectr" else 1.0
        for c in tup:
            law = p.copy()
            if scheme == "without_replacement":
                law[excluded] = 0.0
                if law.sum() <= 0:
                    prob = 0.0
                    break
                law /= law.sum()
            prob *= law[c]
            if prob == 0:
                break
            if rule == "spectr":
                rejected *= 1 - min(1.0, q[c] / (rho * p[c]))
            else:
                rejected *= 1 - min(1.0, q_i[c] / law[c])
                w = np.maximum(q_i - law, 0)
                q_i = w / w.sum() if w.sum() > 0 else q_i
            excluded.append(c)
        total += prob * rejected
    return 1.0 - total


def _rho(q, p, K):
    g = lambda r: r * np.minimum(p, q / r).sum() - 1 + (1 - np.minimum(p, q / r).sum()) ** K  # noqa: E731
    if g(1.0) >= 0:
        return 1.0
    lo, hi = 1.0, float(K)
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if g(mid) >= 0 else (mid, hi)
    return hi


def optimal_acceptance(q: np.ndarray, p: np.ndarray, K: int, scheme: str) -> float:
    """The best acceptance of any lossless verifier for these drafts (Hu et al. 2025):
    min over subsets B of q(B) + P(some sibling outside B)."""
    V = len(q)
    best = 1.0
    for bits in range(2**V):
        inside = np.array([(bits >> i) & 1 for i in range(V)], dtype=bool)
        if scheme == "iid":
            all_in = p[inside].sum() ** K
        else:
            all_in = 0.0
            for tup in itertools.permutations(np.flatnonzero(inside).tolist(), K):
                prob, left = 1.0, p.sum()
                for c in tup:
                    prob *= p[c] / left if left > 0 else 0.0
                    left -= p[c]
                all_in += prob
        best = min(best, q[inside].sum() + 1 - all_in)
    return best


def test_acceptance_closed_forms_and_the_optimal_bound() -> None:
    rng = np.random.default_rng(4)
    for trial in range(60):
        V, K = int(rng.integers(3, 6)), int(rng.integers(1, 4))
        q = _dist(rng.dirichlet([0.5] * V)).double().numpy()
        p = _dist(rng.dirichlet([0.5] * V) * (rng.random(V) < 0.85) + 1e-3).double().numpy()
        sps = float(np.minimum(p, q).sum())
        best = {s: optimal_acceptance(q, p, K, s) for s in ("iid", "without_replacement")}
        for rule in ("specinfer", "rrs", "spectr"):
            s = get_strategy(rule)
            exact = s.acceptance_probability(torch.tensor(q), torch.tensor(p), K)
            # float32 rows sum to 1 only within ~1e-7, so formulas agree to that
            brute = brute_acceptance(q, p, K, s.draft_scheme, rule)
            assert exact == pytest.approx(brute, abs=1e-6), (rule, trial)
            assert sps - 1e-6 <= exact <= best[s.draft_scheme] + 1e-6, (rule, trial)
            if K == 1:
                assert exact == pytest.approx(sps, abs=1e-6)
        spectr = get_strategy("spectr").acceptance_probability(torch.tensor(q), torch.tensor(p), K)
        assert spectr >= (1 - 1 / math.e) * best["iid"] - 1e-6


def test_rrs_with_fewer_tokens_than_siblings() -> None:
    q, p = _dist([0.2, 0.3, 0.5, 0.0]), _dist([0.5, 0.5, 0.0, 0.0])
    s = get_strategy("rrs")
    assert s.acceptance_probability(q, p, 4) == pytest.approx(0.5)  # both tokens drafted: q(0,1)
    N, g = 100_000, torch.Generator().manual_seed(2)
    tokens = draw_siblings("rrs", p[None].expand(N, 4), 2, g, False)  # the drafter stops at 2
    r = s.verify_tree(torch.stack([q, q, q])[None].expand(N, 3, 4), DraftTree(
        tokens, star(2), p[None, None].expand(N, 2, 4)), g)  # fmt: skip
    assert_follows(torch.bincount(r.tokens[:, 0], minlength=4), q.double(), "rrs support 2")


# -- structure, reductions, bad input ------------------------------------------------------------


def test_a_one_branch_tree_is_the_chain_rule() -> None:
    B, k, V = 20_000, 4, 8
    q, p, x, _, g = random_inputs(B, k, V, seed=6)
    noise = Noise.draw(g, B)
    chain = torch.arange(-1, k - 1)
    for tree_rule, chain_rule in (("specinfer", "sps"), ("rrs", "sps"), ("spectr", "sps"),
                                  ("greedy", "greedy")):  # fmt: skip
        t = get_strategy(tree_rule).verify_tree_with_noise(q, DraftTree(x, chain, p), noise)
        c = get_strategy(chain_rule).verify_with_noise(q, p, x, noise)
        assert torch.equal(t.num_accepted, c.num_accepted), tree_rule
        # normalized vs unnormalized residual weights may round a sample differently
        assert float((t.tokens != c.tokens).any(1).double().mean()) < 1e-3, tree_rule


def test_unbatched_result_and_noise_contract() -> None:
    V, g = 6, torch.Generator().manual_seed(1)
    q = torch.softmax(torch.randn(5, V, generator=g), -1)
    p = torch.softmax(torch.randn(4, V, generator=g), -1)
    tree = DraftTree(torch.tensor([1, 2, 3, 4]), torch.tensor([-1, -1, 0, 0]), p)
    s = get_strategy("specinfer")
    r1 = s.verify_tree(q, tree, torch.Generator().manual_seed(3))
    r2 = s.verify_tree_with_noise(q, tree, Noise.draw(torch.Generator().manual_seed(3), 1))
    assert torch.equal(r1.path, r2.path) and torch.equal(r1.tokens, r2.tokens)
    assert r1.path.ndim == 1 and len(r1.tokens) == len(r1.path) + 1 == int(r1.num_accepted) + 1
    assert all(int(tree.parents[b]) == a for a, b in zip([-1, *r1.path.tolist()], r1.path.tolist(),
                                                          strict=False))  # fmt: skip
    greedy = get_strategy("greedy")
    hot = torch.zeros(5, V).scatter_(1, torch.tensor([[1], [0], [3], [0], [0]]), 1.0)
    r = greedy.verify_tree(hot, DraftTree(torch.tensor([2, 1, 5, 3]), torch.tensor([-1, -1, 1, 1]),
                                          None))  # fmt: skip
    assert r.path.tolist() == [1, 3] and r.tokens.tolist() == [1, 3, 0]


BAD = [
    (dict(parents=torch.tensor([0, -1])), "parents\\[0\\]"),
    (dict(parents=torch.tensor([-1, 2, 1])), "parents\\[1\\]"),
    (dict(tokens=torch.tensor([1, 9, 2])), "tokens must lie"),
    (dict(tokens=torch.tensor([1.0, 2.0, 3.0])), "integer"),
    (dict(target=torch.ones(3, 6) / 6), "target_probs"),
    (dict(draft=torch.ones(3, 5) / 5), "draft_probs"),
    (dict(draft=torch.full((3, 6), 0.5)), "sums to"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_trees_raise(change: dict, message: str) -> None:
    args = dict(tokens=torch.tensor([1, 2, 3]), parents=torch.tensor([-1, -1, 0]),
                target=torch.ones(4, 6) / 6, draft=torch.ones(3, 6) / 6)  # fmt: skip
    args.update(change)
    with pytest.raises(ValueError, match=message):
        get_strategy("rrs").verify_tree(args["target"], DraftTree(args["tokens"], args["parents"],
                                                                  args["draft"]))  # fmt: skip


def test_spectr_refuses_siblings_of_different_laws() -> None:
    q = torch.ones(3, 4) / 4
    with pytest.raises(ValueError, match="i.i.d."):
        get_strategy("spectr").verify_tree(q, DraftTree(torch.tensor([0, 1]), star(2), None))
    rows = torch.tensor([[0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    with pytest.raises(ValueError, match="i.i.d."):
        get_strategy("spectr").verify_tree(q, DraftTree(torch.tensor([0, 1]), star(2), rows))
    same = get_strategy("spectr").verify_tree(q, DraftTree(torch.tensor([2, 2]), star(2), None))
    assert same.tokens.numel() >= 1
