"""A depth-limited suffix tree with occurrence counts, for suffix-tree drafting (docs/drafters.md).

Conceptually a trie of every substring of length <= `max_depth` of the sequences it holds; the
node of a string `s` counts its occurrences (`count(s)`), so `count(s + t) / count(s)` is the
empirical probability that `t` follows `s`. An occurrence that reaches the end of its sequence
has no continuation: it counts in `count(s)` and in no child.

Stored compactly: a node whose string occurs once (count 1) is a **leaf** that keeps a reference
into the one sequence holding it (`seq`, `end`: the continuation starts at `seq[end]`) instead of
children, so its whole unique continuation, down to `max_depth`, costs one node. A leaf becomes
an inner node ("bursts") the moment a second occurrence reaches it: it gets one child, the old
occurrence's next token, itself a leaf. Memory is therefore one leaf per position plus one
inner node per distinct repeated substring (of length <= max_depth).

Appending a token to a sequence touches only the nodes of the sequence's **repeated suffixes**
(the suffixes of length 1..R that occurred before; R is usually 0-3 in prose, up to max_depth in
repetitive text): each gets its child for the new token counted (or created), and longer suffixes
are unique and live in leaves that read the growing sequence. So appending costs O(R) dict
operations, and a whole sequence of n tokens O(n * mean R).

Every inner node remembers its child with the largest count (ties: the child that reached it
first), so following the most frequent continuation costs O(1) per token.

Nodes are integer ids into flat lists of ints (and one dict of children per inner node,
int -> int), not Python objects: a tree of a whole run's outputs adds almost no objects for the
cyclic garbage collector to track (a full collection then only walks a few lists), and appending
is about twice as fast as with `array` (no int conversion).

A *location* is `(node, extra)`: the node of a string, or for a string inside a leaf's unique
continuation, the leaf and how many tokens past it (`extra`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

Location = tuple[int, int]
ROOT = 0


@dataclass
class Candidate:
    """One continuation: tokens with their path probabilities; `score` = sum of `probs`, an
    estimate of the number of tokens the target will accept."""

    tokens: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    score: float = 0.0
    match_len: int = 0


class SuffixTree:
    """Substrings (length <= max_depth) of a set of token sequences, with counts; only the
    newest sequence can grow."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.sequences: list[list[int]] = []
        # per node: last token of its string, string length, occurrences, child with the
        # largest count (-1: none); leaves: sequence index and position after the string
        self._token: list[int] = [-1]
        self._depth: list[int] = [0]
        self._count: list[int] = [0]
        self._best: list[int] = [-1]
        self._seq: list[int] = [-1]
        self._end: list[int] = [0]
        self._children: list[dict[int, int] | None] = [{}]  # None: a leaf (count 1)
        self._repeated: list[int] = []  # nodes of the newest sequence's repeated suffixes

    def __len__(self) -> int:
        """Number of nodes, the root included."""
        return len(self._children)

    def add_sequence(self, tokens: Sequence[int] = ()) -> None:
        """Start a new sequence, optionally with its first tokens. Only the newest sequence can
        grow (`extend`): the bookkeeping of its repeated suffixes assumes nothing else changes
        the tree meanwhile."""
        self.sequences.append([])
        self._repeated = []
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        """Append tokens to the newest sequence."""
        for token in tokens:
            self._append(token)

    def repeated_suffixes(self) -> list[int]:
        """Nodes of the newest sequence's suffixes of length 1, 2, ... that occurred before."""
        return self._repeated

    def count(self, loc: Location) -> int:
        """Occurrences of the string at `loc`."""
        node, extra = loc
        return 1 if extra else self._count[node]

    def depth(self, node: int) -> int:
        return self._depth[node]

    def child(self, node: int, token: int) -> int | None:
        children = self._children[node]
        return None if children is None else children.get(token)

    def best_child(self, node: int) -> int | None:
        """The child with the largest count (the continuation seen first on ties), or None."""
        best = self._best[node]
        return None if best < 0 else best

    def _new_leaf(self, token: int, depth: int, seq: int, end: int) -> int:
        self._token.append(token)
        self._depth.append(depth)
        self._count.append(1)
        self._best.append(-1)
        self._seq.append(seq)
        self._end.append(end)
        self._children.append(None)
        return len(self._children) - 1

    def _append(self, token: int) -> None:
        seq_id = len(self.sequences) - 1
        seq = self.sequences[seq_id]
        seq.append(token)
        count, best, children = self._count, self._best, self._children
        count[ROOT] += 1
        parents = [ROOT, *self._repeated]
        if len(parents) > self.max_depth:  # a suffix of max_depth tokens cannot grow
            parents.pop()
        repeated: list[int] = []
        for i, parent in enumerate(parents):
            child = children[parent].get(token)
            if child is None:  # s + token is new, so is every longer suffix + token
                for new_parent in parents[i:]:
                    leaf = self._new_leaf(token, self._depth[new_parent] + 1, seq_id, len(seq))
                    children[new_parent][token] = leaf
                    if best[new_parent] < 0:
                        best[new_parent] = leaf
                break
            count[child] += 1
            if children[child] is None:
                self._burst(child)
            if count[child] > count[best[parent]]:
                best[parent] = child
            repeated.append(child)
        self._repeated = repeated

    def _burst(self, leaf: int) -> None:
        """A leaf's string got its second occurrence: give it its first child, the old
        occurrence's next token (unless that occurrence ends there or at max_depth)."""
        self._children[leaf] = {}
        seq_id, end = self._seq[leaf], self._end[leaf]
        seq = self.sequences[seq_id]
        if end < len(seq) and self._depth[leaf] < self.max_depth:
            child = self._new_leaf(seq[end], self._depth[leaf] + 1, seq_id, end + 1)
            self._children[leaf][seq[end]] = child
            self._best[leaf] = child

    # -- matching -------------------------------------------------------------------------

    def step(self, loc: Location, token: int) -> Location | None:
        """The location of (the string at `loc`) + token, or None if it does not occur."""
        node, extra = loc
        children = self._children[node]
        if children is None:  # inside a leaf's unique continuation
            seq = self.sequences[self._seq[node]]
            pos = self._end[node] + extra
            if self._depth[node] + extra < self.max_depth and pos < len(seq) and seq[pos] == token:
                return node, extra + 1
            return None
        child = children.get(token)
        return None if child is None else (child, 0)

    def match_suffixes(self, locations: list[Location], token: int) -> list[Location]:
        """Given the locations of the suffixes of lengths 1..M of some text, those of the text
        with `token` appended (lengths 1..M', M' <= M + 1)."""
        out: list[Location] = []
        for loc in [(ROOT, 0), *locations]:
            nxt = self.step(loc, token)
            if nxt is None:  # a longer suffix + token cannot occur either
                break
            out.append(nxt)
        return out

    # -- drafting ---------------------------------------------------------------------------

    def follow(self, loc: Location, budget: int, min_prob: float, prob: float = 1.0) -> Candidate:
        """Greedy path below `loc`: repeatedly the most frequent next token, while the path
        probability (product of count ratios, starting from `prob`) stays >= min_prob, at most
        `budget` tokens."""
        node, extra = loc
        draft = Candidate()
        while len(draft.tokens) < budget:
            if self._children[node] is None:  # count 1 all the way down: probability unchanged
                seq = self.sequences[self._seq[node]]
                pos = self._end[node] + extra
                if self._depth[node] + extra >= self.max_depth or pos >= len(seq):
                    break
                token = seq[pos]
                extra += 1
            else:
                child = self._best[node]
                if child < 0:
                    break
                prob *= self._count[child] / self._count[node]
                if prob < min_prob:
                    break
                node, extra, token = child, 0, self._token[child]
            draft.tokens.append(token)
            draft.probs.append(prob)
            draft.score += prob
        return draft

    def alternatives(self, locations: list[Location], max_tokens: int, factor: float,
                     offset: float, min_prob: float,
                     min_match: int = 1) -> list[Candidate]:  # fmt: skip
        """The branches `speculate`'s greedy path did not take: for every match length it
        considers, each child of the match node other than the most frequent one (kept while its
        probability is >= min_prob), followed greedily within the same budget; best score first
        (ties: the longer match)."""
        out: list[Candidate] = []
        for match_len, (node, extra), budget in _budgets(locations, max_tokens, factor, offset,
                                                         min_match):  # fmt: skip
            children = self._children[node]
            if extra or children is None:
                continue  # a leaf's continuation is unique: no alternative
            for token, child in children.items():
                prob = self._count[child] / self._count[node]
                if child == self._best[node] or prob < min_prob:
                    continue
                rest = self.follow((child, 0), budget - 1, min_prob, prob)
                out.append(Candidate([token, *rest.tokens], [prob, *rest.probs],
                                     prob + rest.score, match_len))  # fmt: skip
        out.sort(key=lambda c: (-c.score, -c.match_len))
        return out

    def speculate(self, locations: list[Location], max_tokens: int, factor: float, offset: float,
                  min_prob: float, min_match: int = 1) -> Candidate:  # fmt: skip
        """The best greedy path over match lengths: `locations[m - 1]` is where the context's
        last m tokens sit in the tree; a match of length m >= min_match may draft up to
        min(max_tokens, floor(factor * m + offset)) tokens. Highest score wins, ties go to the
        longer match."""
        best = Candidate()
        for match_len, loc, budget in _budgets(locations, max_tokens, factor, offset, min_match):
            draft = self.follow(loc, budget, min_prob)
            if draft.tokens and draft.score >= best.score:
                draft.match_len = match_len
                best = draft
        return best


def _budgets(locations: list[Location], max_tokens: int, factor: float, offset: float,
             min_match: int) -> Iterator[tuple[int, Location, int]]:  # fmt: skip
    """(match length m, its location, draft budget) for every m >= min_match whose budget
    min(max_tokens, floor(factor * m + offset)) is positive."""
    for match_len, loc in enumerate(locations, start=1):
        budget = min(max_tokens, math.floor(match_len * factor + offset + 1e-9))
        if match_len >= min_match and budget > 0:
            yield match_len, loc, budget
