"""How a compiled kernel runs a rule: its policy id and parameters (`kernels/verify.h`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelDesc:
    """How the compiled kernels run a rule: its policy id in `kernels/verify.h` (`enum
    Strategy`) and its parameters in the kernel's argument block."""

    policy: int
    delta: float = 0.0
    tas_eps: float = 0.0
    tas_alpha: float = 0.0
    interp_alpha: float = 0.0
    topk: int = 1
    bonus_argmax: bool = False
    scans_rows: bool = False  # reads every row q[0..k] (True) or only the drafts' and row a
    extra_rows: int = 0  # rows of q read once more (a second pass), for the bandwidth figure

    def binding_args(self) -> tuple[float, float, float, float, int, bool]:
        return (self.delta, self.tas_eps, self.tas_alpha, self.interp_alpha, self.topk,
                self.bonus_argmax)  # fmt: skip
