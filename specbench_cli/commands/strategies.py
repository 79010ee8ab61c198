"""`specbench strategies`: the registered acceptance rules, chain and tree, and their parameters."""

from __future__ import annotations

from rich.table import Table

from specbench_cli.console import out


def strategies() -> None:
    """List acceptance strategies: kind (chain, tree), lossless flag, parameters and defaults."""
    from specbench_cli.strategies import available_strategies, rule_kinds, strategy_class

    table = Table(title="acceptance strategies (use as --strategy name:key=value,...)",
                  title_justify="left")
    for col in ("name", "verifies", "lossless", "tree drafts", "parameters (defaults)",
                "description"):
        table.add_column(col)
    for name in available_strategies():
        cls = strategy_class(name)
        kinds = rule_kinds(cls)
        params = ", ".join(f"{k}={v}" for k, v in cls.PARAMS.items()) or "-"
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        scheme = getattr(cls, "draft_scheme", "-") if "tree" in kinds else "-"
        table.add_row(name, " + ".join(kinds), "yes" if cls.LOSSLESS else "no",
                      scheme.replace("_", " "), params, doc)
    table.caption = ("verifies: chain (one drafted chain per step) or tree (several drafts per "
                     "position, one target pass over a token tree). tree drafts: how sibling "
                     "drafts must be drawn for the rule to keep its law.")
    out.print(table)
