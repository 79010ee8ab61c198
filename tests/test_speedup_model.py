"""The speedup model and the per-position acceptance forms on hand-made counts with known
answers: Leviathan et al.'s closed form and optimal-k table, ragged drafts counted by hand, and
the cost ratio c from hand-made records through `metrics.aggregate`.

Run: .venv/bin/python -m pytest tests/test_speedup_model.py -q
"""

from __future__ import annotations

import pytest

from specbench_cli.acceptance import count_positions
from specbench_cli.metrics import aggregate
from specbench_cli.speedup_model import (
    K_MAX,
    effective_cost_ratio,
    expected_tokens,
    model_summary,
    predicted_speedup,
    reach_from_histogram,
    recommended_k,
    speedup_curve,
)


def leviathan(alpha: float, c: float, k: int) -> float:
    return (1 - alpha ** (k + 1)) / ((1 - alpha) * (k * c + 1))


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.8, 0.95])
@pytest.mark.parametrize("c", [0.0, 0.05, 0.2])
def test_iid_profile_is_the_closed_form(alpha, c):
    # one measured position extended with tail = alpha is the i.i.d. model at every k
    for k in range(1, K_MAX + 1):
        assert predicted_speedup([alpha], alpha, c, k) == pytest.approx(leviathan(alpha, c, k))
    # so is a longer measured profile alpha^i
    reach = [alpha**i for i in range(1, 5)]
    assert speedup_curve(reach, alpha, c) == pytest.approx(
        [leviathan(alpha, c, k) for k in range(1, K_MAX + 1)])


# the optimal-k table of the standard analysis: (alpha, c) -> (best k, S at best k)
TABLE = {(0.6, 0.02): (6, 2.17), (0.6, 0.05): (4, 1.92), (0.6, 0.1): (3, 1.67),
         (0.6, 0.2): (2, 1.40), (0.7, 0.02): (8, 2.76), (0.7, 0.05): (6, 2.35),
         (0.7, 0.1): (4, 1.98), (0.7, 0.2): (3, 1.58), (0.8, 0.02): (11, 3.82),
         (0.8, 0.05): (8, 3.09), (0.8, 0.1): (6, 2.47), (0.8, 0.2): (4, 1.87),
         (0.9, 0.02): (19, 6.37), (0.9, 0.05): (13, 4.67), (0.9, 0.1): (10, 3.43),
         (0.9, 0.2): (7, 2.37)}  # fmt: skip


@pytest.mark.parametrize("alpha,c", sorted(TABLE))
def test_recommended_k_matches_the_table(alpha, c):
    best, speed = TABLE[(alpha, c)]
    assert recommended_k([alpha, alpha**2], alpha, c) == best
    summary = model_summary([alpha, alpha**2], alpha, c, k=4)
    assert summary["recommended_k"] == best
    assert summary["predicted_speedup_at_recommended_k"] == pytest.approx(speed, abs=0.005)
    assert summary["predicted_speedup"] == pytest.approx(leviathan(alpha, c, 4))
    assert len(summary["predicted_speedup_by_k"]) == K_MAX


def test_measured_profile_is_used_before_the_tail():
    # position 1 accepted always, position 2 never: k=1 emits 2 tokens, more k adds nothing
    reach = [1.0, 0.0]
    assert expected_tokens(reach, tail=0.9, k=1) == 2.0
    assert expected_tokens(reach, tail=0.9, k=5) == 2.0  # tail of a zero stays zero
    assert recommended_k(reach, tail=0.9, c=0.01) == 1
    # a profile that drops and then a strong tail: 1 + 0.5 + 0.25 + 0.25*0.8 + 0.25*0.64
    assert expected_tokens([0.5, 0.25], 0.8, 4) == pytest.approx(1 + 0.5 + 0.25 + 0.2 + 0.16)


def test_edge_cases():
    assert expected_tokens([], 0.0, 6) == 1.0  # nothing measured: autoregressive
    assert recommended_k([], 0.0, 0.1) == 1  # ties (all 1/(1+kc) decreasing) -> smallest k
    assert recommended_k([], 0.0, 0.0) == 1  # exact ties at 1.0 -> smallest k
    assert recommended_k([1.0], 1.0, 0.0) == K_MAX  # free drafts that are always accepted
    assert expected_tokens([0.5], 0.5, 0) == 1.0
    with pytest.raises(ValueError):
        predicted_speedup([0.5], 0.5, -0.1, 2)
    with pytest.raises(ValueError):
        expected_tokens([0.5], 0.5, -1)


def test_calibrated_model_charges_the_measured_verify_cost():
    assert effective_cost_ratio(0.05, 1.0, 4) == pytest.approx(0.05)  # as assumed: no change
    assert effective_cost_ratio(0.05, 3.0, 2) == pytest.approx(1.05)  # +1 step per draft
    assert effective_cost_ratio(0.05, 0.2, 1) == 0.0  # never below 0
    # alpha = 0.9 and free drafts: the standard model wants the longest draft, a verify pass
    # that measured 2 ordinary steps at k = 4 (slope 0.25 per draft) moves the optimum to k = 6
    # (by hand: S(5) = 0.4686 / 0.225 = 2.083, S(6) = 0.5217 / 0.25 = 2.087, S(7) = 2.071)
    summary = model_summary([0.9], 0.9, 0.0, 4, verify_ratio=2.0)
    assert summary["recommended_k"] == K_MAX
    assert summary["calibrated"]["recommended_k"] == recommended_k([0.9], 0.9, 0.25) == 6
    assert summary["calibrated"]["predicted_speedup"] == pytest.approx(
        leviathan(0.9, 0.25, 4))
    assert model_summary([0.9], 0.9, 0.0, 4)["calibrated"] is None


def test_reach_from_histogram():
    # drafting steps accepting 0, 0, 1, 2, 3 drafts, and one step with no draft at all
    histogram = [2, 1, 1, 1]
    assert reach_from_histogram(histogram, undrafted_steps=1) == pytest.approx(
        [3 / 6, 2 / 6, 1 / 6])
    assert reach_from_histogram([0, 0], 0) == []


STEPS = [(2, 3), (0, 3), (3, 3), (1, 1), (0, 0)]  # (accepted, drafted), k = 3


def test_three_forms_counted_by_hand():
    counts = count_positions(STEPS, k=3)
    assert (counts.steps, counts.drafting_steps) == (5, 4)
    assert counts.histogram == [1, 1, 1, 1]
    assert counts.joint() == pytest.approx([3 / 4, 2 / 3, 1 / 3])  # a >= i over n >= i
    assert counts.conditional() == pytest.approx([3 / 4, 2 / 2, 1 / 2])  # over n>=i, a>=i-1
    assert counts.unconditional() == pytest.approx([3 / 4, 2 / 4, 1 / 4])  # over drafting
    assert counts.reach() == pytest.approx([3 / 5, 2 / 5, 1 / 5])  # over all steps
    assert counts.tail() == pytest.approx((2 + 1) / (2 + 2))  # pooled over positions 2..3
    assert count_positions([(1, 1), (0, 1)], k=1).tail() == pytest.approx(1 / 2)
    assert reach_from_histogram(counts.histogram, 1) == pytest.approx(counts.reach())


def test_full_drafts_make_joint_and_unconditional_equal():
    steps = [(a, 4) for a in (0, 1, 1, 2, 4, 4, 3, 0)]
    counts = count_positions(steps, k=4)
    assert counts.joint() == pytest.approx(counts.unconditional())
    product, expected = 1.0, []
    for p in counts.conditional():
        product *= p
        expected.append(product)
    assert counts.joint() == pytest.approx(expected)


def _record(strategy, accepted, drafted, wall, prefill, draft_s, new_tokens):
    steps = len(accepted)
    return {"suite": "s", "prompt_id": "p", "category": "s", "strategy": strategy,
            "drafter": "none" if strategy == "baseline" else "ngram", "status": "ok",
            "output_text": ["x"], "new_tokens": new_tokens, "wall_s": wall,
            "prefill_s": prefill, "ttft_s": prefill, "draft_s": draft_s, "verify_s": 0.0,
            "target_forward_passes": steps + 1, "accepted_lengths": accepted,
            "drafted_lengths": drafted, "peak_memory_bytes": 0}  # fmt: skip


def test_cost_ratio_and_prediction_from_records():
    # baseline: 10 decoding steps of 0.1 s after a 0.1 s prefill -> 0.1 s per target step
    base = _record("baseline", [0] * 10, [0] * 10, 1.1, 0.1, 0.0, 11)
    # strategy: the five steps above, 0.05 s of drafting for 10 drafted tokens -> 0.005 s per
    # drafted token -> c = 0.05
    accepted, drafted = zip(*STEPS, strict=True)
    mine = _record("sps", list(accepted), list(drafted), 0.6, 0.1, 0.05, 1 + 5 + 6)
    rows = aggregate([base, mine], {"sps": {"name": "sps", "params": {}}}, k=3)
    row = next(r for r in rows if r["strategy"] == "sps")
    model = row["speedup_model"]
    assert model["cost_ratio"] == pytest.approx(0.05)
    assert model["tail_acceptance"] == pytest.approx(0.75)
    reach = [3 / 5, 2 / 5, 1 / 5]
    assert model["predicted_speedup"] == pytest.approx((1 + sum(reach)) / (1 + 3 * 0.05))
    # verify ratio: (0.5 s of decoding steps - 0.01 s drafting per step) / 0.1 s per step
    assert model["verify_cost_ratio"] == pytest.approx((0.5 / 5 - 0.05 / 5) / 0.1)
    calibrated = model["calibrated"]
    assert calibrated["cost_ratio"] == pytest.approx(0.05 + (0.9 - 1) / 3)
    # at the run's k the calibrated model divides by the measured step cost k c + v
    assert calibrated["predicted_speedup"] == pytest.approx((1 + sum(reach)) / (3 * 0.05 + 0.9))
    assert row["per_position_acceptance"] == pytest.approx([3 / 4, 2 / 3, 1 / 3])
    assert row["per_position_acceptance_conditional"] == pytest.approx([3 / 4, 1.0, 1 / 2])
    assert row["per_position_acceptance_unconditional"] == pytest.approx([3 / 4, 1 / 2, 1 / 4])
    assert row["accepted_length_histogram"] == [1, 1, 1, 1]
    assert (row["steps"], row["drafting_steps"]) == (5, 4)
    baseline = next(r for r in rows if r["strategy"] == "baseline")
    assert baseline["speedup_model"] is None and baseline["accepted_length_histogram"] == []
