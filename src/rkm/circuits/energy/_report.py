"""The study's outputs: ``energy.csv``, the figure and the terminal summary."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ._fits import QUANTITIES, Crossover, Fit, positive_number
from ._study import CIRCUIT, COLUMNS, ESTIMATE, OPERATIONS, Study

__all__ = ["write_csv", "read_csv", "plot_study", "summary_text"]


def write_csv(study: Study, path: str | Path) -> Path:
    """Write the rows as ``path`` (columns :data:`COLUMNS`; empty cells where nothing was measured)."""
    path = Path(path)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, restval="", extrasaction="raise")
        writer.writeheader()
        for row in study.rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def read_csv(path: str | Path) -> list[dict]:
    """Rows of an ``energy.csv`` as dicts of strings (as written)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


_LABELS = {
    "time_per_sample_s": "time per sample (s)",
    "power_w": "power (W)",
    "energy_per_sample_j": "energy per sample (J)",
}


def plot_study(rows: list[dict], fits: list[Fit], path: str | Path) -> Path:
    """Log-log time, power and energy against N, one row of panels per operation, fits dashed over their range.

    Estimated energies (``--cpu-watts``) are drawn with open markers and labelled; a
    series without values in a panel is named in its corner with its ``energy_source``.
    """
    import matplotlib.pyplot as plt

    from ... import plots

    operations = [op for op in OPERATIONS if any(r["operation"] == op for r in rows)]
    series = sorted({(r["system"], int(r["batch"])) for r in rows}, key=lambda x: (x[0] != CIRCUIT, x))
    colours = {key: plt.cm.tab10(i % 10) for i, key in enumerate(series)}
    fig, axes = plt.subplots(len(operations), 3, figsize=(15, 4 * len(operations)), squeeze=False)
    fit_of = {(f.system, f.batch, f.operation, f.quantity): f for f in fits}
    for i, op in enumerate(operations):
        for j, quantity in enumerate(QUANTITIES):
            ax, missing = axes[i, j], []
            for key in series:
                chosen = [r for r in rows if (r["system"], int(r["batch"])) == key and r["operation"] == op]
                points = [(int(r["n"]), positive_number(r.get(quantity)), r["energy_source"]) for r in chosen]
                points = [p for p in points if p[1] is not None]
                if not points:
                    missing.append(
                        f"{key[0]}, batch {key[1]}: {', '.join(sorted({r['energy_source'] for r in chosen}))}"
                    )
                    continue
                estimate = quantity != "time_per_sample_s" and any(p[2] == ESTIMATE for p in points)
                label = f"{key[0]}, batch {key[1]}" + (" (estimate)" if estimate else "")
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    "o",
                    color=colours[key],
                    label=label,
                    markerfacecolor="none" if estimate else colours[key],
                )
                fit = fit_of.get((key[0], key[1], op, quantity))
                if fit is not None:
                    grid = np.geomspace(fit.n_min, fit.n_max, 50)
                    ax.plot(
                        grid,
                        fit.predict(grid),
                        "--",
                        color=colours[key],
                        linewidth=1,
                        label=f"  fit N^{fit.exponent:.2f}",
                    )
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="N (= n_visible = n_hidden)",
                ylabel=_LABELS[quantity],
                title=f"{op}: {_LABELS[quantity].split(' (')[0]}",
            )
            ax.grid(True, which="major", alpha=0.3)
            if missing:
                ax.text(
                    0.98,
                    0.02,
                    "\n".join(missing),
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color="0.35",
                )
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    plots.save(fig, path)
    return Path(path)


def summary_text(study: Study, fits: list[Fit], cross: list[Crossover]) -> str:
    """The terminal summary: how energy was obtained, fitted exponents with intervals, crossovers."""
    lines = ["energy sources:"]
    lines += [f"  {name:<12} {text}" for name, text in study.meters.items()]
    lines.append("")
    lines.append(
        f"{'system':<12} {'operation':<9} {'batch':>5}  {'quantity':<20} {'exponent':>8}  "
        f"{'95% interval':<17} {'fit range':<12} source"
    )
    for f in sorted(fits, key=lambda f: (f.operation, f.quantity, f.system != CIRCUIT, f.system, f.batch)):
        interval = "n/a (2 points)" if math.isnan(f.ci_low) else f"[{f.ci_low:.3f}, {f.ci_high:.3f}]"
        lines.append(
            f"{f.system:<12} {f.operation:<9} {f.batch:>5}  {f.quantity:<20} {f.exponent:>8.3f}  "
            f"{interval:<17} {f'{f.n_min}..{f.n_max}':<12} {f.source}"
        )
    lines.append("")
    if cross:
        lines.append("crossovers of the fitted laws (circuit vs digital):")
        for c in sorted(cross, key=lambda c: (c.operation, c.quantity, c.system, c.batch)):
            where = "inside the fitted sizes" if c.in_range else "extrapolated"
            side = "above" if c.circuit_lower_above else "below"
            lines.append(
                f"  {c.operation:<7} {c.quantity:<20} vs {c.system}, batch {c.batch:<4}: N* = {c.n_cross:.3g} "
                f"({where}); the circuit is lower {side} N*" + (f"; {c.measured}" if c.measured else "")
            )
    else:
        lines.append("crossovers: none (need fits of the circuit and a digital system of the same quantity)")
    return "\n".join(lines)
