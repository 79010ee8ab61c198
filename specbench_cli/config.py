"""The run configuration: defaults < `--config run.yaml` < command-line flags, then validation.

Everything a run depends on is in `RunConfig`, so `--print-config` output fed back through
`--config` repeats a run exactly, and `results.json` records it. Validation is cheap and happens
before any model loads: a bad value is a one-line `BadInput`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from specbench_cli.choices import BACKENDS, DTYPES
from specbench_cli.errors import BadInput

DEFAULT_STRATEGIES = ("sps", "tas", "cactus")


@dataclass
class RunConfig:
    target: str = "default"  # "default" | .gguf file | model folder | cached hub id
    draft: str | None = None  # draft model; None -> model-free drafter
    drafter: str | None = None  # "model" | "ngram[:max_ngram=3,min_ngram=2]"; None -> by draft
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    suites: list[str] = field(default_factory=lambda: ["default"])
    limit: int | None = None  # prompts per suite
    k: int = 4
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
    audit: bool = True  # divergence audit of lossy strategies (untimed)
    output: str | None = None  # run folder; None -> runs/<timestamp>

    def effective_drafter(self) -> str:
        if self.drafter:
            return self.drafter
        return "model" if self.draft else "ngram"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["drafter"] = self.effective_drafter()
        return data


FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


def load_yaml(path: Path) -> dict[str, Any]:
    from specbench_cli.yaml_file import read_yaml

    data = read_yaml(path, f"--config {path}") or {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of settings at the top level")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        known = ", ".join(sorted(FIELDS))
        raise BadInput(f"{path}: unknown setting {unknown[0]!r} (settings: {known})")
    if "strategies" in data:
        data["strategies"] = [_strategy_entry(path, s) for s in _as_list(data["strategies"])]
    if "suites" in data:
        data["suites"] = [str(s) for s in _as_list(data["suites"])]
    return data


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strategy_entry(path: Path, entry: Any) -> str:
    """YAML strategies are `name`, `name:key=value` or {name: ..., key: value} mappings."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and "name" in entry:
        params = ",".join(f"{k}={v}" for k, v in entry.items() if k != "name")
        return f"{entry['name']}:{params}" if params else str(entry["name"])
    raise BadInput(f"{path}: strategy entries must be 'name:key=value' or a mapping with 'name'")


def build_config(yaml_path: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Merge defaults, the YAML file and the flags that were given (None means not given)."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(load_yaml(yaml_path))
    values.update({k: v for k, v in overrides.items() if v is not None and v != []})
    try:
        cfg = RunConfig(**values)
    except TypeError as exc:
        raise BadInput(f"bad configuration: {exc}") from None
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Value checks that need no model; raise BadInput with the flag name."""
    from specbench_cli.drafters import parse_drafter_spec
    from specbench_cli.strategies import parse_strategy_spec

    checks = [
        (isinstance(cfg.k, int) and cfg.k >= 1, f"--k must be an integer >= 1 (got {cfg.k})"),
        (_num(cfg.temperature) and cfg.temperature >= 0,
         f"--temperature must be >= 0 (got {cfg.temperature})"),
        (_num(cfg.top_p) and 0 < cfg.top_p <= 1, f"--top-p must be in (0, 1] (got {cfg.top_p})"),
        (isinstance(cfg.top_k, int) and cfg.top_k >= 0, f"--top-k must be >= 0 (got {cfg.top_k})"),
        (cfg.max_new_tokens is None or (isinstance(cfg.max_new_tokens, int)
                                        and cfg.max_new_tokens >= 1),
         f"--max-new-tokens must be >= 1 (got {cfg.max_new_tokens})"),
        (cfg.limit is None or (isinstance(cfg.limit, int) and cfg.limit >= 1),
         f"--limit must be >= 1 (got {cfg.limit})"),
        (isinstance(cfg.warmup, int) and cfg.warmup >= 0,
         f"warmup must be >= 0 (got {cfg.warmup})"),
        (cfg.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)} (got {cfg.dtype})"),
        (cfg.backend in BACKENDS,
         f"--backend must be one of {', '.join(BACKENDS)} (got {cfg.backend})"),
        (bool(cfg.strategies), "at least one --strategy is needed"),
        (bool(cfg.suites), "at least one --suite is needed"),
    ]
    for ok, message in checks:
        if not ok:
            raise BadInput(message)
    labels = []
    for spec in cfg.strategies:
        try:
            labels.append(parse_strategy_spec(spec).label)
        except ValueError as exc:
            raise BadInput(f"--strategy {spec}: {exc}") from None
    if len(set(labels)) != len(labels):
        raise BadInput(f"--strategy given twice with the same settings: {labels}")
    try:
        drafter, _ = parse_drafter_spec(cfg.effective_drafter())
    except ValueError as exc:
        raise BadInput(f"--drafter: {exc}") from None
    if drafter.NEEDS_MODEL and not cfg.draft:
        raise BadInput(f"--drafter {drafter.name} needs a draft model: pass --draft")
    if cfg.output is not None and Path(cfg.output).exists() and not Path(cfg.output).is_dir():
        raise BadInput(f"--output {cfg.output}: exists and is a file, not a folder")


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
