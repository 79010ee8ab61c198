"""`specbench run`: flags -> RunConfig -> runner.execute -> results table. No logic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from specbench_cli.console import err, out

RUN_EXAMPLES = """
Examples:

  specbench run                                    # default model, n-gram drafter, default suite

  specbench run --strategy sps --strategy cactus:delta=0.5 --temperature 0.7

  specbench run --target ./big-model --draft ./small-model --suite translation --limit 10

  specbench run --config run.yaml --print-config   # show the effective settings as YAML
"""


def run(
    target: Annotated[str | None, typer.Option(
        help="Target model: 'default' (embedded SmolLM2-135M-Instruct), a .gguf file, a model "
             "folder or a cached hub id.")] = None,
    draft: Annotated[str | None, typer.Option(
        help="Draft model (same forms as --target); selects the 'model' drafter.")] = None,
    drafter: Annotated[str | None, typer.Option(
        help="Drafter: 'model' or 'ngram[:max_ngram=3,min_ngram=2]' (default: model if --draft "
             "is given, else ngram).")] = None,
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", "-s",
        help="Acceptance strategy, 'name' or 'name:key=value,...'; repeat for several. "
             "See `specbench strategies`.")] = None,
    suite: Annotated[list[str] | None, typer.Option(
        "--suite", help="Bundled suite name or a JSONL file; repeatable.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N prompts per suite.")] = None,
    k: Annotated[int | None, typer.Option(
        "--k", help="Tokens drafted per step (default 4).")] = None,
    temperature: Annotated[float | None, typer.Option(
        help="Sampling temperature; 0 = greedy (default 1.0).")] = None,
    top_k: Annotated[int | None, typer.Option(help="Top-k filter, 0 = off.")] = None,
    top_p: Annotated[float | None, typer.Option(help="Top-p filter in (0, 1], 1 = off.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(
        help="New tokens per turn (default: the suite's, else 128).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed; a run is reproducible.")] = None,
    dtype: Annotated[str | None, typer.Option(
        help="auto, float32, bfloat16 or float16 (auto: fp32 on CPU, bf16 on GPU).")] = None,
    trust_remote_code: Annotated[bool | None, typer.Option(
        "--trust-remote-code", help="Allow model code from the model folder.")] = None,
    backend: Annotated[str | None, typer.Option(
        help="Verification backend: auto (fastest available), torch (reference), cpu or cuda "
             "(compiled kernels).")] = None,
    noise_mode: Annotated[str | None, typer.Option(
        help="Final-token noise: race (default; exact on every backend) or icdf (one uniform "
             "per step; cheaper, same law).")] = None,
    no_chat_template: Annotated[bool, typer.Option(
        "--no-chat-template", help="Feed prompts as plain text.")] = False,
    no_audit: Annotated[bool, typer.Option(
        "--no-audit", help="Skip the divergence audit of lossy strategies.")] = False,
    output: Annotated[str | None, typer.Option(
        help="Run folder for results.json and records.jsonl (default runs/<timestamp>).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML file with the same settings; flags override it.")] = None,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="Print the effective configuration as YAML and exit.")] = False,
) -> None:
    """Run the baseline and the strategies over suites and print the results table."""
    flags = dict(locals())  # first: the flags only
    from specbench_cli.config import build_config, to_yaml

    cfg = build_config(config, flag_overrides(flags))
    if print_config:
        out.print(to_yaml(cfg), end="", highlight=False, markup=False)
        return
    _run(cfg)


def flag_overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """RunConfig values from `run`'s flags by name (None: not given; `config` and
    `print_config` are not settings)."""
    renamed = {"strategy": "strategies", "suite": "suites"}
    values = {renamed.get(name, name): value for name, value in flags.items()
              if name not in ("config", "print_config", "no_chat_template", "no_audit")}
    values["chat_template"] = False if flags.get("no_chat_template") else None
    values["audit"] = False if flags.get("no_audit") else None
    return values


run.__doc__ = (run.__doc__ or "") + "\n" + RUN_EXAMPLES


def _run(cfg) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from specbench_cli.report import results_table
    from specbench_cli.results import BASELINE
    from specbench_cli.runner import execute
    from specbench_cli.views import acceptance_view

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("loading models", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        folder, data, interrupted = execute(cfg, progress)
    out.print(results_table(data))
    if any(r["strategy"] != BASELINE for r in data["results"]):
        out.print(acceptance_view(data))
    err.print(f"results: {folder}/results.json, per-prompt records: {folder}/records.jsonl")
    if interrupted:
        err.print("[yellow]interrupted[/yellow]: results cover the prompts that finished")
        raise typer.Exit(130)
