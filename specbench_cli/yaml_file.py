"""The one way specbench reads a YAML file (run configs, suite headers, compare gate files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specbench_cli.errors import BadInput, shorten


def read_yaml(path: Path, shown: str | None = None) -> Any:
    """The parsed document; a missing, unreadable, binary or invalid file is one line of
    `BadInput` naming the file (and the line, when the parser knows it)."""
    import yaml

    shown = shorten(shown or str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{shown}: no such file") from None
    except UnicodeDecodeError:
        raise BadInput(f"{shown}: not a text file (invalid UTF-8)") from None
    except OSError as exc:
        raise BadInput(f"{shown}: cannot read ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise BadInput(f"{shown}{where}: invalid YAML ({problem})") from None
    except ValueError as exc:  # e.g. an integer literal too long to convert
        raise BadInput(f"{shown}: invalid YAML value ({str(exc)[:80]})") from None
