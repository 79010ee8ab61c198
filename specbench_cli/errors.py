"""Error types and exit codes shared by every command.

`cli.main()` turns a `SpecbenchError` into one line on stderr and its `exit_code`; nothing else
in the package prints errors or calls `sys.exit`.
"""

from __future__ import annotations

EXIT_REGRESSION = 1  # `specbench compare` found a candidate worse than a threshold allows
EXIT_BAD_INPUT = 2  # bad flags, files, models or configuration


class SpecbenchError(Exception):
    """A problem the user can fix; reported as one line, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class BadInput(SpecbenchError):
    """Invalid flags, values, files or configuration."""


class ModelLoadError(SpecbenchError):
    """A target or draft model could not be found or loaded."""


class LostProcess(SpecbenchError):
    """A process of a data-parallel run died before decoding started; nothing was recorded."""

    exit_code = 1


def shorten(text: str, width: int = 80) -> str:
    """`text` cut to `width` characters with an ellipsis, for names quoted in one-line errors."""
    return text if len(text) <= width else text[: width - 3] + "..."
