"""The engine's form of one verification step: raw target logits, each row's drafts as a list
(ragged), each row's noise as `(seed, counter)`, and per row `(accepted drafts, emitted token)`
back as lists (`Strategy.verify_rows`).

A driver without a direct entry turns the lists into the tensors of `Strategy.verify_logits`
(`padded_inputs`: drafts padded with 0 to the longest, `num_drafts` when ragged,
`Noise(seeds, counters)`) and reads the result back (`emitted_by_row`); the CPU twin takes the
lists straight to its kernel (`kernels.verify_rows`), with the same tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from specbench_cli.noise import Noise

if TYPE_CHECKING:
    from specbench_cli.sampling import SamplingConfig


def flat_drafts(drafts: list[list[int]], k: int) -> tuple[list[int], list[int]]:
    """(the B*k draft ids row by row, padded with 0; each row's count, or [] when every row
    drafted k)."""
    if all(len(d) == k for d in drafts):
        return [t for d in drafts for t in d], []
    return [t for d in drafts for t in d + [0] * (k - len(d))], [len(d) for d in drafts]


def padded_inputs(logits: torch.Tensor, drafts: list[list[int]], seeds: list[int],
                  counters: list[int], uses_noise: bool
                  ) -> tuple[torch.Tensor, torch.Tensor | None, Noise | None]:  # fmt: skip
    """(draft tokens `[B, k]`, `num_drafts` `[B]` or None, noise or None) as tensors, in
    one `torch.tensor` call: right after a forward pass each torch call runs with cold
    caches and costs tens of microseconds."""
    B, k = logits.shape[0], logits.shape[1] - 1
    ids, counts = flat_drafts(drafts, k)
    flat = torch.tensor(ids + counts + (seeds + counters if uses_noise else []),
                        dtype=torch.long, device=logits.device)  # fmt: skip
    x, rest = flat[: B * k].view(B, k), flat[B * k :]
    num_drafts, rest = (rest[:B], rest[B:]) if counts else (None, rest)
    return x, num_drafts, Noise(rest[:B], rest[B:]) if uses_noise else None


def emitted_by_row(result: Any) -> tuple[list[int], list[int]]:
    """(accepted drafts, emitted token) of each row of a `VerifyResult`: a row holds its
    accepted drafts, then its emitted token, then -1 padding, so one read of the tokens gives
    both (a second `.tolist()` costs as much as the first after a forward pass)."""
    accepted, emitted = [], []
    for row in result.tokens.tolist():
        a = len(row) - row.count(-1) - 1
        accepted.append(a)
        emitted.append(row[a])
    return accepted, emitted


def verify_rows_via_tensors(strategy: Any, target_logits: torch.Tensor,
                            draft_probs: torch.Tensor | None, drafts: list[list[int]],
                            sampling: SamplingConfig, seeds: list[int], counters: list[int]
                            ) -> tuple[list[int], list[int]]:  # fmt: skip
    """`Strategy.verify_rows` through `verify_logits` (no value checks: the caller's own model
    and drafter produced the inputs)."""
    x, num_drafts, noise = padded_inputs(target_logits, drafts, seeds, counters,
                                         strategy.uses_noise)  # fmt: skip
    return emitted_by_row(strategy.verify_logits(target_logits, draft_probs, x, sampling,
                                                 noise=noise, num_drafts=num_drafts,
                                                 validate=False))  # fmt: skip
