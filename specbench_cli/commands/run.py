"""`specbench run`: flags -> RunConfig -> runner.execute -> results table. No logic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    from specbench_cli.config import build_config, to_yaml

    overrides = {
        "target": target, "draft": draft, "drafter": drafter, "strategies": strategy,
        "suites": suite, "limit": limit, "k": k, "temperature": temperature, "top_k": top_k,
        "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed, "dtype": dtype,
        "trust_remote_code": trust_remote_code, "output": output, "backend": backend,
        "chat_template": False if no_chat_template else None,
        "audit": False if no_audit else None,
    }
    cfg = build_config(config, overrides)
    if print_config:
        out.print(to_yaml(cfg), end="", highlight=False, markup=False)
        return
    _run(cfg)


run.__doc__ = (run.__doc__ or "") + "\n" + RUN_EXAMPLES


def _run(cfg) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from specbench_cli.report import results_table
    from specbench_cli.runner import execute

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("loading models", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        folder, data, interrupted = execute(cfg, progress)
    out.print(results_table(data))
    err.print(f"results: {folder}/results.json, per-prompt records: {folder}/records.jsonl")
    if interrupted:
        err.print("[yellow]interrupted[/yellow]: results cover the prompts that finished")
        raise typer.Exit(130)
