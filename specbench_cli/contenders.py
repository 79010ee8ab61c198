"""The contenders of a run: the autoregressive baseline and one engine per strategy.

Every contender decodes with the same target model and sampling settings; each strategy gets its
own drafter instance built from the run's drafter spec (drafters keep per-sequence state), and
lossy strategies get the divergence audit as their step observer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specbench_cli.config import RunConfig
from specbench_cli.engine import Engine
from specbench_cli.results import BASELINE


@dataclass
class Contender:
    label: str  # strategy label, "baseline" for autoregressive
    drafter: str  # drafter label, "none" for the baseline
    engine: Engine


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
    from specbench_cli.sampling import SamplingConfig
    from specbench_cli.strategies import parse_strategy_spec

    sampling = SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p)
    eos = eos_ids(target)
    contenders = [Contender(BASELINE, "none", Engine(target.model, vocab, sampling, eos_ids=eos))]
    context = DraftContext(sampling, vocab, draft.model if draft else None)
    spec = cfg.effective_drafter()
    for strategy_spec in cfg.strategies:
        strategy = parse_strategy_spec(strategy_spec, backend=backend)
        audit = DivergenceAudit(strategy) if cfg.audit and not strategy.lossless else None
        engine = Engine(target.model, vocab, sampling, strategy, build_drafter(spec, context),
                        cfg.k, eos, observer=audit)  # fmt: skip
        contenders.append(Contender(strategy.label, spec, engine))
    return contenders


def strategy_info(contenders: list[Contender]) -> dict[str, dict[str, Any]]:
    """Registry name and parameters of each contender's strategy, by label."""
    info = {BASELINE: {"name": BASELINE, "params": {}}}
    for c in contenders[1:]:
        info[c.label] = {"name": c.engine.strategy.name, "params": c.engine.strategy.params}
    return info
