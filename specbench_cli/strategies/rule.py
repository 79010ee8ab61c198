"""What every acceptance rule has, chain or tree: a registry name, parameters, a lossless flag.

`Strategy` (`base.py`, one drafted chain per step) and `TreeStrategy` (`tree_base.py`, a tree of
drafts per step) both derive from `Rule`, which owns parameter parsing and checks, the stable
label used as a key in result files, and the description of a compiled kernel (none for rules
that run only on the PyTorch reference).
"""

from __future__ import annotations

from typing import Any, ClassVar

from specbench_cli.registry import coerce_params, spec_label

from .kernel_desc import KernelDesc


class Rule:
    """Base class: subclasses set `name`, `PARAMS`, `LOSSLESS` and a one-line docstring."""

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Any]] = {}
    LOSSLESS: ClassVar[bool] = False
    EXAMPLES: ClassVar[tuple[str, ...]] = ("",)  # parameter settings the kernel checks exercise

    def __init__(self, **params: Any) -> None:
        self.params = coerce_params(f"strategy {self.name!r}", self.PARAMS, params)
        self.check_params()

    def check_params(self) -> None:
        """Raise `ValueError` for out-of-range parameter values (subclasses override)."""

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"strategy {self.name!r}: {message}")

    @property
    def label(self) -> str:
        """Stable key for result files, e.g. `sps` or `cactus:delta=0.5` (see `spec_label`)."""
        return spec_label(self.name, self.params)

    @property
    def uses_noise(self) -> bool:
        """Whether verification consumes randomness (greedy and argmax-only rules do not)."""
        return True

    @property
    def lossless(self) -> bool:
        """Whether the emitted law equals the target for these parameter values."""
        return self.LOSSLESS

    @property
    def kernel(self) -> KernelDesc | None:
        """The compiled-kernel policy running this rule; None: the reference always runs."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"
