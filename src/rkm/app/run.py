"""Training runs on disk: the run folder, its data and model, training, evaluation, summary, figures.

A run folder holds::

    config.toml        the resolved configuration (re-usable with ``rkm train --config``; :mod:`rkm.app.config`)
    model_states/      save points (safetensors), the last one written on Ctrl-C too
    metrics.csv        one row every ``log_every`` updates (and ``quality_every``),
                       :data:`rkm.app.metrics_log.METRIC_COLUMNS`
    summary.json       headline numbers at the end of training, written before the figures
    figures/*.png      reconstructions, samples from noise, weights, biases, curves
                       (:func:`rkm.app._figures.write_figures`; a figure that fails is a note in the summary)
    data.json          name, sizes and SHA-256 of the data (checked on resume)
    run.json           the run's identifier, which each of its save points records
    .lock              locked by the ``rkm train`` that runs there (:mod:`rkm.app._runfolder`)

The folder is the source of truth of the commands that read it (``rkm generate``, ``evaluate``,
``reconstruct``, ``plot``, ``energy --model``): they take its settings unless a flag overrides one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import hyperparams
from ..core import limits
from ..errors import ConfigError, DataError
from ..evaluation import metrics
from ..io.datasets import Dataset, load_dataset
from ..io.savepoints import atomic_write
from ..machine import RBM, RKM, load_model
from ..training import evaluation_rng, monitored_error
from ._figures import write_figures
from ._runfolder import RunFolder, read_summary
from ._warmstart import warm_start
from ._words import translate
from .config import learning_rate, read_config_file, resolve_config, validate, write_config
from .metrics_log import (
    METRIC_COLUMNS,
    MetricsLog,
    RunClock,
    SampleQuality,
    evaluation_rows,
    generation_steps,
    is_digits,
    noise_samples,
    physical_readings,
    read_metrics,
)

__all__ = ["build_model", "finish", "held_out", "load_data", "load_run", "plot_run", "train_run", "write_figures"]

logger = logging.getLogger("rkm.app.run")

LONG_EVALUATION_S = 30.0
"""An end-of-run evaluation estimated to take longer than this many seconds is announced at WARNING."""


def load_data(config: dict) -> Dataset:
    """The dataset a configuration names, with the image shape ``data.image_shape`` gives it."""
    d = config["data"]
    dataset = load_dataset(
        d["dataset"], threshold=d["threshold"], path=d["path"] or None, size=d["size"], protocol=d["protocol"]
    )
    return with_image_shape(dataset, d["image_shape"])


def with_image_shape(dataset: Dataset, shape: Any) -> Dataset:
    """``dataset`` with the image shape ``(height, width)`` (None: its own)."""
    if shape is None:
        return dataset
    h, w = shape
    if h * w != dataset.n_visible:
        raise ConfigError(f"the image shape {h}x{w} (--image-shape, data.image_shape) has {h * w} pixels, but the "
                          f"rows of {dataset.name} have {dataset.n_visible} values; give a HEIGHTxWIDTH whose product "
                          f"is {dataset.n_visible}.")
    return replace(dataset, image_shape=(int(h), int(w)))


def held_out(dataset: Dataset) -> bool:
    """Whether the test rows are held out: not the training rows again (bars-and-stripes and array files
    without a test array have no held-out set).

    Parameters
    ----------
    dataset : rkm.io.datasets.Dataset

    Returns
    -------
    bool
    """
    return not (dataset.train.shape == dataset.test.shape and np.array_equal(dataset.train, dataset.test))


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
    before it writes anything; a resume of a run already at ``max_epochs`` trains nothing, says so
    at WARNING and returns the run's summary (writing it first if the run never got one). A new
    run with ``run.init_from`` starts from that model's parameters (:mod:`rkm.app._warmstart`). On
    KeyboardInterrupt a resumable save point is written and the exception re-raised.
    """
    validate(config)
    folder = RunFolder(run_dir, config["run"]["name"])
    with folder.session():
        return _train(config, folder, resume, restart)


def _train(config: dict, folder: RunFolder, resume: bool, restart: bool) -> dict:
    if resume:
        folder.check_resume()
        saved = _run_config(folder.config_path)
        folder.refuse_changes(saved, config)
        dataset = load_data(config)
        folder.check_data(dataset)
        model = load_model(config["run"]["name"], model_state_path=folder.states, device=config["model"]["device"])[1]
        folder.check_run(model)
        folder.check_model(model, saved, dataset)
        folder.bind(model)
        if model.epoch >= config["model"]["max_epochs"]:
            return _nothing_to_train(model, dataset, folder, config)
        folder.truncate_metrics(model.epoch, METRIC_COLUMNS)
        model.max_epochs = config["model"]["max_epochs"]
        model.fast_matmul = hyperparams.fast_matmul_setting(config["model"]["fast_matmul"])
    else:
        if restart:
            folder.check_restart()
        else:
            folder.check_new()
        dataset = load_data(config)
        model = build_model(config, dataset)
        if config["run"]["init_from"]:
            source = warm_start(model, config["run"]["init_from"], config["run"]["init_device_state"])
            logger.info("starting from the parameters of %s", source)
        folder.clear()
        model.run_id = folder.start_run()
    _check_generation(config, dataset, model)
    folder.record_data(dataset)
    write_config(config, folder.config_path)
    return _fit(model, dataset, folder, config)


def _check_generation(config: dict, dataset: Dataset, model: RBM) -> None:
    """Refuse, before training, an end-of-run generation that asks for more work than one call may do."""
    rows, steps = SampleQuality.of(config, dataset).n_final, generation_steps(config, model, evaluation=True)
    limits.require_work(f"the end-of-run generation of {rows} samples x run.generate_k={steps} Gibbs steps",
                        limits.sampling_work(rows, steps, model.n_visible, model.n_hidden),
                        "lower run.generate_k (or run.n_generate and run.n_eval)",
                        names=("generate_k", "n_generate", "n_eval"))


def _nothing_to_train(model: RBM, dataset: Dataset, folder: RunFolder, config: dict) -> dict:
    """A resume with no update to train: say so; write the summary only where the finished run has none."""
    logger.warning("%s is already at update %d (max_epochs = %d): nothing to train. Raise max_epochs to train on "
                   "(rkm train --resume %s --max-epochs N, N > %d); rkm evaluate and rkm plot evaluate and draw it "
                   "with other settings.", folder.path, model.epoch, config["model"]["max_epochs"], folder.path,
                   model.epoch)
    summary = read_summary(folder.path)
    if summary is not None and summary.get("updates") == model.epoch:
        if summary.get("figures") is None:  # stopped between its summary and its figures
            logger.warning("%s has no figures of update %d: drawing them now.", folder.path, model.epoch)
            steps = generation_steps(config, model, evaluation=True)
            samples = noise_samples(model, SampleQuality.of(config, dataset).n_final, steps)
            _draw(model, dataset, folder.path, config, samples, summary)
        return summary
    if model.epoch < model.max_epochs:  # stopped short of its own end: only training finishes it
        return {}
    logger.warning("%s has no summary of update %d: evaluating the run and writing it now.", folder.path,
                   model.epoch)
    config = copy.deepcopy(config)
    config["model"]["max_epochs"] = model.epoch
    folder.truncate_metrics(model.epoch, METRIC_COLUMNS)
    write_config(config, folder.config_path)
    return _fit(model, dataset, folder, config)


def _logged(path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` (none where it is missing or unreadable)."""
    try:
        return read_metrics(path) if path.is_file() else []
    except (OSError, ValueError):
        return []


def _fit(model: RBM, dataset: Dataset, folder: RunFolder, config: dict) -> dict:
    """Train ``model`` to ``max_epochs``, write the last row of ``metrics.csv``, then :func:`finish`."""
    r = config["run"]
    n_eval = evaluation_rows(config, dataset)
    test = _tensor(model, dataset.test[:n_eval]) if held_out(dataset) else None
    probe = _tensor(model, dataset.train[:n_eval])
    train_data = _tensor(model, dataset.train)
    bar = None
    if r["progress"] and model.epoch < model.max_epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.max_epochs, initial=model.epoch, unit="update", dynamic_ncols=True, smoothing=0,
                   desc=f"training ({_threads()})")
    rows = _logged(folder.metrics_path)
    clock = RunClock.continuing(rows)
    log = MetricsLog(folder.metrics_path, r["log_every"], probe, test, clock, model.epoch, bar, config,
                     SampleQuality.of(config, dataset))
    model.trainer.lr = learning_rate(config, model.epoch)
    try:
        model.train(train_data, model_state_path=str(folder.states), print_every=10**12, save=r["save"],
                    callback=log)
    except DataError as err:
        raise DataError(f"{err} {folder.intact_note()}") from None
    finally:
        if bar is not None:
            bar.close()
    clock.stop()
    assert log.quality is not None
    if not rows or rows[-1]["update"] < model.epoch:
        with clock.evaluating():
            announced = _announce(model, config, log.quality)
        log.final(model, announced)
    return finish(model, dataset, folder.path, config, clock=clock, samples=log.quality.samples_at(model.epoch))


def _threads() -> str:
    """The torch threads, with advice where more of them than idle cores train and OMP_NUM_THREADS is unset."""
    n = torch.get_num_threads()
    said = f"{n} torch thread{'' if n == 1 else 's'}"
    if n == 1 or "OMP_NUM_THREADS" in os.environ or not hasattr(os, "getloadavg"):
        return said
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    idle = max(1, cores - round(load))
    if n <= idle:
        return said
    return f"{said}, load {load:.1f} on {cores} cores: OMP_NUM_THREADS={idle} is likely faster"


def _announce(model: RBM, config: dict, quality: SampleQuality) -> str | None:
    """Say what the end-of-run evaluation generates, at WARNING when it will take long (timed on one Gibbs
    step of its samples, drawn apart from them); returns the description of its progress bar, or None."""
    steps = generation_steps(config, model, evaluation=True)
    what = f"end-of-run evaluation: {quality.n_final} samples x {steps} Gibbs steps from noise"
    started = time.perf_counter()
    noise_samples(model, quality.n_final, 1)  # under evaluation_rng: no draw of the run's own
    estimate = (time.perf_counter() - started) * steps
    if estimate > LONG_EVALUATION_S:
        logger.warning("%s, about %.0f s (timed on one step; run.quick, --quick: a smoke run's evaluation).",
                       what, estimate)
    else:
        logger.info("%s", what)
    return what if config["run"]["progress"] else None


def finish(model: RBM, dataset: Dataset, run_dir: str | os.PathLike, config: dict, *, clock: RunClock | None = None,
           samples: np.ndarray | None = None) -> dict:
    """The end-of-run evaluation and ``summary.json`` of a trained model, then its figures.

    ``samples``: those the last row of ``metrics.csv`` generated from noise at this update
    (:class:`rkm.app.metrics_log.SampleQuality`), generated here if None. ``clock``: the run's
    time (:class:`rkm.app.metrics_log.RunClock`; the summary's times are None without one).
    ``summary.json`` is written before any figure is drawn; a figure that cannot be drawn is a
    note in it (``figure_notes``), never an error.
    """
    run_dir = Path(run_dir)
    r = config["run"]
    quality = SampleQuality.of(config, dataset)
    steps = generation_steps(config, model, evaluation=True)
    with clock.evaluating() if clock is not None else contextlib.nullcontext():
        if samples is None:
            samples = noise_samples(model, quality.n_final, steps, _announce(model, config, quality))
        n_eval = evaluation_rows(config, dataset)
        shape, real = dataset.image_shape, dataset.test[:n_eval]
        sample_quality = metrics.evaluate_samples(real, samples[:n_eval], shape, include_fid=shape == (28, 28))
        if is_digits(dataset):
            sample_quality.update(metrics.label_quality(samples[: quality.n]))
        acceptance = getattr(model.trainer.phase, "acceptance", None)
        summary = {
            "run_dir": str(run_dir),
            "dataset": dataset.name,
            "updates": model.epoch,
            "train_seconds": None if clock is None else round(clock.train_s, 2),
            "eval_seconds": None,
            "torch_threads": torch.get_num_threads(),
            "held_out": held_out(dataset),
            "test_reconstruction_error_k1": monitored_error(model, _tensor(model, real)),
            "test_samples": n_eval,
            "generated_samples": len(samples),
            "generate_k": steps,
            "quick": r["quick"],
            "seed": model.seed,
            "model_beta": model.model_beta,
            "init_from": r["init_from"] or None,
            **physical_readings(model),
            **({} if acceptance is None else {"swap_acceptance": [round(float(a), 6) for a in acceptance]}),
            "sample_quality_vs_test": sample_quality,
        }
    summary.update(eval_seconds=None if clock is None else round(clock.eval_s, 2), figures=None, figure_notes=None,
                   figures_seconds=None)  # None: not drawn yet
    atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2).encode())  # the results are safe
    return _draw(model, dataset, run_dir, config, samples, summary)


def _draw(model: RBM, dataset: Dataset, run_dir: Path, config: dict, samples: np.ndarray, summary: dict) -> dict:
    """The figures of the end of a run (``samples``: its samples from noise), then ``summary`` completed with
    them, rewritten and returned."""
    started = time.perf_counter()
    notes = _figures(model, dataset, run_dir, config, samples, generation_steps(config, model, evaluation=True))
    summary.update(figures=sorted(str(p) for p in (run_dir / "figures").glob("*.png")), figure_notes=notes,
                   figures_seconds=round(time.perf_counter() - started, 2))
    atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def _figures(model: RBM, dataset: Dataset, run_dir: Path, config: dict, samples: np.ndarray, steps: int) -> list[str]:
    """The figures of ``run_dir`` for the model as it is (``samples``: the end of run's from noise, of which
    ``run.n_generate`` are shown); returns the notes of :func:`write_figures`."""
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    originals = dataset.test[: min(16, evaluation_rows(config, dataset))]
    with evaluation_rng(model):
        recon = model.forward(_tensor(model, originals), 1).cpu().numpy()
    drawn, samples = len(samples), samples[: config["run"]["n_generate"]]
    rows = "test rows" if held_out(dataset) else "training rows (no held-out set)"
    which = f"the first {len(samples)} of the {drawn} end-of-run samples" if drawn > len(samples) else \
        f"{len(samples)} samples"
    captions = {"samples.png": f"{which}, k = {steps} Gibbs steps, seed {model.seed}",
                "reconstructions.png": f"{len(originals)} {rows}, k = 1, seed {model.seed}, update {model.epoch}"}
    return write_figures(model, figures, originals, recon, samples, dataset.image_shape, run_dir / "metrics.csv",
                         captions=captions)


def _run_config(path: Path) -> dict:
    """The settings a run's ``config.toml`` holds; a ConfigError naming the file where it is empty or damaged."""
    if not read_config_file(path):
        raise ConfigError(f"{path} is empty: it should hold the run's settings, as rkm train wrote them. Restore it "
                          "from a copy of the run.")
    try:
        return resolve_config(config_file=path)
    except ConfigError as err:
        sources = {(s.section, s.name): "config.toml" for s in hyperparams.TABLE if s.in_config}
        reason = translate(str(err), err.names, "plot", sources)
        raise ConfigError(f"{path} holds settings the run cannot have: {reason} Put the run's own values back in "
                          f"{path}.") from None


def load_run(run_dir: str | os.PathLike) -> tuple[dict, Dataset, RBM]:
    """Configuration, dataset and latest model of an existing run folder."""
    run_dir = Path(run_dir)
    path = run_dir / "config.toml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.toml); pass the folder `rkm train` created.")
    config = _run_config(path)
    folder = RunFolder(run_dir, config["run"]["name"])
    found, model = load_model(folder.name, model_state_path=folder.states, device=config["model"]["device"])
    if not found:
        folder.check_named()
        raise ConfigError(f"{run_dir} has no save point yet.")
    folder.check_run(model)
    dataset = load_data(config)
    folder.check_model(model, config, dataset)
    return config, dataset, model


def plot_run(run_dir: str | os.PathLike, image_shape: Any = None) -> tuple[list[Path], list[str]]:
    """Redraw the figures of a run folder as its end of run drew them (the same samples from noise).

    Parameters
    ----------
    run_dir : str or path-like
        The run folder.
    image_shape : (int, int) or str, optional
        ``(height, width)`` of the rows (or ``"HEIGHTxWIDTH"``); overrides ``data.image_shape``.

    Returns
    -------
    figures : list of pathlib.Path
        The figures written.
    notes : list of str
        Why each figure not drawn was left out.
    """
    run_dir = Path(run_dir)
    config, dataset, model = load_run(run_dir)
    dataset = with_image_shape(dataset, image_shape)
    steps = generation_steps(config, model, evaluation=True)
    samples = noise_samples(model, SampleQuality.of(config, dataset).n_final, steps)
    notes = _figures(model, dataset, run_dir, config, samples, steps)
    return sorted((run_dir / "figures").glob("*.png")), notes
