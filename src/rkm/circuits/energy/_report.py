"""The study's outputs: ``energy.csv``, the figure and the terminal summary."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ._fits import EXTRAPOLATION, MIN_SIZES, QUANTITIES, Crossover, Fit, comparisons, positive_number
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
    "time_per_sample_s": ("time per sample", "s"),
    "power_w": ("power", "W"),
    "energy_per_sample_j": ("energy per sample", "J"),
}
SIZE_LABEL = "size N (= visible = hidden units)"


def _one_size(rows: list[dict]) -> bool:
    return len({int(r["n"]) for r in rows}) == 1


def plot_study(rows: list[dict], fits: list[Fit], path: str | Path) -> Path:
    """The study's figure: log-log time, power and energy against N, one row of panels per operation,
    fits dashed over their range; for a study of one size (a trained model), bars of its numbers.

    Estimated energies (``--cpu-watts``) are drawn with open markers (hatched bars) and labelled;
    a series without values in a panel is named in its corner with its ``energy_source``.
    """
    from ... import plots, plotstyle

    with plotstyle.style():
        fig = _bars(rows) if _one_size(rows) else _scaling(rows, fits)
    plots.save(fig, path)
    return Path(path)


def _series(rows: list[dict]) -> list[tuple[str, int]]:
    return sorted({(r["system"], int(r["batch"])) for r in rows}, key=lambda x: (x[0] != CIRCUIT, x))


def _series_label(key: tuple[str, int], estimate: bool) -> str:
    return f"{key[0]}, batch {key[1]}" + (" (estimate)" if estimate else "")


def _missing_note(ax: Any, missing: list[str]) -> None:
    if missing:
        ax.text(0.98, 0.02, "\n".join(missing), transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                color="0.35")


def _scaling(rows: list[dict], fits: list[Fit]) -> Any:
    import matplotlib.pyplot as plt

    from ... import plotstyle

    operations = [op for op in OPERATIONS if any(r["operation"] == op for r in rows)]
    series = _series(rows)
    colours = {key: plt.cm.tab10(i % 10) for i, key in enumerate(series)}
    fig, axes = plt.subplots(len(operations), 3, figsize=(13, 3.6 * len(operations)), squeeze=False)
    fit_of = {(f.system, f.batch, f.operation, f.quantity): f for f in fits}
    for i, op in enumerate(operations):
        for j, quantity in enumerate(QUANTITIES):
            ax, missing = axes[i, j], []
            for key in series:
                chosen = [r for r in rows if (r["system"], int(r["batch"])) == key and r["operation"] == op]
                points = [(int(r["n"]), positive_number(r.get(quantity)), r["energy_source"]) for r in chosen]
                points = [p for p in points if p[1] is not None]
                if not points:
                    missing.append(f"{key[0]}, batch {key[1]}: "
                                   f"{', '.join(sorted({r['energy_source'] for r in chosen}))}")
                    continue
                estimate = quantity != "time_per_sample_s" and any(p[2] == ESTIMATE for p in points)
                ax.plot([p[0] for p in points], [p[1] for p in points], "o", color=colours[key],
                        label=_series_label(key, estimate),
                        markerfacecolor="none" if estimate else colours[key])
                fit = fit_of.get((key[0], key[1], op, quantity))
                if fit is not None:
                    grid = np.geomspace(fit.n_min, fit.n_max, 50)
                    ax.plot(grid, fit.predict(grid), "--", color=colours[key], linewidth=1,
                            label=f"fit $\\propto N^{{{fit.exponent:.2f}}}$")
            name, unit = _LABELS[quantity]
            ax.set(xlabel=SIZE_LABEL, ylabel=plotstyle.quantity(name, unit), title=f"{op}: {name}")
            ax.grid(True)
            plotstyle.log_axes(ax, "xy")
            _missing_note(ax, missing)
            if any(line.get_label().startswith("fit") for line in ax.lines):
                ax.legend(handles=[line for line in ax.lines if line.get_label().startswith("fit")])
    plotstyle.figure_legend(fig, list(axes.flat), [_series_label(key, estimated) for key in series
                                                   for estimated in (False, True)])
    return fig


def _bars(rows: list[dict]) -> Any:
    """One size: a panel per quantity, a group of bars per operation, a bar per system and batch with a value.

    A system without a value of a quantity (a digital one whose energy was not measured) says so in
    the legend."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ... import plotstyle

    operations = [op for op in OPERATIONS if any(r["operation"] == op for r in rows)]
    series = _series(rows)
    colours = {key: plt.cm.tab10(i % 10) for i, key in enumerate(series)}
    value = {((r["system"], int(r["batch"])), r["operation"], q): positive_number(r.get(q)) for r in rows
             for q in QUANTITIES}
    labels = {}
    for key in series:
        chosen = [r for r in rows if (r["system"], int(r["batch"])) == key]
        estimate = any(r["energy_source"] == ESTIMATE for r in chosen)
        absent = [_LABELS[q][0] for q in QUANTITIES if all(value[(key, op, q)] is None for op in operations)]
        sources = ", ".join(sorted({r["energy_source"] for r in chosen}))
        labels[key] = _series_label(key, estimate) + (f" ({', '.join(absent)}: {sources})" if absent else "")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), squeeze=False)
    for ax, quantity in zip(axes[0], QUANTITIES):
        shown = [key for key in series if any(value[(key, op, quantity)] is not None for op in operations)]
        width = 0.8 / max(1, len(shown))
        for s, key in enumerate(shown):
            xs = [o for o, op in enumerate(operations) if value[(key, op, quantity)] is not None]
            estimate = quantity != "time_per_sample_s" and "(estimate)" in labels[key]
            ax.bar([o + (s - (len(shown) - 1) / 2) * width for o in xs],
                   [value[(key, operations[o], quantity)] for o in xs], width, color=colours[key],
                   hatch="//" if estimate else None, edgecolor="white" if estimate else None, label=labels[key])
        name, unit = _LABELS[quantity]
        ax.set_xticks(range(len(operations)), operations)
        ax.set(xlabel="operation", ylabel=plotstyle.quantity(name, unit), title=name)
        ax.grid(True, axis="y")
        plotstyle.log_axes(ax, "y")
    row = rows[0]
    fig.suptitle(f"one machine: {row['n_visible']} visible x {row['n_hidden']} hidden units, k = {row['k']}")
    patches = [Patch(facecolor=colours[key], label=labels[key], hatch="//" if "(estimate)" in labels[key] else None,
                     edgecolor="white") for key in series]  # those without any value too
    fig.legend(handles=patches, loc="outside lower center", ncols=min(len(patches), 3))
    return fig


def _number(value: Any, unit: str) -> str:
    number = positive_number(value)
    return "-" if number is None else f"{number:.3g} {unit}"


def _numbers_table(rows: list[dict]) -> list[str]:
    """Each row's time per sample, power and energy per sample, as measured or computed."""
    lines = [f"{'system':<12} {'operation':<9} {'n_visible x n_hidden':>20} {'batch':>5}  {'time/sample':>12} "
             f"{'power':>10} {'energy/sample':>13}  energy source"]
    order = sorted(rows, key=lambda r: (OPERATIONS.index(r["operation"]), r["system"] != CIRCUIT, r["system"],
                                        int(r["batch"]), int(r["n"])))
    for r in order:
        shape = f"{r['n_visible']} x {r['n_hidden']}"
        lines.append(f"{r['system']:<12} {r['operation']:<9} {shape:>20} {int(r['batch']):>5}  "
                     f"{_number(r.get('time_per_sample_s'), 's'):>12} {_number(r.get('power_w'), 'W'):>10} "
                     f"{_number(r.get('energy_per_sample_j'), 'J'):>13}  {r['energy_source']}")
    return lines


def summary_text(study: Study, fits: list[Fit], cross: list[Crossover]) -> str:
    """The terminal summary: how energy was obtained, then fitted exponents with intervals and crossovers,
    or, where no power law could be fitted (one size, a trained model, too few sizes), each row's numbers."""
    lines = ["energy sources:"]
    lines += [f"  {name:<12} {text}" for name, text in study.meters.items()]
    lines.append("")
    sizes = sorted({int(r["n"]) for r in study.rows})
    if not fits:
        if len(sizes) == 1:
            lines.append("one size: no power law to fit; the numbers of each system and operation:")
        else:
            lines.append(f"no power-law fit: a fit needs {MIN_SIZES} sizes or more in its range (see --fit-min-n); "
                         f"this study has {len(sizes)} ({', '.join(map(str, sizes))}). The numbers:")
        return "\n".join(lines + _numbers_table(study.rows))
    lines.append(
        f"{'system':<12} {'operation':<9} {'batch':>5}  {'quantity':<20} {'exponent':>8}  "
        f"{'95% interval':<17} {'fit range (sizes)':<17} source"
    )
    for f in sorted(fits, key=lambda f: (f.operation, f.quantity, f.system != CIRCUIT, f.system, f.batch)):
        lines.append(
            f"{f.system:<12} {f.operation:<9} {f.batch:>5}  {f.quantity:<20} {f.exponent:>8.3f}  "
            f"{f'[{f.ci_low:.3f}, {f.ci_high:.3f}]':<17} {f'{f.n_min}..{f.n_max} ({f.points})':<17} {f.source}"
        )
    lines.append("")
    lines.append(f"crossovers of the fitted laws (circuit vs digital; reported where the exponents' 95% intervals do "
                 f"not overlap and N* lies within a factor {EXTRAPOLATION:g} of the fitted sizes):")
    found = {(c.operation, c.quantity, c.system, c.batch): c for c in cross}
    pairs = sorted(comparisons(fits), key=lambda p: (p[0].operation, p[0].quantity, p[0].system, p[0].batch))
    for f, answer in pairs:
        head = f"  {f.operation:<7} {f.quantity:<20} vs {f.system}, batch {f.batch:<4}: "
        c = found.get((f.operation, f.quantity, f.system, f.batch))
        if c is None:
            lines.append(head + (answer if isinstance(answer, str) else "not reported"))
            continue
        where = "inside the fitted sizes" if c.in_range else "extrapolated beyond the fitted sizes"
        side = "above" if c.circuit_lower_above else "below"
        lines.append(head + f"N* = {c.n_cross:.3g} ({where}); the circuit is lower {side} N*"
                     + (f"; {c.measured}" if c.measured else ""))
    if not pairs:
        lines.append("  none (need fits of the circuit and a digital system of the same quantity)")
    return "\n".join(lines)
