"""The commands that read a run folder: ``rkm generate``, ``reconstruct`` and ``evaluate``.

Each takes the run's own settings (its ``generate_k``, ``n_generate``, ``n_eval``, seed and beta)
unless a flag overrides one, and says in what it writes which values it used and where they came
from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import hyperparams
from ..errors import ConfigError
from ..io import _files
from ._runfolder import RunFolder

__all__ = ["cmd_generate", "cmd_reconstruct", "cmd_evaluate", "IDEAL"]


def _check_out(out: Path, run_dir: Path) -> None:
    """Refuse an ``--out`` that is neither ``.png`` nor ``.npy``, or not a writable new file, before any work."""
    if out.suffix not in (".png", ".npy"):
        raise ConfigError(f"--out must end in .png or .npy, got {out}.")
    _check_writable(out, "--out", run_dir)


def _check_writable(path: Path, flag: str, run_dir: Path) -> None:
    """Refuse an output path that exists and is not a regular file (a folder, a FIFO), or that is one of the
    files the run ``run_dir`` keeps, before any work."""
    _files.check_output(path, f"{flag} ", "give a new file name", ConfigError)
    if RunFolder(run_dir, "").owns(path):
        raise ConfigError(f"{flag} {path} is one of the files of the run {run_dir} (its settings, records, metrics, "
                          "summary or save points): writing it would damage the run; give a new file name.")


def _write_images(array: np.ndarray, out: Path, shape: tuple[int, int] | None, title: str) -> None:
    """``array`` to ``out`` (checked by :func:`_check_out`): a ``.npy`` array or a ``.png`` grid."""
    from .. import plots

    if out.suffix == ".npy":
        np.save(out, array)
    else:
        plots.save(plots.image_grid(array, shape, title=title), out)


def _chosen(value: object, flag: str, default: object, meaning: str) -> tuple[object, str]:
    """A command's setting: the flag's value where given (echoed as such), else the run's."""
    return (value, f"{value} ({flag})") if value is not None else (default, f"{default} ({meaning})")


def _read_run(args: argparse.Namespace) -> tuple[dict, Any, Any, dict[str, str]]:
    """The run of ``args.run_dir`` with the shape ``--image-shape`` gives, its model seeded by ``--seed`` (or
    the run's seed), and how the seed was chosen."""
    from .run import load_run, with_image_shape

    config, dataset, model = load_run(args.run_dir)
    if getattr(args, "image_shape", None) is not None:
        dataset = with_image_shape(dataset, hyperparams.SETTINGS[("data", "image_shape")].parse(args.image_shape,
                                                                                                "--image-shape"))
    model.seed, said = _chosen(args.seed, "--seed", model.seed, "the run's seed")
    return config, dataset, model, {"seed": said}


def cmd_generate(args: argparse.Namespace) -> int:
    from ..training import evaluation_rng
    from .metrics_log import generation_steps

    _check_out(args.out, args.run_dir)
    config, dataset, model, said = _read_run(args)
    k, said["k"] = _chosen(args.k, "-k", generation_steps(config, model), "the run's generate_k")
    n, said["n"] = _chosen(args.n_samples, "-n", config["run"]["n_generate"], "the run's n_generate")
    beta, said["beta"] = _chosen(args.beta, "--beta", model.model_beta, "the model's")
    with evaluation_rng(model):
        samples = model.generate(n, k, beta=beta)
    how = f"k = {said['k']}, beta = {said['beta']}, seed {said['seed']}"
    _write_images(samples, args.out, dataset.image_shape, f"{n} samples from noise, update {model.epoch}\n{how}")
    print(f"wrote {args.out}: {said['n']} samples from noise of update {model.epoch}, {how}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from .. import plots
    from ..training import evaluation_rng
    from .run import held_out

    _check_out(args.out, args.run_dir)
    config, dataset, model, said = _read_run(args)
    n, said["n"] = _chosen(args.n_samples, "-n", min(16, config["run"]["n_eval"]), "the run's figure")
    rows = "test rows" if held_out(dataset) else "training rows (no held-out set)"
    with evaluation_rng(model):
        data, recon = model.reconstruct(dataset.test[:n], args.k)
    how = f"{said['n']} {rows}, k = {args.k}, seed {said['seed']}, update {model.epoch}"
    if args.out.suffix == ".png":
        plots.save(plots.reconstructions(data, recon, dataset.image_shape, title=how), args.out)
    else:
        _write_images(np.stack([data, recon]), args.out, dataset.image_shape, "")
    print(f"wrote {args.out}: reconstructions of {how}")
    return 0


IDEAL = {"aats_truth": "0.5", "aats_syn": "0.5", "entropy_measure": "0",
         "covariance_error": "0", "third_moment_error": "0", "power_spectrum_error": "0",
         "fid": "0; it grows as n shrinks, so compare at equal n",
         "label_entropy": "2.303, ten balanced classes", "classes_covered": "1", "min_class_fraction": "0.1"}
"""What ``rkm evaluate`` prints beside a measure: about its value where the samples follow the data's law."""


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import metrics
    from ..training import evaluation_rng, monitored_error
    from .metrics_log import generation_steps, is_digits
    from .run import held_out

    if args.json is not None:
        _check_writable(args.json, "--json", args.run_dir)
    config, dataset, model, said = _read_run(args)
    n, said["n_samples"] = _chosen(args.n_samples, "-n", config["run"]["n_eval"], "the run's n_eval")
    k, said["generate_k"] = _chosen(args.k, "-k", generation_steps(config, model), "the run's generate_k")
    beta, said["beta"] = _chosen(args.beta, "--beta", model.model_beta, "the model's")
    if args.log_likelihood and beta != model.model_beta:
        raise ConfigError(f"--log-likelihood is the likelihood of the model at its own beta (model_beta = "
                          f"{model.model_beta:g}), not at --beta {beta:g}; drop --beta, or evaluate the samples at "
                          "--beta without --log-likelihood.")
    real = dataset.test[:n]
    results = {"update": model.epoch, "n_samples": len(real), "generate_k": k, "beta": beta, "seed": model.seed,
               "held_out": held_out(dataset), "settings": said,
               "reconstruction_error_k1": monitored_error(model, real)}
    with evaluation_rng(model):
        samples = model.generate(len(real), k, beta=beta)
    fid_ok = not args.no_fid and dataset.image_shape == (28, 28)
    results.update(metrics.evaluate_samples(real, samples, dataset.image_shape, include_fid=fid_ok))
    if is_digits(dataset):
        results.update(metrics.label_quality(samples))
    if args.log_likelihood:
        from ..evaluation.likelihood import report

        results.update(report(model, dataset.train, dataset.test, n_chains=args.ais_chains, n_betas=args.ais_betas,
                              seed=args.ais_seed))
    compared = "held-out test rows" if results["held_out"] else "training rows (the dataset has no held-out set)"
    print(f"update {model.epoch}: {len(real)} {compared} against {len(real)} samples from noise; n = "
          f"{said['n_samples']}, k = {said['generate_k']}, beta = {said['beta']}, seed {said['seed']}")
    shown = {key: value for key, value in results.items() if key not in ("settings", "held_out")}
    width = max(len(key) for key in shown)
    ideal = {**IDEAL, **({} if results["held_out"] else {"aats_truth": "none: no held-out set",
                                                         "aats_syn": "none: no held-out set"})}
    for key, value in shown.items():
        text = f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}"
        print(f"{text:<{width + 14}}  (ideal {ideal[key]})" if key in ideal else text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0
