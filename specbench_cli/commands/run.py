"""`specbench run`: flags -> RunConfig -> runner.execute -> results table. No logic of its own."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from specbench_cli.console import err, out

RUN_EXAMPLES = """
\b
Examples:
  specbench run                    # default model and suite, n-gram drafter
  specbench run -s sps -s cactus:delta=0.5 --temperature 0.7
  specbench run --target ./big --draft ./small --suite translation --limit 10
  specbench run --config run.yaml --print-config   # settings as YAML
  specbench run --batch-size 4 --temperature 0 --strategy greedy   # batches of 4 prompts
  specbench run --draft ./small --drafter model:branches=2,depth=4,nodes=12 -s sps -s block -s rrs
  specbench run --drafter suffix --draft-length heuristic --temperature 0 --strategy greedy
  specbench run --resume runs/big                  # continue an interrupted run
  torchrun --nproc-per-node 4 -m specbench_cli run --suite chat   # 4 processes share it

  specbench run --server http://127.0.0.1:8080 --baseline-server http://127.0.0.1:8081 \\
      --engine llamacpp --concurrency 4            # a serving engine's speculation

Every setting has a flag and a key in --config files: the key is the flag's name with
underscores (--top-p: top_p), except --strategy and --suite, whose keys are the lists
strategies and suites.
"""


def run(
    target: Annotated[str | None, typer.Option(
        metavar="MODEL",
        help="Target model: 'default' (embedded SmolLM2-135M-Instruct), a .gguf file, a model "
             "folder or a cached hub id.")] = None,
    draft: Annotated[str | None, typer.Option(
        metavar="MODEL",
        help="Draft model (same forms as --target); selects the 'model' drafter.")] = None,
    drafter: Annotated[str | None, typer.Option(
        metavar="SPEC",
        help="Drafter: 'model[:branches=1,depth=0,nodes=0]', "
             "'ngram[:max_ngram=3,min_ngram=2,branches=1]' or 'suffix[:max_depth=24,"
             "max_spec_factor=2.0,max_spec_offset=0.0,min_token_prob=0.1,min_match=2,"
             "global=true]' "
             "(default: model if --draft is given, else ngram). branches > 1 drafts token trees "
             "for tree strategies (depth 0: --k; nodes 0: no budget); chain strategies in the "
             "same run use the chain.")] = None,
    draft_length: Annotated[str | None, typer.Option(
        metavar="POLICY",
        help="Draft length per step: fixed (default), heuristic (+2 after a fully accepted "
             "draft, -1 otherwise, within [1, k]) or confidence[:threshold=0.4] (a draft "
             "model stops below that top probability).")] = None,
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", "-s", metavar="SPEC",
        help="Acceptance strategy, 'name' or 'name:key=value,...'; repeat for several. Chain "
             "rules and tree rules (specinfer, rrs, spectr, greedy) can run side by side. "
             "See `specbench strategies`.")] = None,
    suite: Annotated[list[str] | None, typer.Option(
        "--suite", metavar="SUITE", help="Bundled suite name or a JSONL file; repeatable.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N prompts per suite.")] = None,
    k: Annotated[int | None, typer.Option(
        "--k", help="Tokens drafted per step (default 4).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Prompts decoded together, in groups in suite order (default 1); every "
             "contender decodes the same groups.")] = None,
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
        "--trust-remote-code/--no-trust-remote-code",
        help="Allow model code from the model folder (default: no).")] = None,
    backend: Annotated[str | None, typer.Option(
        help="Verification backend: auto (fastest available), torch (reference), cpu or cuda "
             "(compiled kernels).")] = None,
    chat_template: Annotated[bool | None, typer.Option(
        "--chat-template/--no-chat-template",
        help="Wrap prompts in the target's chat template (default), or feed plain text.")] = None,
    audit: Annotated[bool | None, typer.Option(
        "--audit/--no-audit",
        help="Measure the divergence of lossy strategies, untimed (default: on).")] = None,
    warmup: Annotated[int | None, typer.Option(
        help="Untimed warm-up generations per contender before measuring (default 1).")] = None,
    rounds: Annotated[int | None, typer.Option(
        help="Times each prompt is decoded under every contender, the contender order rotated "
             "each round; timings are the median over rounds (default 3).")] = None,
    output: Annotated[str | None, typer.Option(
        metavar="DIR",
        help="Run folder for results.json and records.jsonl (default runs/<timestamp>).")] = None,
    server: Annotated[str | None, typer.Option(
        help="Benchmark a serving engine: its OpenAI-compatible URL, speculation on "
             "(e.g. http://127.0.0.1:8080).")] = None,
    baseline_server: Annotated[str | None, typer.Option(
        help="The same model served without speculation; requests alternate between the two "
             "so the speedup is paired per prompt.")] = None,
    engine: Annotated[str | None, typer.Option(
        help="The engine behind --server: vllm, sglang or llamacpp (how its acceptance counts "
             "are read).")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="With --server: prompts in flight at once (default 1).")] = None,
    device_map: Annotated[str | None, typer.Option(
        metavar="MAP",
        help="Spread the target (and draft) over this process's GPUs and CPU with accelerate: "
             "auto, balanced or sequential (one process per node).")] = None,
    max_memory: Annotated[str | None, typer.Option(
        metavar="CAPS",
        help="Memory caps per device for --device-map, e.g. 0=20GiB,1=20GiB,cpu=60GiB.")] = None,
    tensor_parallel: Annotated[bool | None, typer.Option(
        "--tensor-parallel/--no-tensor-parallel",
        help="Split every layer over the processes of a torchrun launch (transformers' "
             "tp_plan=auto, model families that define one); they decode the prompts "
             "together.")] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="DIR",
        help="Continue the run in DIR (interrupted, or one that lost a process): run only the "
             "prompts some contender has not finished, with DIR's settings; give no "
             "others.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE",
        help="YAML file with the same settings; flags override it.")] = None,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="Print the effective configuration as YAML and exit.")] = False,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Show every column and full labels, however wide the table gets.")] = False,
) -> None:
    """Run the baseline and the strategies over suites and print the results table."""
    flags = dict(locals())  # first: the flags only
    from specbench_cli.config import build_config, to_yaml

    if resume is not None:
        from specbench_cli.distributed import resumed_config

        cfg = resumed_config(resume, {**flag_overrides(flags), "config": config})
    else:
        cfg = build_config(config, flag_overrides(flags))
    if print_config:
        from specbench_cli.runner import preflight

        preflight(cfg)  # suites and models are checked as a run would, nothing is loaded
        out.print(to_yaml(cfg), end="", highlight=False, markup=False)
        return
    _run(cfg, wide, resume)


def flag_overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """RunConfig values from `run`'s flags by name (None: not given; `config`, `print_config`,
    `wide` and `resume` are not settings)."""
    renamed = {"strategy": "strategies", "suite": "suites"}
    return {renamed.get(name, name): value for name, value in flags.items()
            if name not in ("config", "print_config", "wide", "resume")}


run.__doc__ = (run.__doc__ or "") + "\n" + RUN_EXAMPLES


def _run(cfg, wide: bool, resume: Path | None) -> None:
    from specbench_cli.distributed import execute_sharded
    from specbench_cli.launch import current_launch
    from specbench_cli.progress import NoProgress, open_progress
    from specbench_cli.report import print_results
    from specbench_cli.runner import execute
    from specbench_cli.views import acceptance_rows, acceptance_view

    launch = current_launch()
    with open_progress(err) if launch.rank == 0 else nullcontext(NoProgress()) as progress:
        if resume is not None or launch.distributed:
            outcome = execute_sharded(cfg, progress, resume)
        else:
            outcome = execute(cfg, progress)
    if outcome is None:  # a process other than rank 0: rank 0 reports
        return
    print_results(outcome.results, wide=wide)
    if acceptance_rows(outcome.results):
        out.print(acceptance_view(outcome.results))
    folder = outcome.folder
    err.print(f"results: {folder}/results.json, per-prompt records: {folder}/records.jsonl",
              highlight=False, soft_wrap=True)
    if outcome.results["status"] == "incomplete":
        err.print(f"incomplete: a process of the run was lost; "
                  f"{len(outcome.results.get('missing', []))} prompt(s) are missing; run them "
                  f"with specbench run --resume {folder}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if outcome.stopped_by:
        err.print(f"interrupted by {outcome.stopped_by.name}: the results cover the prompts "
                  f"that finished; continue with specbench run --resume {folder}",
                  highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(outcome.stopped_by.exit_code)
