"""Training runs on disk: the run folder, its data and model, training, figures, summary.

A run folder holds::

    config.toml        the resolved configuration (re-usable with ``rkm train --config``; :mod:`rkm.app.config`)
    model_states/      save points (safetensors), the last one written on Ctrl-C too
    metrics.csv        one row every ``log_every`` updates (and ``quality_every``),
                       :data:`rkm.app.metrics_log.METRIC_COLUMNS`
    figures/*.png      reconstructions, samples from noise, weights, biases, curves
    summary.json       headline numbers at the end of training
    data.json          name, sizes and SHA-256 of the data (checked on resume)
    run.json           the run's identifier, which each of its save points records
    .lock              locked by the ``rkm train`` that runs there (:mod:`rkm.app._runfolder`)
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from .. import hyperparams, plots
from ..errors import ConfigError, DataError
from ..evaluation import metrics
from ..io.datasets import Dataset, load_dataset
from ..io.savepoints import atomic_write
from ..machine import RBM, RKM, load_model
from ..training import evaluation_rng, monitored_error
from ._runfolder import RunFolder
from .config import learning_rate, resolve_config, validate, write_config
from .metrics_log import (
    METRIC_COLUMNS,
    MetricsLog,
    SampleQuality,
    generation_steps,
    is_digits,
    noise_samples,
    physical_readings,
    read_metrics,
)

__all__ = ["build_model", "finish", "load_data", "load_run", "train_run", "write_figures"]

logger = logging.getLogger("rkm.app.run")


def load_data(config: dict) -> Dataset:
    """The dataset a configuration names."""
    d = config["data"]
    return load_dataset(
        d["dataset"], threshold=d["threshold"], path=d["path"] or None, size=d["size"], protocol=d["protocol"]
    )


def build_model(config: dict, dataset: Dataset) -> RBM:
    """A new model from the ``[model]`` table, sized to ``dataset``."""
    m = {key: hyperparams.MODEL[key].constructor_value(value) for key, value in config["model"].items()
         if key != "average_data"}
    use_mean = config["model"]["average_data"] or m["centering"]
    m["average_data"] = torch.tensor(dataset.train.mean(axis=0)) if use_mean else None
    cls = RBM if m["energy_type"] == "hopfield" else RKM
    return cls(config["run"]["name"], dataset.n_visible, **m)


# ------------------------------------------------------------------ the run
def _tensor(model: RBM, array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(array, dtype=model.mytype, device=model.device)


def train_run(config: dict, run_dir: str | os.PathLike, *, resume: bool = False, restart: bool = False) -> dict:
    """Train (``resume``: continue, ``restart``: start over) the run in ``run_dir``; returns the summary.

    The run holds the folder's lock throughout (:mod:`rkm.app._runfolder`): a second run of the
    same folder is refused. A resume checks every setting and the data against the saved run
    before it writes anything. On KeyboardInterrupt a resumable save point is written and the
    exception re-raised.
    """
    validate(config)
    folder = RunFolder(run_dir, config["run"]["name"])
    with folder.session():
        return _train(config, folder, resume, restart)


def _train(config: dict, folder: RunFolder, resume: bool, restart: bool) -> dict:
    run_dir, states = folder.path, folder.states
    if resume:
        folder.check_resume()
        saved = resolve_config(config_file=folder.config_path)
        folder.refuse_changes(saved, config)
        dataset = load_data(config)
        folder.check_data(dataset)
        model = load_model(config["run"]["name"], model_state_path=states, device=config["model"]["device"])[1]
        folder.check_run(model)
        folder.check_model(model, saved, dataset)
        folder.bind(model)
        folder.truncate_metrics(model.epoch, METRIC_COLUMNS)
        model.max_epochs = config["model"]["max_epochs"]
        model.fast_matmul = hyperparams.fast_matmul_setting(config["model"]["fast_matmul"])
        if model.epoch >= model.max_epochs:
            logger.info("Run already at update %d of %d; raise --max-epochs to train on.", model.epoch,
                        model.max_epochs)
    else:
        if restart:
            folder.check_restart()
        else:
            folder.check_new()
        dataset = load_data(config)
        model = build_model(config, dataset)
        folder.clear()
        model.run_id = folder.start_run()
    folder.record_data(dataset)
    write_config(config, run_dir / "config.toml")

    r = config["run"]
    n_eval = min(r["n_eval"], len(dataset.test))
    test = _tensor(model, dataset.test[:n_eval])
    probe = _tensor(model, dataset.train[:n_eval])
    bar = None
    if r["progress"]:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.max_epochs, initial=model.epoch, unit="update", dynamic_ncols=True)
    now = time.perf_counter()
    quality = SampleQuality.of(config, dataset)
    log = MetricsLog(run_dir / "metrics.csv", r["log_every"], probe, test, now, model.epoch, now, bar, config,
                     quality)
    model.trainer.lr = learning_rate(config, model.epoch)
    train_data = _tensor(model, dataset.train)
    start = time.perf_counter()
    try:
        model.train(train_data, model_state_path=str(states), print_every=10**12, save=r["save"], callback=log)
    except DataError as err:
        raise DataError(f"{err} {folder.intact_note()}") from None
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    return finish(model, dataset, run_dir, config, train_seconds=seconds, samples=quality.samples_at(model.epoch))


def finish(model: RBM, dataset: Dataset, run_dir: Path, config: dict, train_seconds: float | None = None,
           samples: np.ndarray | None = None) -> dict:
    """Figures and summary of a trained model; ``samples``: those the last row of ``metrics.csv``
    generated from noise at this update (:class:`rkm.app.metrics_log.SampleQuality`), generated here if None."""
    r = config["run"]
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    n_eval = min(r["n_eval"], len(dataset.test))
    test = _tensor(model, dataset.test[:n_eval])
    steps = generation_steps(config, model)
    sample_quality = SampleQuality.of(config, dataset)
    if samples is None:
        samples = noise_samples(model, sample_quality.n_final, steps)
    with evaluation_rng(model):
        recon = model.forward(test[:16], 1).cpu().numpy()
    shape = dataset.image_shape
    write_figures(model, figures, test[:16].cpu().numpy(), recon, samples[: r["n_generate"]], shape,
                  run_dir / "metrics.csv")
    real = dataset.test[:n_eval]
    quality = metrics.evaluate_samples(real, samples[:n_eval], shape, include_fid=shape == (28, 28))
    if is_digits(dataset):
        quality.update(metrics.label_quality(samples[: r["n_quality"]]))
    acceptance = getattr(model.trainer.phase, "acceptance", None)
    summary = {
        "run_dir": str(run_dir),
        "dataset": dataset.name,
        "updates": model.epoch,
        "train_seconds": None if train_seconds is None else round(train_seconds, 2),
        "test_reconstruction_error_k1": monitored_error(model, test),
        "test_samples": n_eval,
        "generated_samples": len(samples),
        "generate_k": steps,
        **physical_readings(model),
        **({} if acceptance is None else {"swap_acceptance": [round(float(a), 6) for a in acceptance]}),
        "sample_quality_vs_test": quality,
        "figures": sorted(str(p) for p in figures.glob("*.png")),
    }
    atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def write_figures(model: RBM, folder: Path, originals: np.ndarray, recon: np.ndarray, samples: np.ndarray,
                  shape: tuple[int, int] | None, metrics_csv: Path) -> None:
    """Every PNG of a run folder."""
    plots.save(plots.reconstructions(originals, recon, shape), folder / "reconstructions.png")
    title = f"Samples from noise (update {model.epoch})"
    plots.save(plots.image_grid(samples, shape, title=title), folder / "samples.png")
    plots.save(model.plot_weights(model.epoch, image_shape=shape), folder / "weights.png")
    plots.save(model.plot_bias(model.epoch), folder / "biases.png")
    if metrics_csv.exists():
        try:
            rows = read_metrics(metrics_csv)
        except DataError as err:
            logger.warning("training_curves.png not drawn: %s", err)
            rows = []
        if rows:
            plots.save(plots.training_curves(rows), folder / "training_curves.png")


def load_run(run_dir: str | os.PathLike) -> tuple[dict, Dataset, RBM]:
    """Configuration, dataset and latest model of an existing run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.toml); pass the folder `rkm train` created.")
    config = resolve_config(config_file=run_dir / "config.toml")
    found, model = load_model(config["run"]["name"], model_state_path=run_dir / "model_states",
                              device=config["model"]["device"])
    if not found:
        raise ConfigError(f"{run_dir} has no save point yet.")
    RunFolder(run_dir, config["run"]["name"]).check_run(model)
    return config, load_data(config), model

