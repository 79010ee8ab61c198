"""The contenders of a run: the autoregressive baseline and one engine per strategy.

Every contender decodes with the same target model and sampling settings; each strategy gets its
own drafter instance built from the run's drafter spec and draft-length policy (drafters keep
per-sequence state) and its own `RunMemory` (what drafters keep across requests), and lossy
strategies get the divergence audit as their step observer. Tree rules decode with the tree
engine (`tree_engine.py`); so does `greedy`, which is both kinds, when the drafter proposes
branches. Chain rules use the drafter's chain proposal, so chain and tree contenders can run side
by side with one `--drafter` spec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from specbench_cli.config import RunConfig
from specbench_cli.drafters import RunMemory
from specbench_cli.engine import Engine
from specbench_cli.results import BASELINE


@dataclass
class Contender:
    label: str  # strategy label, "baseline" for autoregressive
    drafter: str  # drafter label, "none" for the baseline
    engine: Any  # Engine or TreeEngine
    shape: dict[str, Any] = field(default_factory=dict)  # kind, branches, depth, nodes
    memory: RunMemory | None = None  # kept by the drafters across requests; None: baseline


def tree_shape(drafter_params: dict[str, Any], k: int) -> dict[str, Any]:
    """What a tree contender drafts per step: branches per node, depth (the drafter's, else
    `--k`) and the node budget (the drafter's, else the largest tree of that shape)."""
    branches = drafter_params.get("branches", 1)
    depth = drafter_params.get("depth") or k
    if "nodes" in drafter_params:  # every node expanded, within a budget (the draft model)
        full = sum(branches**d for d in range(1, depth + 1))
        nodes = min(drafter_params["nodes"] or full, full)
    else:  # one path per branch (prompt lookup)
        nodes = branches * depth
    return {"kind": "tree", "branches": branches, "depth": depth, "nodes": nodes}


def draft_shape(strategy: Any, drafter_params: dict[str, Any], k: int) -> dict[str, Any]:
    """What a contender drafts per step: a chain of k, or the tree `tree_shape` describes."""
    from specbench_cli.strategies import decodes_trees

    if decodes_trees(strategy, drafter_params):
        return tree_shape(drafter_params, k)
    return {"kind": "chain", "branches": 1, "depth": k, "nodes": k}


def eos_ids(loaded: Any) -> tuple[int, ...]:
    """Every id that ends generation: the generation config's and the tokenizer's EOS."""
    ids = loaded.model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if loaded.tokenizer.eos_token_id is not None:
        ids.append(loaded.tokenizer.eos_token_id)
    return tuple(sorted(set(ids)))


def build_contenders(cfg: RunConfig, target: Any, draft: Any, vocab: int,
                     backend: str) -> list[Contender]:  # fmt: skip
    """The baseline first, then one contender per `cfg.strategies` entry, in order."""
    from specbench_cli.audit import DivergenceAudit
    from specbench_cli.drafters import DraftContext, build_drafter
    from specbench_cli.drafters.draft_length import with_draft_length
    from specbench_cli.sampling import SamplingConfig
    from specbench_cli.strategies import parse_strategy_spec

    sampling = SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p)
    eos = eos_ids(target)
    contenders = [Contender(BASELINE, "none", Engine(target.model, vocab, sampling, eos_ids=eos))]
    context = DraftContext(sampling, vocab, draft.model if draft else None)
    spec = cfg.effective_drafter()
    for strategy_spec in cfg.strategies:
        strategy = parse_strategy_spec(strategy_spec, backend=backend)
        own = dataclasses.replace(context, memory=RunMemory())  # never shared between contenders
        drafter = build_drafter(spec, own)
        shape = draft_shape(strategy, drafter.params, cfg.k)
        if shape["kind"] == "tree":  # trees set their own size: no length policy
            from specbench_cli.tree_engine import TreeEngine

            engine = TreeEngine(target.model, vocab, sampling, strategy, drafter, shape["depth"],
                                eos)  # fmt: skip
        else:
            audit = DivergenceAudit(strategy) if cfg.audit and not strategy.lossless else None
            drafter = with_draft_length(drafter, cfg.draft_length, cfg.k)
            engine = Engine(target.model, vocab, sampling, strategy, drafter, cfg.k, eos,
                            observer=audit)  # fmt: skip
        contenders.append(Contender(strategy.label, drafter_label(cfg), engine, shape,
                                    own.memory))  # fmt: skip
    return contenders


def drafter_label(cfg: RunConfig) -> str:
    """The drafter spec, plus the draft-length policy when it is not `fixed`."""
    spec = cfg.effective_drafter()
    return spec if cfg.draft_length == "fixed" else f"{spec}+{cfg.draft_length}"


def strategy_info(contenders: list[Contender]) -> dict[str, dict[str, Any]]:
    """Registry name, parameters and draft shape of each contender's strategy, by label."""
    info = {BASELINE: {"name": BASELINE, "params": {}, "shape": {}}}
    for c in contenders[1:]:
        info[c.label] = {"name": c.engine.strategy.name, "params": c.engine.strategy.params,
                         "shape": c.shape}  # fmt: skip
    return info
