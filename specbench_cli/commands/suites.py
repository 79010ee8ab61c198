"""`specbench suites`: list the bundled task suites, or show a few prompts of one.

Examples:
    specbench suites                      # table of bundled suites
    specbench suites show math --n 2      # the first two math prompts with their gold answers
    specbench suites show question.jsonl  # validate and preview your own file
"""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from specbench_cli.console import out
from specbench_cli.errors import BadInput

app = typer.Typer(
    help="List the bundled task suites, or show prompts from one (bundled name or file).",
    add_completion=False,
)

_MAX_SHOWN_CHARS = 1200  # long passages and code are cut in previews


@app.callback(invoke_without_command=True)
def list_suites(ctx: typer.Context) -> None:
    """List bundled suites with prompt counts, scorers and default max_new_tokens."""
    if ctx.invoked_subcommand is not None:
        return
    from specbench_cli.suites import bundled_suites, load_suite, suite_dir

    table = Table(title=f"Bundled suites ({suite_dir()})", title_justify="left")
    for column in ("suite", "prompts", "scorer", "max_new_tokens", "description"):
        table.add_column(
            column, justify="right" if column in ("prompts", "max_new_tokens") else "left"
        )
    for name in bundled_suites():
        suite = load_suite(name)
        table.add_row(
            name,
            str(len(suite.prompts)),
            suite.scorer or "-",
            str(suite.max_new_tokens) if suite.max_new_tokens else "-",
            suite.description,
        )
    out.print(table)
    out.print("Show prompts: specbench suites show NAME_OR_PATH [--n 3]", highlight=False)


@app.command("show")
def show(
    suite: str = typer.Argument(..., help="Bundled suite name or path to a JSONL/YAML suite file."),
    n: int = typer.Option(3, "--n", "-n", help="How many prompts to print (at least 1)."),
) -> None:
    """Print the first prompts of a suite (turns, references); validates the whole file."""
    from specbench_cli.suites import load_suite

    if n < 1:
        raise BadInput(f"--n must be at least 1, got {n}")

    loaded = load_suite(suite)
    header = Text()
    header.append(loaded.name, style="bold")
    header.append(
        f"  {len(loaded.prompts)} prompts, scorer {loaded.scorer or '-'}, "
        f"max_new_tokens {loaded.max_new_tokens or '-'}, source {loaded.source}"
    )
    out.print(header)
    if loaded.description:
        out.print(Text(loaded.description, style="dim"))
    for prompt in loaded.prompts[:n]:
        out.print()
        out.print(
            Text(f"[{prompt.id}] category: {prompt.category or loaded.name}", style="bold cyan")
        )
        for i, turn in enumerate(prompt.turns, start=1):
            label = f"turn {i}: " if len(prompt.turns) > 1 else "prompt: "
            out.print(Text(label, style="bold") + Text(_cut(turn)))
        if prompt.references:
            label = "reference: " if len(prompt.references) == 1 else "references: "
            shown = (
                prompt.references[0]
                if len(prompt.references) == 1
                else " | ".join(prompt.references)
            )
            out.print(Text(label, style="bold green") + Text(_cut(shown)))
        if "entry_point" in prompt.extra:
            out.print(Text("entry point: ", style="bold green") + Text(prompt.extra["entry_point"]))
            out.print(Text("test: ", style="bold green") + Text(_cut(prompt.extra["test"])))


def _cut(text: str) -> str:
    text = text.strip()
    if len(text) <= _MAX_SHOWN_CHARS:
        return text
    return text[:_MAX_SHOWN_CHARS] + f" ... [{len(text) - _MAX_SHOWN_CHARS} more characters]"
