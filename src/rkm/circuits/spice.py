"""SPICE decks of a netlist and the ngspice circuit simulator that solves them.

:func:`to_spice` writes one sample of a :class:`~rkm.circuits.netlist.Netlist` as a
SPICE deck. ngspice (not part of rkm: ``apt-get install ngspice``) is the real circuit
simulator the explicit netlists are checked against.
:func:`simulate_ngspice` runs it in batch mode on the deck of :func:`to_spice`
(17 significant digits) and reads its binary raw file (float64, no digit lost to
printing): the ``.op`` node voltages and the power, taken from the sources'
branch currents. :func:`ngspice_relaxation_time` gives every free node a
capacitor to ground and measures a node's time constant in a transient.
``tests/test_ngspice.py`` holds the model to both: node voltages and power to
ngspice's ``.op`` to 1e-9 relative, relaxation times to its transients to 1e-3,
for offsets 0, 0.5 and 1, both directions, with and without layer scaling; it
is skipped when ngspice is not installed. ngspice is driven through its command
line rather than through PySpice or spicelib, which are GPL-3.0 (rkm is
Apache-2.0) and would bring more than the few lines that read a raw file.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rkm.errors import DataError, NgspiceNotFoundError, SimulationError

from ..core import _checks
from ..core.physics import NODE_CAPACITANCE
from .netlist import Netlist, node_conductance

__all__ = [
    "to_spice",
    "SpiceOperatingPoint",
    "simulate_ngspice",
    "ngspice_relaxation_time",
]


# --------------------------------------------------------------------------- #
# SPICE export
# --------------------------------------------------------------------------- #
def _spice_names(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = {"0", "gnd"}
    for name in names:
        s = name.replace("+", "_plus_").replace("-", "_minus_")
        s = re.sub(r"[^A-Za-z0-9_]", "_", s).lower()
        s = re.sub(r"_+", "_", s).strip("_") or "n"
        if s[0].isdigit():
            s = "n" + s
        base, k = s, 1
        while s in seen:
            s = f"{base}_{k}"
            k += 1
        seen.add(s)
        out.append(s)
    return out


def _spice_elements(net: Netlist, sample: int, title: str) -> tuple[list[str], list[str]]:
    """Title, comment, sources and resistors of one sample, and the SPICE node names."""
    if not -net.n_samples <= int(sample) < net.n_samples:
        raise DataError(
            f"sample must be in [0, {net.n_samples}) for this netlist; got {sample}"
        )
    names = _spice_names(list(net.free_names) + list(net.source_names))
    title_line = " ".join(str(title).split()) or "rkm pass"
    lines = [title_line, f"* sample {int(sample)}: {net.n_free} free nodes, "
             f"{net.n_sources} sources, {net.n_edges} resistors"]
    volts = net.source_voltages[int(sample)]
    for k in range(net.n_sources):
        node = names[net.n_free + k]
        lines.append(f"V_{node} {node} 0 DC {volts[k]:.17g}")
    for e in range(net.n_edges):
        na, nb = names[net.edges_a[e]], names[net.edges_b[e]]
        lines.append(f"R{e} {na} {nb} {1.0 / net.conductance[e]:.17g}")
    return lines, names


def to_spice(net: Netlist, sample: int = 0, title: str = "rkm pass") -> str:
    """Write one sample of the netlist as ngspice-compatible text.

    Every source node gets a DC voltage source to ground (node ``0``), every
    edge a resistor of resistance ``1/G``; the deck ends with ``.op`` and
    ``.end``. Run it with ``ngspice -b file.cir``, or with
    :func:`simulate_ngspice`. Free nodes not connected to any source make the
    SPICE matrix singular, as in :func:`~rkm.circuits.netlist.solve_netlist`.

    Parameters
    ----------
    net : Netlist
    sample : int
        Row of ``net.source_voltages`` to use.
    title : str
        Title line (first line of the deck).

    Returns
    -------
    str
    """
    lines, _ = _spice_elements(net, sample, title)
    return "\n".join(lines + [".op", ".end"]) + "\n"


# --------------------------------------------------------------------------- #
# ngspice
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class SpiceOperatingPoint:
    """DC operating point of one sample of a netlist, as ngspice computed it.

    Attributes
    ----------
    voltages : ndarray, shape (n_free,)
        Free node voltages, in the order of ``netlist.free_names``.
    power : float
        Dissipated power in the code convention ``1/2 sum_e G_e dV_e^2``, taken
        from the sources: ``1/2 sum_k V_k (-I_k)``, the power the sources
        deliver (ngspice's branch current ``I_k`` flows into a source's
        positive terminal).
    source_currents : ndarray, shape (n_sources,)
        ngspice's branch current ``I_k`` of each source, in the order of
        ``netlist.source_names``.
    """

    voltages: np.ndarray
    power: float
    source_currents: np.ndarray


_NGSPICE_INSTALL = (
    "install it (Debian/Ubuntu: `apt-get install ngspice`; macOS: `brew install "
    "ngspice`; others: https://ngspice.sourceforge.io), or pass its path as "
    "executable='/path/to/ngspice'"
)
# A log line with one of these means ngspice did not solve the deck as written: an
# input error, or a singular matrix that it then "solved" by adding conductances.
_NGSPICE_TROUBLE = re.compile(r"error|warning|singular|interrupted", re.IGNORECASE)


def _read_raw(data: bytes) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Plots of an ngspice binary raw file: ``[(plot name, {vector name: values})]``."""
    plots, pos = [], 0
    while pos < len(data):
        start = data.find(b"Binary:\n", pos)
        if start < 0:
            raise SimulationError("ngspice's raw file ends inside a header; rerun it.")
        text = data[pos:start].decode("ascii", "replace").splitlines()
        # "Key: value" lines, then one tab-indented "index name type" line per vector
        header = dict(ln.split(":", 1) for ln in text if ":" in ln and not ln.startswith("\t"))
        names = [ln.split()[1] for ln in text if ln.startswith("\t")]
        n_points = int(header["No. Points"])
        start += len(b"Binary:\n")
        stop = start + 8 * n_points * len(names)
        values = np.frombuffer(data[start:stop], dtype=np.float64)
        if values.size != n_points * len(names):
            raise SimulationError("ngspice's raw file is truncated; rerun it.")
        table = values.reshape(n_points, len(names))
        plots.append((header["Plotname"].strip(), {n: table[:, i] for i, n in enumerate(names)}))
        pos = stop
    return plots


def _run_ngspice(
    deck: str, executable: str, timeout: float
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Run ngspice in batch mode on ``deck``; the plots of its binary raw file."""
    path = shutil.which(executable)
    if path is None:
        raise NgspiceNotFoundError(
            f"ngspice was not found (no executable {executable!r} on PATH): {_NGSPICE_INSTALL}"
        )
    timeout = _checks.number("timeout", timeout, positive=True)
    with tempfile.TemporaryDirectory(prefix="rkm-ngspice-") as folder:
        work = Path(folder)
        (work / "deck.cir").write_text(deck)
        # -b batch, -n no user init file, -r binary raw file (float64), -o the log.
        command = [path, "-b", "-n", "-r", "out.raw", "-o", "log.txt", "deck.cir"]
        try:
            done = subprocess.run(
                command, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SimulationError(
                f"ngspice did not finish within {timeout:g} s; pass a larger timeout="
            ) from None
        log_file = work / "log.txt"
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        lines = [ln.strip() for ln in (log + "\n" + done.stderr).splitlines() if ln.strip()]
        trouble = [k for k, ln in enumerate(lines) if _NGSPICE_TROUBLE.search(ln)]
        raw_file = work / "out.raw"
        if done.returncode != 0 or trouble or not raw_file.exists():
            # the first complaint and what follows it, without the retries' progress notes
            first = trouble[0] if trouble else max(len(lines) - 3, 0)
            said = lines[first : first + 1] + [
                ln for ln in lines[first + 1 : first + 3] if not ln.startswith(("Note", "Trying"))
            ]
            raise SimulationError(
                f"ngspice failed on the deck (exit status {done.returncode}); it said: "
                + " | ".join(said)
            )
        return _read_raw(raw_file.read_bytes())


def _plot(plots: list[tuple[str, dict[str, np.ndarray]]], name: str) -> dict[str, np.ndarray]:
    for plot_name, vectors in plots:
        if plot_name == name:
            return vectors
    raise SimulationError(
        f"ngspice wrote no {name!r} plot (it wrote {[p for p, _ in plots]}); rerun it."
    )


def simulate_ngspice(
    netlist: Netlist, sample: int = 0, *, executable: str = "ngspice", timeout: float = 120.0
) -> SpiceOperatingPoint:
    """Solve one sample of a netlist with the ngspice circuit simulator (``.op``).

    ngspice runs in batch mode on the deck of :func:`to_spice` (values written
    with 17 significant digits) and writes its binary raw file, read back as
    float64, so no digit is lost to printing. Nothing of rkm's own solver is
    used: this is the independent check of :func:`~rkm.circuits.netlist.solve_netlist` and of the
    model's closed forms.

    Parameters
    ----------
    netlist : Netlist
    sample : int
        Row of ``netlist.source_voltages`` to simulate.
    executable : str
        Name or path of the ngspice program.
    timeout : float
        Seconds to wait for ngspice.

    Returns
    -------
    SpiceOperatingPoint
        Free node voltages and the dissipated power. The power comes from the
        branch currents of the sources, ``1/2 sum_k V_k (-I_k)`` (half the power
        they deliver, the code's 1/2 convention), not from the resistors and
        node voltages, so it checks :func:`~rkm.circuits.netlist.edge_power` independently.

    Raises
    ------
    NgspiceNotFoundError
        ngspice is not installed; the message says how to install it.
    SimulationError
        ngspice failed or reported a problem (its own message is quoted); a free
        node without a path to a source is reported as a singular matrix.
    DataError
        ``sample`` out of range.
    """
    deck = to_spice(netlist, sample)
    vectors = _plot(_run_ngspice(deck, executable, timeout), "Operating Point")
    names = _spice_names(list(netlist.free_names) + list(netlist.source_names))
    nf = netlist.n_free
    voltages = np.array([vectors[f"v({n})"][0] for n in names[:nf]])
    currents = np.array([vectors[f"i(v_{n})"][0] for n in names[nf:]])
    power = -0.5 * float(netlist.source_voltages[int(sample)] @ currents)
    return SpiceOperatingPoint(voltages=voltages, power=power, source_currents=currents)


def _one_over_e_time(time: np.ndarray, voltage: np.ndarray, final: float) -> float | None:
    """First time the deviation ``|V - final|`` falls to 1/e of its value at t = 0.

    The log of the deviation is interpolated linearly between the two time points
    that bracket the crossing, which is exact for an exponential decay. None if it
    never falls that far.
    """
    deviation = np.abs(voltage - final) / abs(voltage[0] - final)
    (below,) = np.nonzero(deviation <= math.exp(-1.0))
    if below.size == 0:
        return None
    i = int(below[0])
    log_a, log_b = math.log(deviation[i - 1]), math.log(deviation[i])
    return float(time[i - 1] + (-1.0 - log_a) / (log_b - log_a) * (time[i] - time[i - 1]))


def ngspice_relaxation_time(
    netlist: Netlist,
    node: int | str,
    capacitance: Any = NODE_CAPACITANCE,
    *,
    sample: int = 0,
    executable: str = "ngspice",
    timeout: float = 120.0,
) -> float:
    """Time constant of one free node, measured in an ngspice transient.

    Every free node gets a capacitor to ground. A node's capacitance to any node
    held at a fixed voltage (the substrate, a supply) acts the same, and in a pass
    of an RKM every neighbour of a free node is such a source, so ground stands for
    all of them. The named node starts away from equilibrium (``.ic``, at a voltage
    beyond every source; the other nodes start at their consistent values) and
    relaxes; the time constant is the time its deviation from the ``.op`` voltage
    takes to fall to 1/e. For a node whose neighbours are all sources (every node
    of an RKM pass) the decay is one exponential and this is its RC constant; a
    node coupled to other free nodes decays as a sum of exponentials, and this is
    its 1/e time.

    The transient (trapezoidal integration, at most 1/2000 of the window per
    step) starts on a window of ten times ``C / G`` (``G``: the node's total
    conductance in the netlist) and is rerun on a window ten times wider or
    narrower until the crossing lies in its last 19/20, at least a hundred steps
    from the start; the crossing between two time points is interpolated in the
    log of the deviation. For a single exponential the integration error sets the
    accuracy: 2e-6 relative on the first window (200 steps per time constant), at
    worst 1e-5.

    Parameters
    ----------
    netlist : Netlist
    node : int or str
        Index of the free node or its name in ``netlist.free_names`` (``'h0'``).
    capacitance : float or array_like of shape (n_free,)
        Capacitance of every free node to ground (code units; the model's
        relaxation times use 2).
    sample : int
        Row of ``netlist.source_voltages`` for the sources.
    executable, timeout
        As in :func:`simulate_ngspice` (the timeout is per ngspice run).

    Returns
    -------
    float
        The time constant, in the units of ``capacitance / conductance``.

    Raises
    ------
    NgspiceNotFoundError, SimulationError
        As in :func:`simulate_ngspice`; also when no window shows the crossing.
    DataError
        Unknown node, a node without conductance, a bad capacitance or ``sample``.
    """
    if isinstance(node, str):
        if node not in netlist.free_names:
            raise DataError(
                f"node {node!r} is not a free node of this netlist; free nodes: "
                f"{', '.join(netlist.free_names[:20])}"
                + (" ..." if netlist.n_free > 20 else "")
            )
        k = netlist.free_names.index(node)
    elif isinstance(node, (int, np.integer)) and 0 <= int(node) < netlist.n_free:
        k = int(node)
    else:
        raise DataError(
            f"node must be a free node's name or an index in [0, {netlist.n_free}); got {node!r}"
        )
    cap = _checks.float_array(capacitance, "capacitance")
    cap = np.broadcast_to(cap, (netlist.n_free,)) if cap.ndim == 0 else cap
    if cap.shape != (netlist.n_free,) or np.any(cap <= 0):
        raise DataError(
            f"capacitance must be > 0, one number or one per free node ({netlist.n_free},); "
            f"got shape {np.shape(capacitance)}"
        )
    conductance = node_conductance(netlist)[k]
    if conductance <= 0:
        raise DataError(
            f"node {netlist.free_names[k]} has no resistor, so it has no time constant; "
            "give it a nonzero weight or bias."
        )
    lines, names = _spice_elements(netlist, sample, "rkm relaxation")
    lines += [f"C_{n} {n} 0 {c:.17g}" for n, c in zip(names[: netlist.n_free], cap)]
    sources = netlist.source_voltages[int(sample)]
    top, bottom = float(sources.max(initial=0.0)), float(sources.min(initial=0.0))
    start = top + (top - bottom) + 1.0  # beyond every source, so away from equilibrium
    probe = f"v({names[k]})"
    lines += [f".ic {probe}={start:.17g}", f".save {probe}", ".op"]
    window = 10.0 * cap[k] / conductance
    for _ in range(8):
        deck = lines + [f".tran {window / 2000:.17g} {window:.17g} 0 {window / 2000:.17g}", ".end"]
        plots = _run_ngspice("\n".join(deck) + "\n", executable, timeout)
        final = float(_plot(plots, "Operating Point")[probe][0])
        transient = _plot(plots, "Transient Analysis")
        crossing = _one_over_e_time(transient["time"], transient[probe], final)
        if crossing is None:
            window *= 10.0
        elif crossing < window / 20:
            window = 10.0 * crossing
        else:
            return crossing
    raise SimulationError(
        f"ngspice's transient of node {netlist.free_names[k]} showed no clean 1/e crossing "
        f"in 8 windows (the last {window:g} long); check the netlist."
    )
