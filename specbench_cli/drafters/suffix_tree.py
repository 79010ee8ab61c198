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

A *location* is `(node, extra)`: the node of a string, or for a string inside a leaf's unique
continuation, the leaf and how many tokens past it (`extra`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Location = tuple["Node", int]


class Node:
    __slots__ = ("token", "depth", "count", "children", "best", "seq", "end")

    def __init__(self, token: int, depth: int, seq: list[int] | None, end: int) -> None:
        self.token = token  # the last token of this node's string
        self.depth = depth  # length of this node's string
        self.count = 1  # occurrences of the string
        self.children: dict[int, Node] | None = None  # None: a leaf (count 1)
        self.best: Node | None = None  # child with the largest count
        self.seq = seq  # leaf: the sequence holding its one occurrence
        self.end = end  # leaf: index in `seq` right after the string


@dataclass
class Candidate:
    """One continuation: tokens with their path probabilities; `score` = sum of `probs`, an
    estimate of the number of tokens the target will accept."""

    tokens: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    score: float = 0.0
    match_len: int = 0


class SuffixTree:
    """Substrings (length <= max_depth) of a set of growing token sequences, with counts."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.root = Node(-1, 0, None, 0)
        self.root.count = 0
        self.root.children = {}
        self.sequences: list[list[int]] = []
        self._repeated: list[Node] = []  # nodes of the newest sequence's repeated suffixes

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

    def repeated_suffixes(self) -> list[Node]:
        """Nodes of the newest sequence's suffixes of length 1, 2, ... that occurred before."""
        return self._repeated

    def _append(self, token: int) -> None:
        seq = self.sequences[-1]
        seq.append(token)
        end = len(seq)
        self.root.count += 1
        repeated: list[Node] = []
        created = False  # once s + token is new, every longer suffix + token is new too
        for parent in [self.root, *self._repeated]:
            if parent.depth >= self.max_depth:
                break
            child = None if created else parent.children.get(token)
            if child is None:
                child = Node(token, parent.depth + 1, seq, end)
                parent.children[token] = child
                if parent.best is None:
                    parent.best = child
                created = True
                continue
            child.count += 1
            if child.children is None:
                self._burst(child)
            if child.count > parent.best.count:
                parent.best = child
            repeated.append(child)
        self._repeated = repeated

    def _burst(self, leaf: Node) -> None:
        """A leaf's string got its second occurrence: give it its first child, the old
        occurrence's next token (unless that occurrence ends there or at max_depth)."""
        leaf.children = {}
        seq, end = leaf.seq, leaf.end
        leaf.seq = None
        if end < len(seq) and leaf.depth < self.max_depth:
            child = Node(seq[end], leaf.depth + 1, seq, end + 1)
            leaf.children[child.token] = child
            leaf.best = child

    # -- matching -------------------------------------------------------------------------

    def step(self, loc: Location, token: int) -> Location | None:
        """The location of (the string at `loc`) + token, or None if it does not occur."""
        node, extra = loc
        if node.children is None:  # inside a leaf's unique continuation
            pos = node.end + extra
            seq = node.seq
            if node.depth + extra < self.max_depth and pos < len(seq) and seq[pos] == token:
                return node, extra + 1
            return None
        child = node.children.get(token)
        return None if child is None else (child, 0)

    def match_suffixes(self, locations: list[Location], token: int) -> list[Location]:
        """Given the locations of the suffixes of lengths 1..M of some text, those of the text
        with `token` appended (lengths 1..M', M' <= M + 1)."""
        out: list[Location] = []
        for loc in [(self.root, 0), *locations]:
            nxt = self.step(loc, token)
            if nxt is None:  # a longer suffix + token cannot occur either
                break
            out.append(nxt)
        return out

    # -- drafting ---------------------------------------------------------------------------

    def follow(self, loc: Location, budget: int, min_prob: float) -> Candidate:
        """Greedy path below `loc`: repeatedly the most frequent next token, while the path
        probability (product of count ratios) stays >= min_prob, at most `budget` tokens."""
        node, extra = loc
        draft = Candidate()
        prob = 1.0
        while len(draft.tokens) < budget:
            if node.children is None:  # count 1 all the way down: probability unchanged
                pos = node.end + extra
                if node.depth + extra >= self.max_depth or pos >= len(node.seq):
                    break
                token = node.seq[pos]
                extra += 1
            else:
                child = node.best
                if child is None:
                    break
                prob *= child.count / node.count
                if prob < min_prob:
                    break
                node, extra, token = child, 0, child.token
            draft.tokens.append(token)
            draft.probs.append(prob)
            draft.score += prob
        return draft

    def speculate(self, locations: list[Location], max_tokens: int, factor: float, offset: float,
                  min_prob: float) -> Candidate:  # fmt: skip
        """The best greedy path over match lengths: `locations[m - 1]` is where the context's
        last m tokens sit in the tree; a match of length m may draft up to
        min(max_tokens, floor(factor * m + offset)) tokens. Highest score wins, ties go to the
        longer match."""
        best = Candidate()
        for match_len, loc in enumerate(locations, start=1):
            budget = min(max_tokens, math.floor(match_len * factor + offset + 1e-9))
            if budget <= 0:
                continue
            draft = self.follow(loc, budget, min_prob)
            if draft.tokens and draft.score >= best.score:
                draft.match_len = match_len
                best = draft
        return best
