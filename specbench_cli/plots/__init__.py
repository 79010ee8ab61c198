"""`specbench plot`: figures (PNG, matplotlib) and the plotted numbers (CSV beside each) from
one or more run folders.

- `speedup_vs_k`: speedup (95% CI) with the speedup model's prediction, and mean accepted
  tokens, against k per strategy.
- `acceptance_by_position`: the three per-position acceptance forms.
- `accepted_length_histogram`: accepted drafts per drafting step.
- `quality_vs_speedup` / `divergence_vs_speedup`: the trade-off, Pareto front marked.
- `speedup_vs_<setting>`: for every other swept setting or strategy parameter (batch size,
  temperature, `cactus.delta`, ...).

A strategy has one colour in every figure of one call (`style.Palette`).
"""

from __future__ import annotations

from pathlib import Path

from specbench_cli.errors import BadInput


def make_plots(run_dirs: list[Path], output: Path) -> list[Path]:
    """Write every figure the runs have data for; returns the files written."""
    from specbench_cli.plots.acceptance import acceptance_by_position, accepted_length_histogram
    from specbench_cli.plots.data import load_points, strategy_without, varying
    from specbench_cli.plots.speed import speedup_vs, speedup_vs_k
    from specbench_cli.plots.style import Palette
    from specbench_cli.plots.tradeoff import divergence_vs_speedup, quality_vs_speedup

    points = load_points(run_dirs)
    if not points:
        raise BadInput("nothing to plot: the results hold no strategy rows (only a baseline?)")
    axes = [a for a in varying(points) if a != "k"]
    labels = {(p.name, p.strategy) for p in points}
    labels |= {(p.name, strategy_without(p, a)) for p in points for a in axes}
    palette = Palette(labels)
    files = speedup_vs_k(points, palette, output)
    files += acceptance_by_position(points, palette, output)
    files += accepted_length_histogram(points, palette, output)
    files += quality_vs_speedup(points, palette, output)
    files += divergence_vs_speedup(points, palette, output)
    for axis in axes:
        files += speedup_vs(points, axis, palette, output)
    return files
