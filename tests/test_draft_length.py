"""Draft-length policies (docs/drafters.md): the heuristic schedule, the confidence stop of the
draft model, greedy equivalence under both, and the configuration checks.

Run: .venv/bin/python -m pytest tests/test_draft_length.py -q
"""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli
from test_engine import GREEDY, hf_greedy, prompts, run_engine, tiny_lm

from specbench_cli.config import build_config
from specbench_cli.drafters import Draft, DraftContext, RunMemory, as_batch_drafter, build_drafter
from specbench_cli.drafters.draft_length import HeuristicLength, with_draft_length
from specbench_cli.drafters.draft_model import DraftModelDrafter
from specbench_cli.engine import Engine
from specbench_cli.errors import BadInput
from specbench_cli.sampling import SamplingConfig, process_logits
from specbench_cli.strategies import get_strategy


class Scripted:
    """Proposes `proposals[i]` tokens at step i (at most the k it is given) and records k."""

    name = "scripted"
    params: dict = {}

    def __init__(self, proposals: list[int]) -> None:
        self.proposals = proposals
        self.asked: list[int] = []

    def reset(self, seed: int) -> None:
        self.asked = []

    def propose(self, context: list[int], k: int) -> Draft:
        self.asked.append(k)
        return Draft([0] * min(k, self.proposals[len(self.asked) - 1]), None)

    def observe(self, num_accepted: int) -> None:
        pass


def test_heuristic_schedule():
    # (proposal the drafter makes, accepted) -> the length the next step may draft
    steps = [(9, 5), (9, 2), (9, 0), (9, 1), (9, 0), (9, 0), (9, 1), (0, 0), (2, 2), (9, 3),
             (9, 4)]
    expected = [5, 5, 4, 3, 2, 1, 1, 3, 3, 5, 4]  # starts at k = 5, +2 / -1 within [1, 5]
    scripted = Scripted([p for p, _ in steps])
    policy = with_draft_length(scripted, "heuristic", 5)
    assert isinstance(policy, HeuristicLength)
    for _, accepted in steps:
        policy.propose([], 5)
        policy.observe(accepted)
    # an empty proposal (8th) changes nothing; a short proposal fully accepted (9th: 2 of 2)
    # counts as full acceptance
    assert scripted.asked == expected
    policy.reset(1)
    assert policy.length == 5
    policy.propose([], 2)  # the engine's k near the token budget is respected too
    assert scripted.asked == [2]


def replay_schedule(steps, k: int) -> list[int]:
    """The allowed length before each step, recomputed from recorded drafted/accepted."""
    allowed, out = k, []
    for s in steps:
        out.append(allowed)
        if s.drafted:
            allowed = min(allowed + 2, k) if s.accepted == s.drafted else max(allowed - 1, 1)
    return out


@pytest.fixture(scope="module")
def models():
    """(target, draft): tiny random-weight models sharing a 16-token vocabulary."""
    return tiny_lm(16, seed=0), tiny_lm(16, seed=1, layers=1, hidden=16)


@pytest.mark.parametrize("spec", ["model", "ngram:min_ngram=1", "suffix"])
def test_heuristic_through_the_engine_is_greedy_exact(models, spec):
    (target, draft), k, n = models, 5, 40
    context = DraftContext(GREEDY, 16, draft)
    rejected = 0
    for prompt in prompts(3):
        drafter = with_draft_length(build_drafter(spec, context), "heuristic", k)
        engine = Engine(target, 16, GREEDY, get_strategy("greedy"), drafter, k)
        tokens, steps = run_engine(engine, prompt, n)
        assert tokens == hf_greedy(target, prompt, n)
        steps = steps[1:]  # the prefill drafts nothing
        allowed = replay_schedule(steps, k)
        produced = 1
        for s, limit in zip(steps, allowed, strict=True):
            assert s.drafted <= min(limit, n - produced - 1)
            if spec == "model":  # a draft model always drafts all it is allowed
                assert s.drafted == min(limit, n - produced - 1)
            produced += len(s.tokens)
            rejected += s.drafted > s.accepted
    assert rejected > 0  # the schedule went down at least once


@pytest.mark.parametrize("spec,length", [("model", "heuristic"), ("suffix", "heuristic"),
                                         ("model", "confidence:threshold=0.6")])
def test_policies_at_batch_n_act_per_row(models, spec, length):
    """At batch 3 every row drafts, step by step, what it drafts alone: one schedule (or stop)
    per row, and per-row copies of a model-free drafter share the contender's memory."""
    (target, draft), k, n = models, 5, 30
    rows = prompts(3)

    def engine():
        context = DraftContext(GREEDY, 16, draft, memory=RunMemory())
        drafter = with_draft_length(build_drafter(spec, context), length, k)
        return Engine(target, 16, GREEDY, get_strategy("greedy"), drafter, k)

    alone = [[s.drafted for s in run_engine(engine(), p, n)[1]] for p in rows]
    together: list[list[int]] = [[] for _ in rows]
    for steps in engine().generate_batch(rows, n, [0, 0, 0]):
        for r, step in steps.items():
            together[r].append(step.drafted)
    assert together == alone  # (each alone run has a fresh memory, as a batch's rows start)
    assert any(len(set(d[1:])) > 1 for d in alone)  # the policy made the lengths vary


def test_per_row_copies_share_the_run_memory():
    memory = RunMemory()
    drafter = build_drafter("suffix", DraftContext(GREEDY, 16, None, memory=memory))
    rows = as_batch_drafter(drafter)
    rows.start([1, 2, 3])
    assert all(d._memory is memory for d in rows.rows)


def top_probs(model, context: list[int], tokens: list[int], sampling: SamplingConfig):
    """Top probability of the draft model's law at each drafted position."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + tokens])).logits[0, len(context) - 1:]
    processed = process_logits(logits[: len(tokens)], sampling)
    return processed.softmax(-1).max(-1).values.tolist()


@pytest.mark.parametrize("sampling", [GREEDY, SamplingConfig(temperature=0.7)])
def test_confidence_stops_after_the_first_unsure_token(models, sampling):
    draft, k, threshold, stops = models[1], 6, 0.5, 0
    for context in prompts(8, length=6):
        drafter = with_draft_length(DraftModelDrafter(DraftContext(sampling, 16, draft)),
                                    "confidence:threshold=0.5", k)
        drafter.reset(3)
        proposal = drafter.propose(context, k)
        tops = top_probs(draft, context, proposal.tokens, sampling)
        assert 1 <= len(proposal.tokens) <= k
        assert all(p >= threshold for p in tops[:-1])  # confident tokens never stop it
        if len(proposal.tokens) < k:
            assert tops[-1] < threshold  # it stops right after the first unsure one
            stops += 1
        if proposal.probs is not None:
            assert proposal.probs.shape == (len(proposal.tokens), 16)
    assert stops > 0
    # threshold 0 never stops, threshold 1 stops after one token
    for spec, length in (("confidence:threshold=0.0", k), ("confidence:threshold=1.0", 1)):
        drafter = with_draft_length(DraftModelDrafter(DraftContext(sampling, 16, draft)), spec, k)
        assert len(drafter.propose(prompts(1)[0], k).tokens) == length


def test_confidence_through_the_engine_is_greedy_exact(models):
    target, draft = models
    drafter = with_draft_length(DraftModelDrafter(DraftContext(GREEDY, 16, draft)),
                                "confidence:threshold=0.6", 5)
    engine = Engine(target, 16, GREEDY, get_strategy("greedy"), drafter, 5)
    lengths = set()
    for prompt in prompts(3):
        tokens, steps = run_engine(engine, prompt, 40)
        assert tokens == hf_greedy(target, prompt, 40)
        lengths |= {s.drafted for s in steps[1:]}
    assert len(lengths) > 1  # the stop made the draft length vary


@pytest.mark.parametrize("overrides,fragment", [
    ({"draft_length": "heuristc"}, "did you mean 'heuristic'"),
    ({"draft_length": "confidence"}, "'ngram' has no draft probabilities"),
    ({"draft_length": "confidence", "drafter": "suffix"}, "'suffix' has no draft"),
    ({"draft_length": "confidence:threshold=2", "draft": "x"}, "threshold"),
    ({"draft_length": "heuristic:k=3"}, "no parameter 'k'"),
])
def test_bad_draft_length_is_bad_input(overrides, fragment):
    with pytest.raises(BadInput, match="--draft-length") as err:
        build_config(None, overrides)
    assert fragment in str(err.value)


def test_config_accepts_every_policy():
    assert build_config(None, {"draft_length": "heuristic"}).draft_length == "heuristic"
    cfg = build_config(None, {"draft_length": "confidence:threshold=0.3", "draft": "x"})
    assert cfg.to_dict()["draft_length"] == "confidence:threshold=0.3"


def test_cli_refuses_confidence_without_a_model(tmp_path):
    result = run_cli("run", "--drafter", "suffix", "--draft-length", "confidence",
                     "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --draft-length")
