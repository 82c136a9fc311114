"""The ``rkm`` command: train, generate, reconstruct, evaluate, plot, datasets.

Errors a user can make (argument errors included) end with one line ``rkm: error: ...`` and
exit status 2; Ctrl-C during training leaves a resumable save point and exits with status
130, and Ctrl-C before training began exits with status 130 quietly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from .. import hyperparams
from ..compat import pickles
from ..errors import ConfigError, RKMError
from . import sweep
from ._commands import HELP, folder, top_parser
from ._energy_command import add_energy_parser, cmd_energy
from ._run_commands import cmd_evaluate, cmd_generate, cmd_reconstruct
from ._words import translate


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``minimum`` to :data:`rkm.hyperparams.MAX_COUNT` (int64 counters)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        if value > hyperparams.MAX_COUNT:
            raise argparse.ArgumentTypeError(f"must be an integer <= 2^63 - 1, got {text!r}")
        return value

    return parse


def _shown_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "unset"
    return str(value).removeprefix("torch.")


def _flag_help(setting: hyperparams.Setting) -> str:
    """The flag's help: what it sets, its choices, its default and, where it differs, the constructor's default."""
    text = setting.help
    if setting.choices is not None:
        text += f": {', '.join(setting.choices())}"
    text += f" (default {_shown_default(setting.config_default)}"
    if setting.differs:
        text += f"; the Python constructor's: {setting.default_text}"
    return text + ")"


def _add_flags(parser: argparse.ArgumentParser, table: str) -> None:
    """One flag per configuration key of ``table`` (``rkm.hyperparams``); a switch is ``--NAME`` / ``--no-NAME``."""
    group = parser.add_argument_group(f"[{table}] settings (override the config file)")
    for setting in hyperparams.section(table):
        if not setting.in_config or not setting.cli_flag:
            continue
        dest, flag = f"{table}.{setting.name}", f"--{setting.cli_flag}"
        if setting.kind is bool:
            group.add_argument(flag, dest=dest, nargs="?", const="true", default=None, metavar="BOOL",
                               help=_flag_help(setting) + f"; {flag} alone means true")
            group.add_argument(f"--no-{setting.cli_flag}", dest=dest, action="store_const", const="false",
                               help=f"{flag} false")
            continue
        kind = setting.kind if setting.kind in (int, float) else str
        group.add_argument(flag, dest=dest, type=kind, default=None, metavar=kind.__name__.upper(),
                           help=_flag_help(setting))


def _overrides(args: argparse.Namespace, labels: dict | None = None) -> dict:
    """The configuration values the flags and ``--set`` give; ``labels`` records the flag that gave each."""
    out: dict = {}
    for name, value in vars(args).items():
        if "." in name and value is not None:
            table, key = name.split(".", 1)
            out.setdefault(table, {})[key] = value
            if labels is not None:
                setting = hyperparams.SETTINGS[(table, key)]
                negated = setting.kind is bool and value == "false"
                labels[(table, key)] = ("--no-" if negated else "--") + setting.cli_flag
    for item in args.set or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set expects table.key=value (e.g. model.lr=0.01), got {item!r}.")
        left, value = item.split("=", 1)
        table, key = left.split(".", 1)
        out.setdefault(table, {})[key] = value
        if labels is not None:
            labels[(table, key)] = f"--set {item}"
    return out


def build_parser() -> argparse.ArgumentParser:
    parser, sub = top_parser()
    train = sub.add_parser(
        "train",
        help=HELP["train"],
        description="Train an RKM. Settings come from the defaults, then --preset, then --config (TOML with "
        "[model], [data], [run] tables), then the flags below (--show-config prints the result and where each "
        "value comes from). Some defaults of a run differ from the Python constructor's (rkm.RKM): each flag "
        "says so. The run folder gets config.toml, save points, metrics.csv, figures/ and summary.json. Ctrl-C "
        "writes a save point; continue with --resume RUN_DIR.",
    )
    train.add_argument("--config", type=Path, help="TOML configuration file")
    train.add_argument("--preset", help="ready-made configuration: demo (make demo) or bars (seconds)")
    train.add_argument("--run-dir", type=folder("--run-dir runs/NAME"), help="run folder (default runs/NAME)")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--resume", type=folder("--resume runs/NAME"), metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last save point (flags may change --max-epochs, "
                       "--log-every, --n-generate, --generate-k, --quality-every, --n-quality, --quick, "
                       "--image-shape); a new run from its model is --init-from RUN_DIR")
    again.add_argument("--restart", type=folder("--restart runs/NAME"), metavar="RUN_DIR",
                       help="start the run in RUN_DIR over with its config.toml, when it stopped before its first save "
                       "point")
    train.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="any configuration key")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--show-config", action="store_true",
                       help="print the resolved configuration, with where each value comes from (default, preset, "
                       "file, flag), and exit")
    train.add_argument("--quick", action="store_true", help="a smoke run's evaluation (run.quick): the quality rows "
                       "and the end-of-run evaluation generate at most 100 samples with at most 100 Gibbs steps")
    for table in ("model", "data", "run"):
        _add_flags(train, table)

    run_note = " Every setting defaults to the run's own (RUN_DIR/config.toml and its latest save point); a flag " \
               "overrides it, and what the command writes says which update, k, n and seed made it."
    gen = sub.add_parser("generate", help=HELP["generate"],
                         description="Gibbs-sample from random visible noise with the latest save point of RUN_DIR."
                         + run_note)
    gen.add_argument("run_dir", type=folder("runs/NAME"), metavar="RUN_DIR")
    gen.add_argument("-n", "--n-samples", type=_count(1), help="number of samples (default: the run's n_generate)")
    gen.add_argument("-k", type=_count(0), help="Gibbs steps (default: the run's generate_k)")
    _add_sampling_flags(gen)
    gen.add_argument("-o", "--out", type=Path, required=True, help="output .png (grid) or .npy (array)")

    rec = sub.add_parser("reconstruct", help=HELP["reconstruct"],
                         description="Reconstruct the first N test rows of the run's dataset (its training rows "
                         "where it has no held-out set) after k steps." + run_note)
    rec.add_argument("run_dir", type=folder("runs/NAME"), metavar="RUN_DIR")
    rec.add_argument("-n", "--n-samples", type=_count(1), help="rows to reconstruct (default: the run's figure's, "
                     "16 or run.n_eval)")
    rec.add_argument("-k", type=_count(0), default=1, help="Gibbs steps (default 1, as the run's figure)")
    _add_sampling_flags(rec, beta=False)
    rec.add_argument("-o", "--out", type=Path, required=True,
                     help="output .png (originals above reconstructions) or .npy")

    ev = sub.add_parser("evaluate", help=HELP["evaluate"],
                        description="Reconstruction error on the test data and AATS, entropy, covariance, "
                        "third-moment, power-spectrum and FID of generated samples against the test data (the "
                        "training data where the dataset has no held-out set)." + run_note)
    ev.add_argument("run_dir", type=folder("runs/NAME"), metavar="RUN_DIR")
    ev.add_argument("-n", "--n-samples", type=_count(1),
                    help="test samples and generated samples (default: the run's n_eval)")
    ev.add_argument("-k", type=_count(0), help="Gibbs steps for generation (default: the run's generate_k)")
    _add_sampling_flags(ev, image=False)
    ev.add_argument("--no-fid", action="store_true", help="skip the FID (it needs 28x28 images)")
    ev.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ev.add_argument("--log-likelihood", action="store_true",
                    help="also the log-likelihood of the train and test data (nats per sample): exact for small "
                    "machines (and the exact KL(train || model) for n_visible <= 16), AIS for large hopfield "
                    "models, or why none applies (docs/likelihood.md)")
    ev.add_argument("--ais-chains", type=_count(2), default=100, help="AIS runs (default 100)")
    ev.add_argument("--ais-betas", type=_count(10), default=10000, help="AIS annealing steps (default 10000)")
    ev.add_argument("--ais-seed", type=int, default=0, help="seed of the AIS (default 0)")

    pl = sub.add_parser("plot", help=HELP["plot"],
                        description="Redraw the PNG figures of RUN_DIR as its end of run drew them.")
    pl.add_argument("run_dir", type=folder("runs/NAME"), metavar="RUN_DIR")
    pl.add_argument("--image-shape", metavar="HxW", help="height x width of the images the rows are (default: the "
                    "run's data.image_shape, or square rows)")

    sub.add_parser("datasets", help=HELP["datasets"], description="List the datasets and whether they work offline.")
    add_energy_parser(sub)
    sweep.add_command(sub)
    pickles.add_convert_parser(sub, HELP["convert-pyrkm"])
    return parser


def _add_sampling_flags(parser: argparse.ArgumentParser, *, beta: bool = True, image: bool = True) -> None:
    """``--beta``, ``--seed`` and ``--image-shape`` of the commands that read a run, defaulting to the run's."""
    if beta:
        parser.add_argument("--beta", type=float, help="inverse temperature (default: the model's model_beta)")
    parser.add_argument("--seed", type=int, help="seed of this command's random draws (default: the run's seed)")
    if image:
        parser.add_argument("--image-shape", metavar="HxW", help="height x width of the images the rows are "
                            "(default: the run's data.image_shape, or square rows)")


# ---------------------------------------------------------------- commands
def _print_summary(summary: dict) -> None:
    q = summary["sample_quality_vs_test"]
    seconds = {key: summary.get(key) for key in ("train_seconds", "eval_seconds", "figures_seconds")}
    print(f"run folder: {summary['run_dir']}")
    if summary.get("init_from"):
        print(f"started from: {summary['init_from']}")
    print(f"updates: {summary['updates']}   training time: {seconds['train_seconds']} s   evaluation time: "
          f"{seconds['eval_seconds']} s   figures: {seconds['figures_seconds']} s   (torch threads: "
          f"{summary.get('torch_threads')}; OMP_NUM_THREADS=N sets them)")
    held = summary.get("held_out", True)
    rows = f"{summary['test_samples']} held-out test rows" if held else \
        f"{summary['test_samples']} training rows: {summary['dataset']} has no held-out set"
    print(f"{'held-out ' if held else ''}reconstruction error (k=1, {rows}): "
          f"{summary['test_reconstruction_error_k1']:.4f}")
    print(f"samples from noise: {summary['generated_samples']} after k = {summary['generate_k']} Gibbs steps, seed "
          f"{summary.get('seed')}" + (" (--quick: a smoke run's evaluation; rkm evaluate RUN_DIR evaluates it at the "
                                      "run's settings)" if summary.get("quick") else ""))
    if "aats_truth" in q:
        against = "the held-out data (ideal 0.5, 0.5)" if held else "the training data (no held-out set: no ideal)"
        print(f"AATS of {summary['test_samples']} samples from noise vs {against}: {q['aats_truth']:.3f}, "
              f"{q['aats_syn']:.3f}")
    if "label_entropy" in q:
        print(f"digits from noise by the shipped classifier: label entropy {q['label_entropy']:.3f} nats "
              f"(balanced: 2.303), {q['classes_covered']:.0%} of the classes with >= 4%, "
              f"rarest class {q['min_class_fraction']:.1%}")
    if "fid" in q:
        print(f"FID (shipped MNIST classifier features, ideal 0): {q['fid']:.2f}")
    print(f"energy dissipated: {summary['energy_j']:.4g} J ({summary['energy']:.4g} in code units)   last update "
          f"power: forward {summary['power_f_w']:.4g} W, backward {summary['power_b_w']:.4g} W")
    print(f"mean relaxation times: hidden {summary['relax_t_f_mean_s']:.4g} s, visible "
          f"{summary['relax_t_b_mean_s']:.4g} s (units: rkm.core.units.DEFAULT_UNITS, docs/energy.md)")
    print("figures:")
    for line in (summary.get("figures") or []) + (summary.get("figure_notes") or []):
        print(f"  {line}")


def _print_config(config: dict, sources: dict) -> None:
    """The resolved configuration as TOML, each value with its source as a comment."""
    from .config import toml_value

    for section, values in config.items():
        print(f"[{section}]")
        lines = [(f"{key} = {toml_value(value)}" if value is not None else f"# {key} unset", sources[(section, key)])
                 for key, value in values.items()]
        width = max(len(line) for line, _ in lines)
        for line, source in lines:
            print(f"{line:<{width}}  # {source}")
        print()


def cmd_train(args: argparse.Namespace) -> int:
    from ._runfolder import RunFolder
    from .config import resolve
    from .run import train_run

    labels: dict = {}
    overrides = _overrides(args, labels)
    if args.no_progress:
        overrides.setdefault("run", {})["progress"] = False
        labels[("run", "progress")] = "--no-progress"
    if args.quick:
        overrides.setdefault("run", {})["quick"] = True
        labels[("run", "quick")] = "--quick"
    again = args.resume if args.resume is not None else args.restart
    init_from = overrides.get("run", {}).get("init_from")
    if again is not None:
        flag = "--resume" if args.resume is not None else "--restart"
        if args.preset or args.config:
            raise ConfigError(f"{flag} takes its settings from RUN_DIR/config.toml; drop --preset/--config.")
        if args.run_dir is not None and args.run_dir.resolve() != again.resolve():
            raise ConfigError(f"{flag} {again} trains the run in its own folder; drop --run-dir {args.run_dir} (to "
                              f"start a new run in {args.run_dir} from the model of {again}, use `rkm train "
                              f"--init-from {again} --run-dir {args.run_dir}`).")
        if init_from:
            raise ConfigError(f"--init-from starts a new run, {flag} {again} continues a run from its own save "
                              "points: use one of them.")
        if not (again / "config.toml").is_file():
            raise ConfigError(f"{again} is not a run folder (no config.toml); start a run there with "
                              f"`rkm train --run-dir {again}`.")
        config = resolve(None, again / "config.toml", overrides, labels, args.sources).config
        run_dir = again
    elif init_from:
        config, run_dir = _warm_start_config(args, overrides, labels, init_from)
    else:
        config = resolve(args.preset, args.config, overrides, labels, args.sources).config
        run_dir = args.run_dir or Path("runs") / config["run"]["name"]
    if args.show_config:
        _print_config(config, args.sources)
        return 0
    folder = RunFolder(run_dir, config["run"]["name"])
    before = folder.latest()
    try:
        summary = train_run(config, run_dir, resume=args.resume is not None, restart=args.restart is not None)
    except KeyboardInterrupt:
        if folder.latest() not in (None, before):  # training had begun: Ctrl-C wrote a save point
            print(f"\ninterrupted: a save point is in {run_dir}/model_states; continue with:\n"
                  f"  rkm train --resume {run_dir}", file=sys.stderr)
        return 130
    if summary:
        _print_summary(summary)
    return 0


def _warm_start_config(args: argparse.Namespace, overrides: dict, labels: dict,
                       init_from: str) -> tuple[dict, Path]:
    """The configuration and folder of a new run that starts from the model ``--init-from`` names.

    Without ``--preset`` and ``--config`` the settings start from the source run's ``config.toml``
    (the flags then change them); ``run.init_from`` records the exact save point.
    """
    from ._warmstart import source_config, source_savepoint
    from .config import resolve

    path = source_savepoint(init_from)
    overrides["run"]["init_from"] = str(path)
    base = None if args.preset or args.config else source_config(path)
    if base is not None:
        overrides["run"].setdefault("init_device_state", False)
    config = resolve(args.preset, args.config or base, overrides, labels, args.sources).config
    run_dir = args.run_dir or Path("runs") / config["run"]["name"]
    source_run = path.parent.parent if path.parent.name == "model_states" else None
    if source_run is not None and run_dir.resolve() == source_run:
        raise ConfigError(f"--init-from starts a new run from the model of {source_run}; give the new run its own "
                          f"folder with --run-dir NEW ({source_run} itself trains on with --resume {source_run}).")
    return config, run_dir


def cmd_plot(args: argparse.Namespace) -> int:
    from .run import plot_run

    shape = None if args.image_shape is None else \
        hyperparams.SETTINGS[("data", "image_shape")].parse(args.image_shape, "--image-shape")
    paths, notes = plot_run(args.run_dir, shape)
    for path in paths:
        print(path)
    for note in notes:
        print(note)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..io.datasets import list_datasets

    for entry in list_datasets():
        where = "offline" if entry["available"] else "needs files"
        if entry["needs_path"]:
            where += ", --data-path"
        print(f"{entry['name']:<18} {where:<26} {entry['description']}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "generate": cmd_generate,
    "reconstruct": cmd_reconstruct,
    "evaluate": cmd_evaluate,
    "plot": cmd_plot,
    "datasets": cmd_datasets,
    "energy": cmd_energy,
    "sweep": lambda args: sweep.cmd_sweep(args, _overrides(args)),
    "convert-pyrkm": pickles.cmd_convert_pyrkm,
}


def main(argv: list[str] | None = None) -> int:
    args = argparse.Namespace(command="", sources={})
    try:
        parser = build_parser()
        args = parser.parse_args(argv, namespace=args)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except RKMError as err:
        print(f"rkm: error: {translate(str(err), err.names, args.command, args.sources)}", file=sys.stderr)
        return 2
    except OSError as err:  # in the system's words, without Python's "[Errno N]"
        where = f"{err.filename}: " if err.filename else ""
        print(f"rkm: error: {where}{err.strerror or err}.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
