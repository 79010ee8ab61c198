"""Where the bundled `suites/` and `kernels/` folders are.

In a clone (and an editable install) they sit beside the package; a wheel install puts them
under `<prefix>/share/specbench` (pyproject's data-files), which is where they are looked up when
the clone's folder is not there.
"""

from __future__ import annotations

import sys
from pathlib import Path


def data_dir(name: str) -> Path:
    """`suites` or `kernels`: the clone's folder if present, else the installed copy."""
    clone = Path(__file__).resolve().parent.parent / name
    if clone.is_dir():
        return clone
    installed = Path(sys.prefix) / "share" / "specbench" / name
    return installed if installed.is_dir() else clone
