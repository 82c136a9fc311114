"""The ``rkm`` command: train, generate, reconstruct, evaluate, plot, datasets.

Errors a user can make end with one line ``rkm: error: ...`` and exit status 2; Ctrl-C
during training leaves a resumable save point and exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from . import __version__, legacy
from .errors import ConfigError, RKMError

# flag name -> (config key, type, help); every seed constructor parameter is settable
MODEL_FLAGS = {
    "n-hidden": ("n_hidden", int, "hidden units"),
    "k": ("k", int, "Gibbs steps of the negative phase"),
    "lr": ("lr", float, "learning rate"),
    "max-epochs": ("max_epochs", int, "number of gradient updates (mini-batches), as pyrkm's max_epochs"),
    "energy-type": ("energy_type", str, "RKM (resistor network) or hopfield (plain RBM)"),
    "optimizer": ("optimizer", str, "SGD or Adam"),
    "regularization": ("regularization", str, "false, l1, l2, l1+l2 or true (= l1+l2)"),
    "l1-factor": ("l1_factor", float, "L1 strength"),
    "l2-factor": ("l2_factor", float, "L2 strength"),
    "g-v": ("g_v", float, "visible bias supply voltage"),
    "g-h": ("g_h", float, "hidden bias supply voltage"),
    "batch-size": ("batch_size", int, "mini-batch size and number of model chains"),
    "train-algo": ("train_algo", str, "CD, PCD, RDM, vRDM or hRDM"),
    "centering": ("centering", str, "true/false: centred gradients (uses the data mean)"),
    "average-data": ("average_data", str, "true/false: start the visible bias at the data mean"),
    "model-beta": ("model_beta", float, "inverse temperature (> 1000: deterministic)"),
    "mytype": ("mytype", str, "float32 or float64 (also float16, bfloat16)"),
    "min-W": ("min_W", float, "lower clipping bound of weights and biases"),
    "max-W": ("max_W", float, "upper clipping bound"),
    "offset": ("offset", float, "offset voltage c of the inverted sources"),
    "sampling": ("sampling", str, "bernoulli, multi-threshold or single-threshold"),
    "distribution": ("distribution", str, "gaussian or uniform threshold noise"),
    "layer-scaled": ("layer_scaled", str, "true/false: scale comparator inputs by layer size"),
    "seed": ("seed", int, "random seed"),
    "device": ("device", str, "cpu or cuda"),
    "threshold-sharing": ("threshold_sharing", str, "single-threshold sharing: sample or batch"),
    "fast-matmul": ("fast_matmul", str, "auto, true or false: bfloat16-based float32 products (rkm.matmul)"),
}
DATA_FLAGS = {
    "dataset": ("dataset", str, "mnist-5k (default), digits, bars-and-stripes, mnist, or a .npy/.npz/.csv path"),
    "data-path": ("path", str, "folder of the full MNIST files, or an array file"),
    "threshold": ("threshold", float, "binarisation threshold (after scaling to [0, 1])"),
    "size": ("size", int, "side of the bars-and-stripes images"),
    "protocol": ("protocol", str, "mnist split: standard, or reference (first 500 test, next 10000 train)"),
}
RUN_FLAGS = {
    "name": ("name", str, "model name (save point file names)"),
    "log-every": ("log_every", int, "updates between rows of metrics.csv"),
    "n-generate": ("n_generate", int, "samples generated from noise for the figures"),
    "generate-k": ("generate_k", int, "Gibbs steps when generating"),
    "n-eval": ("n_eval", int, "test samples used for errors and sample metrics"),
    "lr-final": ("lr_final", float, "anneal the learning rate geometrically to this value at the end"),
    "anneal-start": ("anneal_start", float, "fraction of max-epochs after which annealing starts (default 0.7)"),
}


def _add_flags(parser, table: str, flags: dict) -> None:
    group = parser.add_argument_group(f"[{table}] settings (override the config file)")
    for flag, (key, kind, text) in flags.items():
        group.add_argument(f"--{flag}", dest=f"{table}.{key}", type=kind, default=None, metavar=kind.__name__.upper(),
                           help=text)


def _overrides(args) -> dict:
    out: dict = {}
    for name, value in vars(args).items():
        if "." in name and value is not None:
            table, key = name.split(".", 1)
            out.setdefault(table, {})[key] = value
    for item in args.set or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set expects table.key=value (e.g. model.lr=0.01), got {item!r}.")
        left, value = item.split("=", 1)
        table, key = left.split(".", 1)
        out.setdefault(table, {})[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rkm",
        description="Train, sample and evaluate Restricted Kirchhoff Machines (resistor-network RBMs).",
    )
    parser.add_argument("--version", action="version", version=f"rkm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser(
        "train",
        help="train a model into a run folder",
        description="Train an RKM. Settings come from the defaults, then --preset, then --config (TOML with "
        "[model], [data], [run] tables), then the flags below. The run folder gets config.toml, save points, "
        "metrics.csv, figures/ and summary.json. Ctrl-C writes a save point; continue with --resume RUN_DIR.",
    )
    train.add_argument("--config", type=Path, help="TOML configuration file")
    train.add_argument("--preset", help="ready-made configuration: demo (make demo) or bars (seconds)")
    train.add_argument("--run-dir", type=Path, help="run folder (default runs/NAME)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last save point (flags may raise --max-epochs)")
    train.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="any configuration key")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_flags(train, "model", MODEL_FLAGS)
    _add_flags(train, "data", DATA_FLAGS)
    _add_flags(train, "run", RUN_FLAGS)

    gen = sub.add_parser("generate", help="generate samples from noise with a trained model",
                         description="Gibbs-sample from random visible noise with the latest save point of RUN_DIR.")
    gen.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    gen.add_argument("-n", "--n-samples", type=int, default=100, help="number of samples (default 100)")
    gen.add_argument("-k", type=int, default=1000, help="Gibbs steps (default 1000)")
    gen.add_argument("--beta", type=float, help="inverse temperature (default: the model's)")
    gen.add_argument("--seed", type=int, default=0, help="seed of this sampling run (default 0)")
    gen.add_argument("-o", "--out", type=Path, required=True, help="output .png (grid) or .npy (array)")

    rec = sub.add_parser("reconstruct", help="reconstruct test data with a trained model",
                         description="Reconstruct the first N test samples of the run's dataset after k steps.")
    rec.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rec.add_argument("-n", "--n-samples", type=int, default=16, help="samples to reconstruct (default 16)")
    rec.add_argument("-k", type=int, default=1, help="Gibbs steps (default 1)")
    rec.add_argument("-o", "--out", type=Path, required=True, help="output .png (originals above reconstructions) or .npy")

    ev = sub.add_parser("evaluate", help="reconstruction error and sample-quality metrics",
                        description="Reconstruction error on the test data and AATS, entropy, covariance, "
                        "third-moment, power-spectrum and FID of generated samples against the test data.")
    ev.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ev.add_argument("-n", "--n-samples", type=int, default=500, help="test samples and generated samples (default 500)")
    ev.add_argument("-k", type=int, default=1000, help="Gibbs steps for generation (default 1000)")
    ev.add_argument("--no-fid", action="store_true", help="skip the FID (it needs 28x28 images)")
    ev.add_argument("--json", type=Path, help="also write the results to this JSON file")

    pl = sub.add_parser("plot", help="redraw a run's figures", description="Redraw the PNG figures of RUN_DIR.")
    pl.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    sub.add_parser("datasets", help="list the datasets", description="List the datasets and whether they work offline.")
    legacy.add_convert_parser(sub)
    return parser


# ---------------------------------------------------------------- commands
def _print_summary(summary: dict) -> None:
    q = summary["sample_quality_vs_test"]
    print(f"run folder: {summary['run_dir']}")
    print(f"updates: {summary['updates']}   training time: {summary['train_seconds']} s")
    print(f"held-out reconstruction error (k=1, {summary['test_samples']} test samples): "
          f"{summary['test_reconstruction_error_k1']:.4f}")
    if "aats_truth" in q:
        print(f"AATS of {summary['test_samples']} samples from noise vs test data (ideal 0.5, 0.5): "
              f"{q['aats_truth']:.3f}, {q['aats_syn']:.3f}")
    if "fid" in q:
        print(f"FID (shipped MNIST classifier features, ideal 0): {q['fid']:.2f}")
    print(f"energy dissipated: {summary['energy']:.4g}   last update power: forward {summary['power_f']:.4g}, "
          f"backward {summary['power_b']:.4g}")
    print(f"mean relaxation times: hidden {summary['relax_t_f_mean']:.4g}, visible {summary['relax_t_b_mean']:.4g}")
    print("figures:")
    for path in summary["figures"]:
        print(f"  {path}")


def cmd_train(args) -> int:
    from .run import resolve_config, train_run

    overrides = _overrides(args)
    if args.no_progress:
        overrides.setdefault("run", {})["progress"] = False
    if args.resume is not None:
        if args.preset or args.config:
            raise ConfigError("--resume takes its settings from RUN_DIR/config.toml; drop --preset/--config.")
        if not (args.resume / "config.toml").is_file():
            raise ConfigError(f"{args.resume} is not a run folder (no config.toml).")
        config = resolve_config(config_file=args.resume / "config.toml", overrides=overrides)
        run_dir = args.resume
    else:
        config = resolve_config(args.preset, args.config, overrides)
        run_dir = args.run_dir or Path("runs") / config["run"]["name"]
    try:
        summary = train_run(config, run_dir, resume=args.resume is not None)
    except KeyboardInterrupt:
        print(f"\ninterrupted: a save point is in {run_dir}/model_states; continue with:\n"
              f"  rkm train --resume {run_dir}", file=sys.stderr)
        return 130
    _print_summary(summary)
    return 0


def _write_images(array: np.ndarray, out: Path, shape, title: str) -> None:
    from . import plots

    if out.suffix == ".npy":
        np.save(out, array)
    elif out.suffix == ".png":
        plots.save(plots.image_grid(array, shape, title=title), out)
    else:
        raise ConfigError(f"--out must end in .png or .npy, got {out}.")
    print(f"wrote {out}")


def cmd_generate(args) -> int:
    from .run import load_run
    from .training import evaluation_rng

    _, dataset, model = load_run(args.run_dir)
    model.seed = args.seed
    with evaluation_rng(model):
        samples = model.generate(args.n_samples, args.k, beta=args.beta)
    _write_images(samples, args.out, dataset.image_shape, f"{args.n_samples} samples, k={args.k}")
    return 0


def cmd_reconstruct(args) -> int:
    from .run import load_run

    _, dataset, model = load_run(args.run_dir)
    data, recon = model.reconstruct(dataset.test[: args.n_samples], args.k)
    if args.out.suffix == ".png":
        from . import plots

        plots.save(plots.reconstructions(data, recon, dataset.image_shape), args.out)
        print(f"wrote {args.out}")
    else:
        _write_images(np.stack([data, recon]), args.out, dataset.image_shape, "")
    return 0


def cmd_evaluate(args) -> int:
    from . import metrics
    from .run import load_run
    from .training import evaluation_rng, monitored_error

    _, dataset, model = load_run(args.run_dir)
    real = dataset.test[: args.n_samples]
    results = {"update": model.epoch, "reconstruction_error_k1": monitored_error(model, real)}
    with evaluation_rng(model):
        samples = model.generate(len(real), args.k)
    fid_ok = not args.no_fid and dataset.image_shape == (28, 28)
    results.update(metrics.evaluate_samples(real, samples, dataset.image_shape, include_fid=fid_ok))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def cmd_plot(args) -> int:
    from .run import finish, load_run

    config, dataset, model = load_run(args.run_dir)
    summary = finish(model, dataset, args.run_dir, config)
    for path in summary["figures"]:
        print(path)
    return 0


def cmd_datasets(args) -> int:
    from .data import list_datasets

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
    "convert-pyrkm": legacy.cmd_convert_pyrkm,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except (RKMError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"rkm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
