"""The suffix tree and the suffix drafter: hand-worked examples (docs/drafters.md), a brute-force
count of substrings on random sequences, the global tree's isolation, and greedy equivalence
through the engine on tiny random-weight models.

Run: .venv/bin/python -m pytest tests/test_suffix_drafter.py -q
"""

from __future__ import annotations

import json
import random

import pytest
from conftest import run_cli
from test_engine import GREEDY, hf_greedy, prompts, run_engine, tiny_lm

from specbench_cli.drafters import DraftContext, RunMemory, build_drafter
from specbench_cli.drafters.suffix import SuffixDrafter
from specbench_cli.drafters.suffix_tree import ROOT, SuffixTree
from specbench_cli.engine import Engine
from specbench_cli.strategies import get_strategy
from specbench_cli.suites import bundled_suites

# the worked example of docs/drafters.md: the=1 cat=2 sat=3 on=4 mat=5 .=6
WORKED = [1, 2, 3, 4, 1, 5, 6, 1, 2, 3, 4, 1, 2]


# -- brute force: count occurrences directly ------------------------------------------------

def occurrences(seqs: list[list[int]], s: list[int]) -> list[tuple[int, int]]:
    """(sequence, end) of every occurrence of s, in the order they were appended."""
    n = len(s)
    return [(i, e) for i, seq in enumerate(seqs) for e in range(n, len(seq) + 1)
            if seq[e - n:e] == s]


def brute_best_child(seqs, s, depth):
    """Most frequent next token; ties: the child whose count reached the maximum first."""
    if len(s) >= depth:
        return None, 0
    found = {}
    for i, e in occurrences(seqs, s):
        if e < len(seqs[i]):
            found.setdefault(seqs[i][e], []).append((i, e + 1))
    if not found:
        return None, 0
    top = max(len(v) for v in found.values())
    token = min((v[top - 1], t) for t, v in found.items() if len(v) == top)[1]
    return token, top


def brute_follow(seqs, s, budget, min_prob, depth):
    tokens, probs, prob = [], [], 1.0
    s = list(s)
    while len(tokens) < budget:
        token, count = brute_best_child(seqs, s, depth)
        if token is None:
            break
        prob *= count / len(occurrences(seqs, s))
        if prob < min_prob:
            break
        tokens.append(token)
        probs.append(prob)
        s.append(token)
    return tokens, probs


def brute_speculate(seqs, context, k, factor, offset, min_prob, min_match, depth):
    best, best_score = [], 0.0
    for m in range(1, min(len(context), depth) + 1):
        if not occurrences(seqs, context[-m:]):
            break
        if m < min_match:
            continue
        budget = min(k, int(m * factor + offset + 1e-9))
        tokens, probs = brute_follow(seqs, context[-m:], budget, min_prob, depth)
        if tokens and sum(probs) >= best_score:
            best, best_score = tokens, sum(probs)
    return best, best_score


def locate(tree: SuffixTree, s: list[int]):
    locations = []
    for token in s:
        locations = tree.match_suffixes(locations, token)
    return locations[len(s) - 1] if len(locations) >= len(s) else None


def random_sequences(rng: random.Random, alphabet: int) -> list[list[int]]:
    return [[rng.randrange(alphabet) for _ in range(rng.randint(1, 30))]
            for _ in range(rng.randint(1, 4))]


@pytest.mark.parametrize("depth", [2, 3, 5, 24])
def test_counts_and_paths_equal_brute_force(depth):
    rng = random.Random(depth)
    for _ in range(25):
        seqs = random_sequences(rng, alphabet=rng.choice([2, 3, 5]))
        tree = SuffixTree(depth)
        for seq in seqs:
            tree.add_sequence(seq)
        substrings = {tuple(seq[i:j]) for seq in seqs for i in range(len(seq))
                      for j in range(i + 1, min(len(seq), i + depth) + 1)}
        for s in map(list, substrings):
            loc = locate(tree, s)
            assert tree.count(loc) == len(occurrences(seqs, s)), s
            draft = tree.follow(loc, depth, 0.0)
            assert (draft.tokens, draft.probs) == brute_follow(seqs, s, depth, 0.0, depth), s
        assert locate(tree, [9]) is None  # a token that never occurs
        assert tree.count((ROOT, 0)) == sum(map(len, seqs))


@pytest.mark.parametrize("depth", [3, 24])
def test_growing_sequence_equals_brute_force(depth):
    rng = random.Random(7)
    for _ in range(20):
        alphabet = rng.choice([2, 3, 6])
        tree = SuffixTree(depth)
        done = random_sequences(rng, alphabet)
        for seq in done:
            tree.add_sequence(seq)
        tree.add_sequence()
        grown: list[int] = []
        for _ in range(40):
            token = rng.randrange(alphabet)
            tree.extend([token])
            grown.append(token)
            seqs = [*done, grown]
            repeated = [m for m in range(1, min(len(grown), depth) + 1)
                        if len(occurrences(seqs, grown[-m:])) >= 2]
            assert [tree.depth(n) for n in tree.repeated_suffixes()] == repeated
            assert all(tree.count((n, 0)) == len(occurrences(seqs, grown[-tree.depth(n):]))
                       for n in tree.repeated_suffixes())
            args = (rng.randint(1, 6), rng.choice([0.5, 1.0, 2.0]), rng.choice([0.0, 1.0]),
                    rng.choice([0.0, 0.1, 0.4]), rng.randint(1, 3))
            got = tree.speculate([(n, 0) for n in tree.repeated_suffixes()], *args)
            assert (got.tokens, pytest.approx(got.score)) == brute_speculate(
                seqs, grown, *args, depth)


def test_worked_example_counts_and_draft():
    tree = SuffixTree(24)
    tree.add_sequence(WORKED)
    # "the" occurs 4 times, "the cat" 3 times, "the cat sat" twice
    assert [(tree.depth(n), tree.count((n, 0))) for n in tree.repeated_suffixes()] == [(1, 3),
                                                                                      (2, 3)]
    the = tree.child(ROOT, 1)
    assert tree.count((the, 0)) == 4 and tree.best_child(the) == tree.child(the, 2)
    assert tree.count((tree.child(the, 2), 0)) == 3 and tree.count((tree.child(the, 5), 0)) == 1
    cat = tree.repeated_suffixes()[1]  # "the cat" at the end of the context
    # "the cat": 3 occurrences, 2 continue with "sat" (the last one is the context's tail)
    draft = tree.follow((cat, 0), 4, 0.0)
    assert draft.tokens == [3, 4, 1, 5] and draft.probs == pytest.approx([2 / 3, 2 / 3, 2 / 3,
                                                                          1 / 3])
    # the whole draft of a drafter: min(k, 2.0 * 2) tokens from the 2-token match
    d = SuffixDrafter(**{"global": False, "max_spec_factor": 2.0, "min_match": 2})
    assert d.propose(WORKED, 4).tokens == [3, 4, 1, 5]


def test_min_token_prob_cuts_the_path():
    tree = SuffixTree(24)
    tree.add_sequence(WORKED)
    cat = (tree.repeated_suffixes()[1], 0)
    assert tree.follow(cat, 4, 0.5).tokens == [3, 4, 1]  # 1/3 < 0.5 stops before "mat"
    assert tree.follow(cat, 4, 0.7).tokens == []  # 2/3 < 0.7: nothing
    d = SuffixDrafter(**{"global": False, "min_token_prob": 0.7, "max_spec_factor": 4.0})
    assert d.propose(WORKED, 4).tokens == []


@pytest.mark.parametrize("factor,offset,k,expected", [
    (1.0, 0.0, 4, [3, 4]),  # floor(1 * 2 + 0) = 2
    (2.0, 0.0, 4, [3, 4, 1, 5]),  # 4
    (2.0, 0.0, 3, [3, 4, 1]),  # capped by k
    (0.5, 0.0, 4, [3]),  # floor(0.5 * 2) = 1; the 1-token match gets 0
    (0.0, 1.0, 4, [3]),  # 1 for every match length
    (1.0, -1.0, 4, [3]),  # the 2-token match gets 1, the 1-token match 0
    (0.2, 0.0, 4, []),  # floor(0.4) = 0: no draft
    (1.5, 0.5, 4, [3, 4, 1]),  # floor(3.5) = 3
])
def test_draft_length_is_factor_times_match_plus_offset(factor, offset, k, expected):
    d = SuffixDrafter(**{"global": False, "max_spec_factor": factor, "max_spec_offset": offset,
                         "min_token_prob": 0.0, "min_match": 1})
    assert d.propose(WORKED, k).tokens == expected


@pytest.mark.parametrize("context,min_match,expected", [
    ([5, 6, 7, 5], 1, [6, 7]),  # the tail "5" occurred once: floor(2.0 * 1) = 2 tokens
    ([5, 6, 7, 5], 2, []),  # ... but a 1-token match is too short for min_match = 2
    (WORKED, 2, [3, 4, 1, 5]),  # "the cat" (2 tokens) may draft 4
    (WORKED, 3, []),  # "on the cat" occurs only as the tail: no match long enough
])
def test_matches_shorter_than_min_match_never_draft(context, min_match, expected):
    d = SuffixDrafter(**{"global": False, "min_match": min_match})
    assert d.propose(context, 4).tokens == expected


def test_best_score_wins_and_depth_limits_drafts():
    ctx = [1, 2, 7, 5, 1, 2, 9, 0, 5, 1, 2]
    # "2" and "1 2" (3 occurrences) continue with 7 and 9 once each: the tie goes to the first
    # seen, 7 5 at 1/3 each; "5 1 2" (2 occurrences) continues with 9 0 at 1/2 each: wins
    d = SuffixDrafter(**{"global": False, "min_token_prob": 0.0, "max_spec_factor": 3.0})
    assert d.propose(ctx, 2).tokens == [9, 0]
    # max_depth 3 bounds match + draft: "5 1 2" leaves no room, "1 2" one token, "2" two
    d = SuffixDrafter(**{"global": False, "min_token_prob": 0.0, "max_spec_factor": 3.0,
                         "max_depth": 3, "min_match": 1})
    assert d.propose(ctx, 4).tokens == [7, 5]


def finish(drafter: SuffixDrafter, prompt: list[int], output: list[int]) -> None:
    """One whole sequence, as the engine drives it: the prefill's token, then the rest."""
    drafter.reset(0)
    for context in (prompt + output[:1], prompt + output):
        drafter.propose(context, 4)
        drafter.observe(0)


def test_global_tree_holds_finished_outputs_only():
    memory = RunMemory()
    ctx = DraftContext(GREEDY, 16, memory=memory)
    d = build_drafter("suffix", ctx)
    d.reset(1)
    # the tree is empty while the first request runs, even though its own text repeats
    d.propose([5, 6, 7, 8, 5, 6], 4)
    shared = memory.get("suffix:max_depth=24", lambda: None)
    assert shared.tree.sequences == []
    d.observe(2)  # [7, 8] of the draft accepted
    d.reset(2)  # the request ended: its output (after the prompt) goes to the tree
    d.propose([1, 2, 3], 4)
    assert shared.tree.sequences == [[6, 7, 8]]
    # a second request whose tail matches the first one's output drafts from the global tree
    d.reset(3)
    assert d.propose([9, 6, 7], 4).tokens == [8]
    # drafters built from the same context share the tree, another contender does not
    other = build_drafter("suffix", ctx)
    other.reset(4)
    assert other.propose([6, 7], 4).tokens == [8]
    stranger = build_drafter("suffix", DraftContext(GREEDY, 16))
    assert stranger.propose([6, 7], 4).tokens == []
    off = build_drafter("suffix:global=false", ctx)
    assert off.propose([6, 7], 4).tokens == []


def test_outputs_reach_the_tree_and_cleared_memory_forgets_them():
    memory = RunMemory()
    d = build_drafter("suffix", DraftContext(GREEDY, 16, memory=memory))
    finish(d, [1, 2, 3], [4, 5, 6, 7])
    d.reset(0)
    assert d.propose([9, 4, 5], 4).tokens == [6, 7]  # the output is in the global tree
    d.reset(0)
    assert d.propose([9, 1, 2], 4).tokens == []  # the prompt is not
    finish(d, [1, 2, 3], [4, 5, 6, 7])  # a warm-up, say
    memory.clear()
    d.reset(0)
    assert d.propose([9, 4, 5], 4).tokens == []


@pytest.fixture(scope="module")
def target():
    return tiny_lm(16, seed=0)


@pytest.fixture(scope="module")
def references(target):
    return [(prompt, hf_greedy(target, prompt, 40)) for prompt in prompts(4, length=12)]


@pytest.mark.parametrize("spec,k", [
    ("suffix", 4), ("suffix", 1), ("suffix:global=false,min_token_prob=0.0", 4),
    ("suffix:max_spec_factor=2.0,max_spec_offset=1.0,max_depth=4", 3),
])
def test_greedy_suffix_equals_generate(target, references, spec, k):
    drafter = build_drafter(spec, DraftContext(GREEDY, 16))
    engine = Engine(target, 16, GREEDY, get_strategy("greedy"), drafter, k)
    drafted = 0
    for prompt, reference in references:
        for _ in range(2):  # the same prompt again: now the global tree knows the answer
            tokens, steps = run_engine(engine, prompt, 40)
            assert tokens == reference
            drafted += sum(s.drafted for s in steps)
    assert drafted > 0


def test_repeated_prompt_drafts_its_earlier_answer(target):
    engine = Engine(target, 16, GREEDY, get_strategy("greedy"),
                    build_drafter("suffix:max_spec_factor=4.0", DraftContext(GREEDY, 16)), 4)
    prompt = prompts(1, length=12)[0]
    first = run_engine(engine, prompt, 40)[1]
    second = run_engine(engine, prompt, 40)[1]
    assert len(second) < len(first)
    # the second time, all but the first and last tokens come from fully accepted drafts
    assert sum(s.accepted for s in second) >= 40 - 2 - len(second)


def test_cli_runs_suffix_on_every_bundled_suite(tmp_path, tiny_target):
    suites = bundled_suites()
    out = tmp_path / "run"
    args = [arg for name in suites for arg in ("--suite", name)]
    result = run_cli("run", "--target", str(tiny_target), "--drafter", "suffix:max_depth=8",
                     "--draft-length", "heuristic", "--strategy", "sps", "--limit", "1",
                     "--max-new-tokens", "6", "--k", "3", "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["drafter"] == "suffix:max_depth=8"
    assert data["config"]["draft_length"] == "heuristic"
    rows = [r for r in data["results"] if r["strategy"] == "sps"]
    assert {r["suite"] for r in rows} == set(suites)
    assert {r["drafter"] for r in rows} == {"suffix:max_depth=8+heuristic"}
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * len(suites)
    assert all(r["status"] == "ok" and 1 <= r["new_tokens"] for r in records)


def test_branches_add_the_continuations_the_chain_did_not_take():
    # "7 1" occurred twice before the tail, followed once by 2 and once by 3
    ctx = [7, 1, 2, 7, 1, 3, 7, 1]
    chain = SuffixDrafter(**{"global": False}).propose(ctx, 3).tokens
    assert chain == [2, 7, 1]  # first seen wins the tie, then the leaf's unique continuation
    one = SuffixDrafter(**{"global": False}).propose_tree(ctx, 3, "iid")
    assert (one.tokens, one.parents) == ([2, 7, 1], [-1, 0, 1])  # branches=1: the chain
    two = SuffixDrafter(**{"global": False, "branches": 3}).propose_tree(ctx, 3, "iid")
    # the alternative 3 7 1 (found at match lengths 1 and 2, kept once); nothing else exists
    assert (two.tokens, two.parents) == ([2, 3, 7, 7, 1, 1], [-1, -1, 0, 1, 2, 3])
    cut = SuffixDrafter(**{"global": False, "branches": 3, "min_token_prob": 0.4})
    assert cut.propose_tree(ctx, 3, "iid").tokens == []  # 1/3 < 0.4: no branch at all


def test_alternatives_rank_by_score_within_the_budget():
    tree = SuffixTree(24)
    # "5" is followed by 6 (3 times), 8 (twice) and 9 (once); the tail is "5"
    tree.add_sequence([5, 6, 0, 5, 6, 1, 5, 8, 2, 5, 8, 3, 5, 6, 4, 5, 9, 5])
    matches = [(n, 0) for n in tree.repeated_suffixes()]
    best = tree.speculate(matches, 2, 4.0, 0.0, 0.0)
    assert best.tokens[0] == 6
    alts = tree.alternatives(matches, 2, 4.0, 0.0, 0.0)
    assert [a.tokens[0] for a in alts] == [8, 9]  # counts 2 and 1 of 7 occurrences
    assert alts[0].probs[0] == pytest.approx(2 / 7) and all(len(a.tokens) <= 2 for a in alts)
    # min_prob 0.2: 9 (1/7) goes, and 8's path stops after 8 (2/7, then 2/7 * 1/2)
    assert [a.tokens for a in tree.alternatives(matches, 2, 4.0, 0.0, 0.2)] == [[8]]
