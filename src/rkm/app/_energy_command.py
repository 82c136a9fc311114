"""The ``rkm energy`` command: its arguments, and the run that writes the study's CSV, figure and summary."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..circuits.energy import (
    UPDATE_MODELS,
    Settings,
    crossovers,
    fit_rows,
    plot_study,
    run_study,
    summary_text,
    write_csv,
)
from ..core import units as si
from ..io import _files
from ._commands import HELP


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


UNIT_FLAGS = (
    ("conductance-unit", "conductance_s", "S", "siemens per code unit of conductance"),
    ("voltage-unit", "voltage_v", "V", "volts per code unit of voltage"),
    ("node-capacitance", "node_capacitance_f", "F", "capacitance of each node in farads"),
    ("settling-precision", "settling_precision", "EPS", "a pass lasts ln(1/EPS) slowest relaxation times"),
    ("comparator-energy", "comparator_energy_j", "J", "energy of one comparator decision in joules (0: not counted)"),
    ("comparison-energy", "comparison_energy_j", "J", "energy of one edge's comparison of its twins' readings in "
     "joules (0: not counted)"),
    ("comparison-time", "comparison_time_s", "S", "duration of an update's comparison step in seconds "
     "(0: not counted)"),
    ("pulse-energy", "pulse_energy_j", "J", "energy of one programming pulse in joules (0: not counted)"),
    ("pulse-time", "pulse_time_s", "S", "duration of an update's pulse step in seconds (0: not counted)"),
)
"""The flags of ``rkm energy`` that set a field of :class:`rkm.core.units.Units`: flag, field, metavar, help."""


def add_energy_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``rkm energy`` on the ``rkm`` command's sub-parsers."""
    d, u = Settings(), si.DEFAULT_UNITS
    p = subparsers.add_parser(
        "energy",
        help=HELP["energy"],
        description="The paper's energy study. For each size N (n_visible = n_hidden = N) it computes the "
        "resistor network's time, power and energy per pass, Gibbs step and update (on twin networks, with the "
        "learning step) in SI units, times the same "
        "operations as a plain RBM on the CPU (and CUDA when present) and measures their energy with RAPL or "
        "NVML where available. Writes DIR/energy.csv and DIR/energy.png and prints the fitted power laws and "
        "crossover sizes. See docs/energy.md.",
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        default=d.sizes,
        metavar="N,N,...",
        help=f"sizes N (default {','.join(map(str, d.sizes))})",
    )
    p.add_argument(
        "--batches",
        type=_int_list,
        metavar="B,B,...",
        help="digital batch sizes (default 1,64; --model: 1 and the run's batch_size); the circuit runs one sample "
        "per pass",
    )
    p.add_argument(
        "--operations",
        type=_name_list,
        default=d.operations,
        metavar="OP,...",
        help="pass, gibbs, update (default all)",
    )
    p.add_argument(
        "--devices",
        type=_name_list,
        default=None,
        metavar="DEV,...",
        help="cpu and/or cuda (default: cpu, plus cuda when available)",
    )
    p.add_argument(
        "--model",
        type=Path,
        metavar="RUN_DIR",
        help="a trained run: the circuit of its parameters and its training data, at its own shape",
    )
    p.add_argument(
        "--out", type=Path, default=Path("runs/energy"), metavar="DIR", help="output folder (default runs/energy)"
    )
    p.add_argument("--k", type=int, help="Gibbs steps of an update (default 1; --model: the model's k)")
    p.add_argument("--update-model", choices=UPDATE_MODELS, default=d.update_model,
                   help="the circuit's update: twin networks running the data pass and the chain at once (default), "
                   "or one network running them one after the other")
    p.add_argument("--pulse-fraction", type=float, default=d.pulse_fraction, metavar="F",
                   help="fraction of the devices pulsed per circuit update (default 1: every device once)")
    p.add_argument(
        "--samples", type=int, default=d.samples, help="clamped states averaged for the circuit power (default 32)"
    )
    p.add_argument(
        "--weight-std", type=float, default=d.weight_std, help="std of the synthetic weights, code units (default 1)"
    )
    p.add_argument(
        "--bias-std", type=float, default=d.bias_std, help="std of the synthetic biases, code units (default 1)"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the machines and states (default 0)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads of the CPU rows (default 1)")
    p.add_argument(
        "--min-time", type=float, default=d.min_time_s, metavar="S", help="timing per configuration (default 0.2 s)"
    )
    p.add_argument(
        "--energy-window",
        type=float,
        default=d.energy_window_s,
        metavar="S",
        help="metered window per configuration, when a meter exists (default 1 s)",
    )
    p.add_argument("--idle", type=float, default=d.idle_s, metavar="S", help="idle baseline measurement (default 2 s)")
    p.add_argument(
        "--cpu-watts",
        type=float,
        metavar="W",
        help="no RAPL: estimate CPU energy as this power x time (labelled 'estimate')",
    )
    p.add_argument(
        "--fit-min-n", type=int, metavar="N", help="fit the power laws over sizes >= N (default: the upper half)"
    )
    for flag, name, metavar, meaning in UNIT_FLAGS:
        default = getattr(u, name)
        p.add_argument(f"--{flag}", type=float, default=default, dest=name, metavar=metavar,
                       help=f"{meaning} (default {default:g})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_energy(args: argparse.Namespace) -> int:
    """Run ``rkm energy``: the study, ``energy.csv``, ``energy.png`` and the summary on stdout."""
    units = si.Units(**{name: getattr(args, name) for _, name, _, _ in UNIT_FLAGS})
    model: Any = None
    visible = None
    k = Settings.k if args.k is None else args.k
    batches = args.batches or Settings.batches
    if args.model is not None:
        from .run import load_run

        config, dataset, model = load_run(args.model)
        model.to("cpu", torch.float64)
        visible = dataset.train
        if args.k is not None:
            model.k = args.k
        k, batch = model.k, config["model"]["batch_size"]
        batches = args.batches or tuple(sorted({1, batch}))
        k_from = "--k" if args.k is not None else "the model's"
        batches_from = "--batches" if args.batches else "1 and the run's batch_size"
        print(f"model: {args.model} at update {model.epoch}, {model.n_visible} visible x {model.n_hidden} hidden; "
              f"k = {k} ({k_from}); digital batches {','.join(map(str, batches))} ({batches_from}); clamped "
              "states from its training data")
    settings = Settings(
        sizes=args.sizes,
        batches=batches,
        operations=args.operations,
        devices=args.devices,
        units=units,
        weight_std=args.weight_std,
        bias_std=args.bias_std,
        samples=args.samples,
        k=k,
        threads=args.threads,
        min_time_s=args.min_time,
        energy_window_s=args.energy_window,
        idle_s=args.idle,
        cpu_watts=args.cpu_watts,
        update_model=args.update_model,
        pulse_fraction=args.pulse_fraction,
        seed=args.seed,
    )
    if model is not None:
        settings = replace(settings, sizes=(model.n_visible,))
    _files.make_folder(_files.check_output_folder(args.out, "--out", ("energy.csv", "energy.png"), "rkm energy"),
                       "--out")
    started = time.perf_counter()
    study = run_study(settings, model=model, visible=visible, progress=not args.no_progress)
    fits = fit_rows(study.rows, args.fit_min_n)
    csv_path = write_csv(study, args.out / "energy.csv")
    png_path = plot_study(study.rows, fits, args.out / "energy.png")
    print(summary_text(study, fits, crossovers(fits, study.rows)))
    print(f"\n{len(study.rows)} rows in {time.perf_counter() - started:.1f} s")
    print(f"wrote {csv_path}\nwrote {png_path}")
    return 0
