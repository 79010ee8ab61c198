"""`specbench sweep`: `run`'s options, where grid settings and strategy parameters take lists.

The command's options are `run`'s own (derived from its signature, so the two never drift
apart), with `--k`, `--temperature`, `--top-k`, `--top-p` and strategy parameters taking comma
lists, plus `--batch-size` and `--resume`. No logic of its own: flags -> Sweep ->
`sweep.execute_sweep`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from specbench_cli.commands.run import flag_overrides
from specbench_cli.commands.run import run as run_command
from specbench_cli.console import err, out
from specbench_cli.errors import BadInput

SWEEP_EXAMPLES = """
Examples:

  specbench sweep --k 1,2,4,8 --strategy sps --strategy cactus:delta=0.25,0.5,1

  specbench sweep --k 2,4 --temperature 0,1 --limit 3 --output runs/k-sweep

  specbench sweep --config sweep.yaml              # k: [1, 2, 4], strategies: [{name: ...}]

  specbench sweep --resume runs/k-sweep            # continue an interrupted sweep

  specbench plot runs/k-sweep                      # figures and CSVs of the sweep
"""


def _list_option(flag: str, what: str) -> Any:
    return Annotated[str | None, typer.Option(
        flag, metavar="V[,V...]", help=f"{what}; a comma list sweeps it.")]  # fmt: skip


GRID_OPTIONS = {
    "k": _list_option("--k", "Tokens drafted per step (default 4)"),
    "temperature": _list_option("--temperature", "Sampling temperature, 0 = greedy (default 1.0)"),
    "top_k": _list_option("--top-k", "Top-k filter, 0 = off"),
    "top_p": _list_option("--top-p", "Top-p filter in (0, 1], 1 = off"),
    "batch_size": _list_option("--batch-size", "Prompts decoded together (default 1)"),
    "strategy": Annotated[list[str] | None, typer.Option(
        "--strategy", "-s", metavar="SPEC",
        help="Acceptance strategy, 'name' or 'name:key=v1,v2,...,key2=w1,...': values listed "
             "after a key are swept (every combination). Repeat for several.")],  # fmt: skip
}
EXTRA_OPTIONS = {
    "resume": Annotated[Path | None, typer.Option(
        "--resume", metavar="DIR",
        help="Continue the sweep in DIR: skip grid points and prompts already recorded. Takes "
             "the settings from DIR/sweep.yaml; give no other settings.")],  # fmt: skip
}


def sweep(**flags: Any) -> None:
    """Run the baseline and the strategies at every point of a grid of settings, models loaded
    once, into one run folder; print a summary with predicted and measured speedups."""
    from specbench_cli.launch import current_launch
    from specbench_cli.sweep import load_resumed
    from specbench_cli.sweep_grid import build_sweep

    if current_launch().distributed:
        raise BadInput("specbench sweep runs in one process; split the work over processes "
                       "with specbench run under torchrun, one run per grid point")
    resume = flags.pop("resume")
    axes = {axis: flags.pop(axis) for axis in ("k", "temperature", "top_k", "top_p",
                                                "batch_size")}
    strategies = flags.pop("strategy")
    settings = {k: v for k, v in flag_overrides(flags).items() if v not in (None, [])}
    if resume is not None:
        given = [k for k, v in {**axes, **settings}.items() if v is not None] + (
            ["strategies"] if strategies else []) + (["config"] if flags["config"] else [])
        if given:
            raise BadInput(f"--resume takes the settings of the sweep it continues; remove "
                           f"{', '.join(sorted(given))}")  # fmt: skip
        swept = load_resumed(resume)
    else:
        swept = build_sweep(flags["config"], settings, axes, strategies)
    if flags["print_config"]:
        import yaml

        out.print(yaml.safe_dump(swept.to_dict(), sort_keys=False), end="", highlight=False,
                  markup=False)  # fmt: skip
        return
    _sweep(swept, resume)


def _sweep(swept: Any, resume: Path | None) -> None:
    from specbench_cli.progress import open_progress
    from specbench_cli.sweep import execute_sweep
    from specbench_cli.views import sweep_view

    with open_progress(err) as progress:
        outcome = execute_sweep(swept, resume, progress)
    out.print(sweep_view(outcome.results))
    folder = outcome.folder
    err.print(f"results: {folder}/results.json, per-prompt records: {folder}/records.jsonl; "
              f"figures: specbench plot {folder}", highlight=False, soft_wrap=True)
    if outcome.stopped_by:
        err.print(f"interrupted by {outcome.stopped_by.name}: the results cover the prompts "
                  f"that finished; continue with specbench sweep --resume {folder}",
                  highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(outcome.stopped_by.exit_code)


def _signature() -> inspect.Signature:
    """`run`'s parameters with the grid options swapped in and the sweep's own added."""
    params = []
    for p in inspect.signature(run_command, eval_str=True).parameters.values():
        if p.name in EXTRA_OPTIONS:  # the sweep's own meaning of the option
            continue
        params.append(p.replace(annotation=GRID_OPTIONS[p.name]) if p.name in GRID_OPTIONS
                      else p)  # fmt: skip
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params += [inspect.Parameter(name, keyword, default=None, annotation=annotation)
               for name, annotation in EXTRA_OPTIONS.items()]  # fmt: skip
    return inspect.Signature(params)


sweep.__signature__ = _signature()  # type: ignore[attr-defined]
sweep.__doc__ = (sweep.__doc__ or "") + "\n" + SWEEP_EXAMPLES
