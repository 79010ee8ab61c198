"""Where specbench reads and writes on disk: the bundled data folders and the cache.

In a clone (and an editable install) `suites/` and `kernels/` sit beside the package; a wheel
install puts them under `<prefix>/share/specbench` (pyproject's data-files), which is where they
are looked up when the clone's folder is not there. The cache (converted GGUF weights, kernel
builds) lives under `$SPECBENCH_CACHE`, default `~/.cache/specbench`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_dir(name: str) -> Path:
    """`suites` or `kernels`: the clone's folder if present, else the installed copy."""
    clone = Path(__file__).resolve().parent.parent / name
    if clone.is_dir():
        return clone
    installed = Path(sys.prefix) / "share" / "specbench" / name
    return installed if installed.is_dir() else clone


def cache_dir(*parts: str) -> Path:
    """`$SPECBENCH_CACHE/<parts...>` (default `~/.cache/specbench`); not created here."""
    root = os.environ.get("SPECBENCH_CACHE") or "~/.cache/specbench"
    return Path(root).expanduser().joinpath(*parts)
