"""Power-law fits of the study's rows, and where the circuit's law and a digital system's cross."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import DataError
from ._study import CIRCUIT

__all__ = ["Fit", "Crossover", "MIN_SIZES", "EXTRAPOLATION", "fit_power_law", "fit_rows", "compare", "comparisons",
           "crossovers"]

QUANTITIES = ("time_per_sample_s", "power_w", "energy_per_sample_j")

MIN_SIZES = 3
"""Distinct sizes a power law is fitted to at least: two points fix a line and leave nothing to
estimate its uncertainty from; three give one residual degree of freedom and a 95% interval."""

EXTRAPOLATION = 10.0
"""How far past the sizes both fits cover a crossover is still reported (as an extrapolation), as a factor."""


@dataclass(frozen=True)
class Fit:
    """A power law ``y = prefactor * N^exponent`` fitted to one series of rows."""

    system: str
    operation: str
    batch: int
    quantity: str
    source: str
    exponent: float
    ci_low: float
    ci_high: float
    prefactor: float
    n_min: int
    n_max: int
    points: int

    def predict(self, n: Any) -> np.ndarray:
        """The fitted value at size(s) ``n``."""
        return self.prefactor * np.asarray(n, dtype=float) ** self.exponent


def fit_power_law(
    n: Sequence[float], y: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Least-squares fit of ``log y = log a + b log N``: ``(b, b_low, b_high, a)``.

    The interval is the two-sided Student-t interval of the slope at ``confidence``
    (NaN with two points, which leave no residual degree of freedom; the slope itself, 0, where
    every value is the same, as an estimate at a constant power is).
    """
    from scipy import stats

    sizes, values = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    if sizes.size < 2 or np.unique(sizes).size < 2 or np.any(sizes <= 0) or np.any(values <= 0):
        raise DataError("a power-law fit needs at least two distinct sizes and positive values.")
    if sizes.size > 2 and np.ptp(values) == 0:
        return 0.0, 0.0, 0.0, float(values[0])
    result = stats.linregress(np.log(sizes), np.log(values))
    if sizes.size > 2:
        half = float(stats.t.ppf(0.5 + confidence / 2, sizes.size - 2) * result.stderr)
    else:
        half = math.nan
    slope = float(result.slope)
    return slope, slope - half, slope + half, math.exp(result.intercept)


def positive_number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _default_fit_min(rows: list[dict]) -> int:
    sizes = sorted({int(r["n"]) for r in rows})
    return sizes[(len(sizes) - 1) // 2] if len(sizes) >= 4 else sizes[0]


def fit_rows(rows: list[dict], min_n: int | None = None) -> list[Fit]:
    """Power-law fits of time per sample, power and energy per sample, per system, operation and batch.

    Only rows with ``n >= min_n`` count (default: the larger half of the sizes, from the
    median size up; all of them when there are fewer than four); a series is fitted only where it
    has values at :data:`MIN_SIZES` distinct sizes or more (energy and power only where they
    exist), and every fit carries its rows' ``energy_source``.
    """
    if not rows:
        return []
    min_n = _default_fit_min(rows) if min_n is None else min_n
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["system"], row["operation"], int(row["batch"])), []).append(row)
    out = []
    for (system, op, batch), series in groups.items():
        for quantity in QUANTITIES:
            measured = [(int(r["n"]), positive_number(r.get(quantity))) for r in series if int(r["n"]) >= min_n]
            points = [(n, y) for n, y in measured if y is not None]
            if len({n for n, _ in points}) < MIN_SIZES:
                continue
            sources = sorted({r["energy_source"] for r in series})
            if quantity == "time_per_sample_s":
                source = "timed" if system != CIRCUIT else "circuit model"
            else:
                source = "/".join(sources)
            b, lo, hi, a = fit_power_law([n for n, _ in points], [y for _, y in points])
            out.append(
                Fit(
                    system,
                    op,
                    batch,
                    quantity,
                    source,
                    b,
                    lo,
                    hi,
                    a,
                    min(n for n, _ in points),
                    max(n for n, _ in points),
                    len(points),
                )
            )
    return out


@dataclass(frozen=True)
class Crossover:
    """Where the circuit's fitted power law meets a digital system's, for one quantity."""

    operation: str
    quantity: str
    system: str
    batch: int
    n_cross: float
    in_range: bool
    circuit_lower_above: bool
    measured: str = ""


def _measured_comparison(rows: list[dict], operation: str, quantity: str, system: str, batch: int) -> str:
    """Which of the circuit and ``system`` is lower at each size both measured, in words."""

    def values(name: str, b: int) -> dict[int, float]:
        chosen = (r for r in rows if r["system"] == name and r["operation"] == operation and int(r["batch"]) == b)
        found = {int(r["n"]): positive_number(r.get(quantity)) for r in chosen}
        return {n: y for n, y in found.items() if y is not None}

    circuit, other = values(CIRCUIT, 1), values(system, batch)
    common = sorted(n for n in circuit if n in other)
    if not common:
        return ""
    lower = [circuit[n] < other[n] for n in common]
    span = f"{len(common)} sizes {common[0]}..{common[-1]}"
    if all(lower) or not any(lower):
        return f"measured: circuit {'lower' if lower[0] else 'higher'} at all {span}"
    changes = [f"{a}..{b}" for a, b, x, y in zip(common, common[1:], lower, lower[1:]) if x != y]
    return f"measured: the order changes between N = {', '.join(changes)} ({span})"


def _determined(fit: Fit) -> bool:
    return fit.points >= MIN_SIZES and math.isfinite(fit.ci_low) and math.isfinite(fit.ci_high)


def compare(circuit: Fit, other: Fit, rows: list[dict] | None = None) -> Crossover | str:
    """Where the circuit's law ``circuit`` and a digital law ``other`` of the same quantity cross, or why
    no crossover is reported.

    A crossover ``N* = (a_other / a_circuit)^(1 / (b_circuit - b_other))`` is reported only where
    both fits are determined (at least :data:`MIN_SIZES` sizes, a finite interval), their 95%
    intervals of the exponent do not overlap (otherwise the laws may be parallel, and ``N*`` is
    anything), and ``N*`` lies within a factor :data:`EXTRAPOLATION` of the sizes both fits
    cover; ``in_range`` says whether it lies inside them. It is computed in logarithms, so no
    pair of fits overflows.

    Parameters
    ----------
    circuit : Fit
        The circuit's fit (batch 1).
    other : Fit
        A digital system's fit of the same operation and quantity.
    rows : list of dict, optional
        The study's rows; with them, ``measured`` also says which system was lower at each size
        both were measured at.

    Returns
    -------
    Crossover or str
        The crossover, or why none is reported, in words.
    """
    if not (_determined(circuit) and _determined(other)):
        return f"not determined (a fit needs {MIN_SIZES} sizes or more and a finite interval)"
    if circuit.ci_low <= other.ci_high and other.ci_low <= circuit.ci_high:
        return (f"the exponents are not distinguishable ({circuit.exponent:.3g} [{circuit.ci_low:.3g}, "
                f"{circuit.ci_high:.3g}] and {other.exponent:.3g} [{other.ci_low:.3g}, {other.ci_high:.3g}] overlap)")
    low, high = max(circuit.n_min, other.n_min), min(circuit.n_max, other.n_max)
    log_n = (math.log(other.prefactor) - math.log(circuit.prefactor)) / (circuit.exponent - other.exponent)
    lower_above = circuit.exponent < other.exponent
    if not math.log(max(1.0, low / EXTRAPOLATION)) <= log_n <= math.log(high * EXTRAPOLATION):
        below = log_n < math.log(low)
        side = "lower" if lower_above == below else "higher"
        return (f"no crossover within a factor {EXTRAPOLATION:g} of the fitted sizes {low}..{high}: the circuit's "
                f"law is {side} throughout")
    n_cross = math.exp(log_n)
    measured = _measured_comparison(rows, other.operation, other.quantity, other.system, other.batch) if rows else ""
    return Crossover(other.operation, other.quantity, other.system, other.batch, n_cross, low <= n_cross <= high,
                     lower_above, measured)


def comparisons(fits: Iterable[Fit], rows: list[dict] | None = None) -> list[tuple[Fit, Crossover | str]]:
    """Every digital fit with the circuit fit (batch 1) of the same operation and quantity, and :func:`compare`'s
    answer for the pair.

    Parameters
    ----------
    fits : iterable of Fit
        The study's fits (:func:`fit_rows`).
    rows : list of dict, optional
        The study's rows, passed to :func:`compare`.

    Returns
    -------
    list of (Fit, Crossover or str)
        One pair per digital fit that has a circuit fit to compare with.
    """
    fits = list(fits)
    circuit = {(f.operation, f.quantity): f for f in fits if f.system == CIRCUIT}
    return [(f, compare(circuit[(f.operation, f.quantity)], f, rows)) for f in fits
            if f.system != CIRCUIT and (f.operation, f.quantity) in circuit]


def crossovers(fits: Iterable[Fit], rows: list[dict] | None = None) -> list[Crossover]:
    """The crossovers :func:`compare` reports between the circuit and every digital fit of the same quantity.

    ``in_range`` says whether ``N*`` lies inside the sizes both fits cover (otherwise it is an
    extrapolation, within a factor :data:`EXTRAPOLATION`); ``circuit_lower_above`` whether the
    circuit is the lower one for ``N > N*``. With ``rows``, ``measured`` also says which one was
    lower at each size both were measured at, which the fits' range may leave out.
    """
    return [found for _, found in comparisons(fits, rows) if isinstance(found, Crossover)]
