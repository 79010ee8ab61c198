"""The run configuration: defaults < `--config run.yaml` < command-line flags, then validation.

Everything a run depends on is in `RunConfig`, so `--print-config` output fed back through
`--config` repeats a run exactly, and `results.json` records it. Validation is cheap and happens
before any model loads: a bad value is a one-line `BadInput`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from specbench_cli.choices import BACKENDS, DTYPES, ENGINES
from specbench_cli.errors import BadInput, shorten

DEFAULT_STRATEGIES = ("sps", "tas", "cactus")
DEFAULT_MAX_NEW_TOKENS = 128  # per turn, when neither the flag nor the suite sets it


@dataclass
class RunConfig:
    target: str = "default"  # "default" | .gguf file | model folder | cached hub id
    draft: str | None = None  # draft model; None -> model-free drafter
    drafter: str | None = None  # "model" | "ngram[:...]" | "suffix[:...]"; None -> by draft
    draft_length: str = "fixed"  # fixed | heuristic | confidence[:threshold=0.4]
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    suites: list[str] = field(default_factory=lambda: ["default"])
    limit: int | None = None  # the first N prompts of each category of each suite
    k: int = 4
    batch_size: int = 1  # prompts decoded together (groups in suite order)
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_new_tokens: int | None = None  # None -> the suite's default, else 128
    seed: int = 0
    dtype: str = "auto"
    trust_remote_code: bool = False
    chat_template: bool = True
    backend: str = "auto"  # verify kernels: auto | torch | cpu | cuda (auto: fastest available)
    warmup: int = 1  # untimed warm-up generations per engine
    rounds: int = 3  # times each group is decoded per contender; median timings (rounds.py)
    audit: bool = True  # divergence audit of lossy strategies (untimed)
    output: str | None = None  # run folder; None -> runs/<timestamp>
    server: str | None = None  # OpenAI-compatible endpoint of a serving engine (speculation on)
    baseline_server: str | None = None  # the same model served without speculation
    engine: str | None = None  # vllm | sglang | llamacpp: how to read the server's counters
    concurrency: int = 1  # requests in flight at once (server runs)
    device_map: str | None = None  # auto | balanced | sequential: one model over several devices
    max_memory: str | None = None  # per-device caps for --device-map, e.g. "0=20GiB,cpu=60GiB"
    tensor_parallel: bool = False  # transformers' tp_plan="auto" over the launched processes

    def token_budget(self, suite_default: int | None) -> int:
        """New tokens per turn: the flag, else the suite's `max_new_tokens`, else the default."""
        return self.max_new_tokens or suite_default or DEFAULT_MAX_NEW_TOKENS

    def effective_drafter(self) -> str:
        if self.server:
            return "server"  # the engine drafts, as its own flags say
        if self.drafter:
            return self.drafter
        return "model" if self.draft else "ngram"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["drafter"] = self.effective_drafter()
        return data


FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
# Every setting and the flag that sets it (the YAML key is the field name).
FLAGS = {
    "target": "--target", "draft": "--draft", "drafter": "--drafter",
    "draft_length": "--draft-length",
    "strategies": "--strategy", "suites": "--suite", "limit": "--limit", "k": "--k",
    "batch_size": "--batch-size",
    "temperature": "--temperature", "top_k": "--top-k", "top_p": "--top-p",
    "max_new_tokens": "--max-new-tokens", "seed": "--seed", "dtype": "--dtype",
    "trust_remote_code": "--trust-remote-code", "chat_template": "--chat-template",
    "backend": "--backend", "warmup": "--warmup", "rounds": "--rounds",
    "audit": "--audit", "output": "--output", "server": "--server",
    "baseline_server": "--baseline-server", "engine": "--engine",
    "concurrency": "--concurrency", "device_map": "--device-map", "max_memory": "--max-memory",
    "tensor_parallel": "--tensor-parallel",
}  # fmt: skip
MAX_K = 64  # the expected accepted run a/(1-a) passes 64 only above 98.5% acceptance per token


def load_yaml(path: Path) -> dict[str, Any]:
    from specbench_cli.registry import did_you_mean
    from specbench_cli.yaml_file import read_yaml

    data = read_yaml(path, f"--config {path}") or {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of settings at the top level")
    unknown = sorted((str(key) for key in set(data) - FIELDS), key=str)
    if unknown:
        known = ", ".join(sorted(FIELDS))
        raise BadInput(f"{path}: unknown setting {unknown[0]!r}{did_you_mean(unknown[0], FIELDS)} "
                       f"(settings: {known})")  # fmt: skip
    if "strategies" in data:
        data["strategies"] = [_strategy_entry(path, s) for s in _as_list(data["strategies"])]
    if "suites" in data:
        data["suites"] = _as_list(data["suites"])
    return data


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strategy_entry(path: Path, entry: Any) -> Any:
    """YAML strategies are `name`, `name:key=value` or {name: ..., key: value} mappings."""
    if isinstance(entry, dict) and "name" in entry:
        params = ",".join(f"{k}={v}" for k, v in entry.items() if k != "name")
        return f"{entry['name']}:{params}" if params else str(entry["name"])
    if isinstance(entry, str):
        return entry
    raise BadInput(f"{path}: strategy entries must be 'name:key=value' or a mapping with 'name'")


def build_config(yaml_path: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Merge defaults, the YAML file and the flags that were given (None means not given)."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(load_yaml(yaml_path))
    values.update({k: v for k, v in overrides.items() if v is not None and v != []})
    if values.get("server") and "strategies" not in values:
        values["strategies"] = []  # the engine's speculation replaces in-process strategies
    check_types(values)
    cfg = RunConfig(**values)
    validate(cfg)
    return cfg


def check_types(values: dict[str, Any]) -> None:
    """Each value has its field's type (a YAML `k: true` is not the integer 1): BadInput
    naming the flag otherwise."""
    hints = typing.get_type_hints(RunConfig)
    for key, value in values.items():
        hint = hints[key]
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if not any(_has_type(value, kind) for kind in kinds):
            wanted = " or ".join(_TYPE_WORDS[kind] for kind in kinds if kind is not type(None))
            raise BadInput(f"{FLAGS[key]} expects {wanted}, got {_shown(value)}")
        if float in kinds and isinstance(value, int):
            values[key] = float(value)  # YAML `temperature: 1`


_TYPE_WORDS = {int: "an integer", float: "a number", str: "text", bool: "true or false",
               list[str]: "a list of text"}  # fmt: skip


def _has_type(value: Any, kind: Any) -> bool:
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is float:
        return _num(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)  # list[str]


def _shown(value: Any) -> str:
    return shorten(json.dumps(value, default=str), 60)


def validate(cfg: RunConfig) -> None:
    """Value checks that need no model; raise BadInput with the flag name."""
    checks = [
        (1 <= cfg.k <= MAX_K, f"--k must be between 1 and {MAX_K} (got {cfg.k})"),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1 (got {cfg.batch_size})"),
        (math.isfinite(cfg.temperature) and cfg.temperature >= 0,
         f"--temperature must be a finite number >= 0 (got {cfg.temperature})"),
        (0 < cfg.top_p <= 1, f"--top-p must be in (0, 1] (got {cfg.top_p})"),
        (cfg.top_k >= 0, f"--top-k must be >= 0 (got {cfg.top_k})"),
        (cfg.max_new_tokens is None or cfg.max_new_tokens >= 1,
         f"--max-new-tokens must be >= 1 (got {cfg.max_new_tokens})"),
        (cfg.limit is None or cfg.limit >= 1, f"--limit must be >= 1 (got {cfg.limit})"),
        (cfg.warmup >= 0, f"--warmup must be >= 0 (got {cfg.warmup})"),
        (cfg.rounds >= 1, f"--rounds must be >= 1 (got {cfg.rounds})"),
        (cfg.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)} (got {cfg.dtype})"),
        (cfg.backend in BACKENDS,
         f"--backend must be one of {', '.join(BACKENDS)} (got {cfg.backend})"),
        (bool(cfg.strategies) or bool(cfg.server), "at least one --strategy is needed"),
        (bool(cfg.suites), "at least one --suite is needed"),
        (
            isinstance(cfg.concurrency, int)
            and not isinstance(cfg.concurrency, bool)
            and cfg.concurrency >= 1,
            f"--concurrency must be an integer >= 1 (got {cfg.concurrency})",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise BadInput(message)
    _check_placement(cfg)
    if cfg.output is not None:
        check_output(cfg.output)
    if cfg.server or cfg.baseline_server or cfg.engine or cfg.concurrency != 1:
        _validate_server(cfg)
        return
    rules = _check_strategies(cfg)
    _check_drafter(cfg, rules)
    if cfg.backend == "cuda":
        _check_cuda()


def _check_strategies(cfg: RunConfig) -> list[Any]:
    from specbench_cli.strategies import parse_strategy_spec

    rules = []
    for spec in cfg.strategies:
        try:
            strategy = parse_strategy_spec(spec)
        except ValueError as exc:
            raise BadInput(f"--strategy {spec}: {exc}") from None
        if getattr(strategy, "NEEDS_GREEDY_SAMPLING", False) and cfg.temperature > 0:
            raise BadInput(
                f"--strategy {spec} verifies by argmax, which matches only greedy decoding: it "
                f"needs --temperature 0 (got {cfg.temperature}); at T > 0 use sps"
            )
        rules.append(strategy)
    labels = [rule.label for rule in rules]
    if len(set(labels)) != len(labels):
        raise BadInput(f"--strategy given twice with the same settings: {labels}")
    return rules


def _check_drafter(cfg: RunConfig, rules: list[Any]) -> None:
    from specbench_cli.drafters import parse_drafter_spec
    from specbench_cli.drafters.draft_length import parse_draft_length

    try:
        drafter, params = parse_drafter_spec(cfg.effective_drafter())
    except ValueError as exc:
        raise BadInput(f"--drafter: {exc}") from None
    if drafter.NEEDS_MODEL and not cfg.draft:
        raise BadInput(f"--drafter {drafter.name} needs a draft model: pass --draft")
    _check_tree_pairing(cfg, rules, drafter, params)
    try:
        parse_draft_length(cfg.draft_length, drafter)
    except ValueError as exc:
        raise BadInput(f"--draft-length: {exc}") from None


def _validate_server(cfg: RunConfig) -> None:
    """Settings of a run against a serving engine; the servers themselves are checked later."""
    if not cfg.server:
        given = (
            "--baseline-server"
            if cfg.baseline_server
            else ("--engine" if cfg.engine else "--concurrency")
        )
        raise BadInput(f"{given} needs --server URL")
    if cfg.engine not in ENGINES:
        raise BadInput(f"--server needs --engine, one of {', '.join(ENGINES)} (got {cfg.engine})")
    for flag, url in (("--server", cfg.server), ("--baseline-server", cfg.baseline_server)):
        if url is not None and not _http_url(url):
            raise BadInput(f"{flag} {url}: expected an http:// or https:// URL")
    if cfg.baseline_server and cfg.baseline_server.rstrip("/") == cfg.server.rstrip("/"):
        raise BadInput("--baseline-server must be another server than --server")
    in_process = (
        ("--strategy", cfg.strategies),
        ("--draft", cfg.draft),
        ("--drafter", cfg.drafter),
    )
    for flag, value in in_process:
        if value:
            raise BadInput(
                f"{flag} applies to in-process runs; with --server the engine's own "
                "speculation runs, as its flags set it"
            )


def _http_url(url: Any) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url) if isinstance(url, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


def _check_placement(cfg: RunConfig) -> None:
    from specbench_cli.launch import current_launch
    from specbench_cli.placement import placement_problem

    problem = placement_problem(cfg.device_map, cfg.max_memory, cfg.tensor_parallel,
                                current_launch())  # fmt: skip
    if problem:
        raise BadInput(problem)


def _check_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise BadInput("--backend cuda: no CUDA device here (use auto, torch or cpu)")


def check_output(output: str) -> None:
    """Bad input when the run folder can obviously not be made: a file in its place or in its
    path, or a name the file system refuses. (Creating it is left to the run.)"""
    path = Path(output)
    try:
        if path.exists() and not path.is_dir():
            raise BadInput(f"--output {output}: exists and is a file, not a folder")
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise BadInput(f"--output {output}: {parent} is a file, not a folder")
        os.stat(path)  # a name too long for the file system fails here
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise BadInput(f"--output {shorten(output)}: {exc.strerror or exc}") from None


def _check_tree_pairing(cfg: RunConfig, rules: list[Any], drafter: Any,
                        params: dict[str, Any]) -> None:  # fmt: skip
    """Branching drafters need a tree rule; a rule that needs sampled siblings needs a drafter
    that samples them."""
    from specbench_cli.strategies import decodes_trees, rule_kinds

    if cfg.batch_size > 1 and any(decodes_trees(rule, params) for rule in rules):
        raise BadInput(f"--batch-size {cfg.batch_size}: tree strategies decode one sequence at "
                       "a time; use --batch-size 1 with specinfer, rrs, spectr or greedy trees")
    if params.get("branches", 1) <= 1:
        return
    trees = [rule for rule in rules if "tree" in rule_kinds(rule)]
    if not trees:
        raise BadInput(f"--drafter {cfg.effective_drafter()}: branches > 1 drafts trees, but no "
                       "--strategy verifies trees (specinfer, rrs, spectr, greedy)")
    samples = getattr(drafter, "SAMPLES_TREES", False) and cfg.temperature > 0
    for rule in trees:
        if getattr(rule, "SAMPLED_SIBLINGS", False) and not samples:
            raise BadInput(f"--strategy {rule.name} needs siblings sampled from the draft model "
                           f"(--drafter model at a temperature above 0), not deterministic "
                           f"branches from --drafter {drafter.name}")


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
