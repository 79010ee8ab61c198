"""`specbench strategies`: the registered acceptance strategies and their parameters."""

from __future__ import annotations

from rich.table import Table

from specbench_cli.console import out


def strategies() -> None:
    """List acceptance strategies with their parameters and defaults."""
    from specbench_cli.strategies import available_strategies, strategy_class

    table = Table(title="acceptance strategies (use as --strategy name:key=value,...)",
                  title_justify="left")
    for col in ("name", "lossless", "parameters (defaults)", "description"):
        table.add_column(col)
    for name in available_strategies():
        cls = strategy_class(name)
        params = ", ".join(f"{k}={v}" for k, v in cls.PARAMS.items()) or "-"
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        table.add_row(name, "yes" if cls.LOSSLESS else "no", params, doc)
    out.print(table)
