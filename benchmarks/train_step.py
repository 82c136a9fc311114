"""Per-update training time of rkm, pyrkm 0.1.0 and scikit-learn's BernoulliRBM, side by side.

    python -m benchmarks.train_step                      # the full grid (see benchmarks/README.md)
    python -m benchmarks.train_step --n-hidden 200 500 --batch 64 --algo PCD --k 1 --libs rkm pyrkm
    python -m benchmarks.train_step --quick              # one tiny rkm configuration (the test suite)

Every (library, configuration) runs in its own worker process (``--worker``), so the
libraries cannot pollute one another (pyrkm calls ``torch.set_default_dtype``, sklearn
keeps BLAS pools) and each reports its own peak RSS. All workers read the same binarised
mnist-5k training rows and cut them into the same float32 mini-batches.

Results go to ``--out`` (default ``benchmarks/results/``): ``train_step.csv``,
``train_step.md`` (table + summary) and ``raw.json``; ``--plot`` also draws
``train_step.png`` (see ``python -m benchmarks.plot``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

N_VISIBLE = 784
LIBS = ("rkm", "pyrkm", "sklearn")
ALGOS = ("CD", "PCD", "vRDM")
GRID = {"n_hidden": [50, 200, 500, 1000], "batch": [64, 256], "algo": list(ALGOS), "k": [1, 10]}
QUICK = {"n_hidden": [50], "batch": [64], "algo": ["PCD"], "k": [1], "libs": ["rkm"]}
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_OUT = BENCH_DIR / "results"
GEMM_BIG = 2048

# Row labels ("lib" column): what was timed.
ROW_LIBS = ("rkm", "rkm-noacct", "pyrkm", "sklearn", "sklearn-fit32")
ROW_DESCRIPTIONS = {
    "rkm": "rkm RKM.train (energy accounting on, as always in rkm)",
    "rkm-noacct": "rkm RKM.train with rkm.core.physics.twice_pass_power replaced by zeros (no power computation)",
    "pyrkm": "pyrkm 0.1.0 RKM.train (with its own energy accounting)",
    "sklearn": "sklearn BernoulliRBM.partial_fit per batch (PCD-1; partial_fit converts input to float64)",
    "sklearn-fit32": "sklearn BernoulliRBM.fit on the float32 rows, per mini-batch (PCD-1, float32 throughout)",
}

CSV_FIELDS = [
    "lib", "n_visible", "n_hidden", "batch", "algo", "k", "threads", "status",
    "ms_median", "ms_min", "ms_max", "ms_q1", "ms_q3", "repeats", "updates_per_repeat",
    "updates_per_s", "samples_per_s", "gflops", "gflops_all", "gemm_gflops", "gemm_fraction", "gemm_fraction_all",
    "gemm_fast_gflops", "gemm_fraction_fast",
    "speedup_vs_pyrkm", "speedup_vs_sklearn", "speedup_vs_sklearn_fit32", "accounting_share",
    "peak_rss_mib", "dtype", "note",
]


# ===================================================================== shared helpers
def passes_per_update(k: int) -> int:
    """Clamped passes of one CD-k / PCD-k / vRDM-k update: the positive pass and 2k Gibbs passes."""
    return 2 * k + 1


def flops_per_update(batch: int, n_hidden: int, k: int, n_visible: int = N_VISIBLE) -> float:
    """Useful flops of one update as the issue defines them: 2 (2k+1) B Nv Nh (the passes' products)."""
    return 2.0 * passes_per_update(k) * batch * n_visible * n_hidden


def flops_per_update_all(batch: int, n_hidden: int, k: int, n_visible: int = N_VISIBLE) -> float:
    """All matrix-product flops: the 2k+1 passes plus the two gradient statistics, 2 (2k+3) B Nv Nh."""
    return 2.0 * (passes_per_update(k) + 2) * batch * n_visible * n_hidden


def quantiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "min": float(a.min()), "max": float(a.max()), "q1": float(q1), "q3": float(q3)}


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ===================================================================== worker side
def _rss_now() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _maxrss() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _vm_hwm() -> int | None:
    """Peak RSS of this process's address space (VmHWM), reset by ``clear_refs``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakMemory:
    """Peak RSS increase of this process over a baseline taken after imports and data.

    On Linux the kernel's peak-RSS mark of the address space is reset at the baseline
    (``/proc/self/clear_refs`` <- 5) and read back as ``VmHWM`` from
    ``/proc/self/status``. (``ru_maxrss`` is not used there: after fork + exec it never
    drops below the RSS the parent had when it forked the worker.) Elsewhere the
    increase of ``ru_maxrss`` is reported, a lower bound.
    """

    def start(self) -> None:
        gc.collect()
        self.maxrss_before = _maxrss()
        self.baseline = _rss_now()
        self.reset = False
        if self.baseline is not None and _vm_hwm() is not None:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self.reset = True
            except OSError:
                pass

    def increase(self) -> tuple[int, str]:
        if self.reset:
            peak = _vm_hwm()
            if peak is not None:
                return max(0, peak - self.baseline), ""
        return max(0, _maxrss() - self.maxrss_before), "peak-RSS reset unavailable: lower bound"


def _load_batches(spec):
    """The same float32 mini-batches for every library: shuffled once (seed), full batches only."""
    import numpy as np

    X = np.load(spec["data"])
    B = spec["batch"]
    n_batches = X.shape[0] // B
    if n_batches == 0:
        raise ValueError(f"batch {B} is larger than the data ({X.shape[0]} rows)")
    order = np.random.default_rng(spec["seed"]).permutation(X.shape[0])[: n_batches * B]
    rows = np.ascontiguousarray(X[order], dtype=np.float32)
    return [rows[i * B : (i + 1) * B] for i in range(n_batches)]


def _measure(blocks, repeats, min_time, warmup_time):
    """Time each ``blocks[variant](n) -> (seconds, updates done)``.

    Warm-up per variant: one update (first-call costs), then blocks doubling in size until
    one takes ``warmup_time``; that rate sizes the variant's timed block (>= ``min_time``
    seconds, >= 1 update). The repetitions of the variants are interleaved, so that they
    share the machine's state. Returns per-repetition ms per update and updates per block.
    """
    size = {}
    for v, block in blocks.items():
        block(1)
        n = 1
        while True:
            dt, done = block(n)
            if dt >= warmup_time or n >= 1 << 20:
                break
            n *= 2
        size[v] = max(1, math.ceil(min_time / max(dt / max(done, 1), 1e-9)))
    times = {v: [] for v in blocks}
    updates = {v: [] for v in blocks}
    for _ in range(repeats):
        for v, block in blocks.items():
            dt, done = block(size[v])
            if done <= 0:
                raise RuntimeError(f"{v}: a block of {size[v]} updates did no update")
            times[v].append(1e3 * dt / done)
            updates[v].append(done)
    return times, updates


def _gemm_block(m: int, kdim: int, n: int, threads: int, fast: bool = False):
    """A block timing ``torch.mm(a, b, out=c)``, a (m x kdim) and b (kdim x n) float32.

    ``fast``: under ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``, the mode of
    rkm's fast products (``rkm.core._products``), restored after each block.
    """
    import torch

    _set_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b, c = torch.rand(m, kdim, generator=g), torch.rand(kdim, n, generator=g), torch.empty(m, n)
    setting = torch.backends.mkldnn.matmul if fast else None

    def block(reps):
        previous = setting.fp32_precision if setting else None
        if setting:
            setting.fp32_precision = "bf16"
        try:
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=c)
            return time.perf_counter() - t0, reps
        finally:
            if setting:
                setting.fp32_precision = previous

    return block


GEMM_VARIANTS = {"mm": "gemm", "mm-fast": "gemm_fast"}
"""Timed-block names of the same-shape GEMM (IEEE float32, and the fast mode) and their result keys."""


def _with_gemm(spec, blocks):
    """Add the same-shape GEMM to the interleaved variants when the parent asks this worker for it."""
    if spec.get("gemm"):
        blocks["mm"] = _gemm_block(spec["batch"], N_VISIBLE, spec["n_hidden"], spec["threads"])
        if spec.get("gemm_fast"):
            blocks["mm-fast"] = _gemm_block(spec["batch"], N_VISIBLE, spec["n_hidden"], spec["threads"], fast=True)
    return blocks


def _result(spec, times, updates, **extra):
    out = {"rows": {v: {"times_ms": times[v], "updates": updates[v]} for v in times if v not in GEMM_VARIANTS},
           **extra}
    for block, key in GEMM_VARIANTS.items():
        if block in times:
            ms = quantiles(times[block])["median"]
            out[key] = {"times_ms": times[block], "ms_median": ms,
                        "gflops": 2.0 * spec["batch"] * N_VISIBLE * spec["n_hidden"] / (ms * 1e-3) / 1e9}
    return out


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _worker_rkm(spec):
    import logging

    import torch

    _set_threads(spec["threads"])
    base = logging.getLogger("rkm")
    base.addHandler(logging.NullHandler())  # rkm then adds no stderr handler of its own
    base.setLevel(logging.WARNING)
    import rkm
    import rkm.core.physics as physics
    import rkm.io.savepoints  # noqa: F401 - imported lazily by train(): keep import memory in the baseline
    import rkm.training  # noqa: F401

    batches = [torch.from_numpy(b) for b in _load_batches(spec)]
    data = batches if spec["rkm_input"] == "batches" else torch.cat(batches)
    blocks = _with_gemm(spec, {})
    mem = PeakMemory()
    mem.start()
    model = rkm.RKM(
        "bench", N_VISIBLE, spec["n_hidden"], k=spec["k"], lr=spec["lr"], max_epochs=1,
        batch_size=spec["batch"], train_algo=spec["algo"], seed=spec["seed"], device="cpu",
    )
    real_power = physics.twice_pass_power

    def zero_power(clamped, numerator, phys, binary=False, drive=None, constant=True):
        if not constant:  # training adds the constant once per update: leave it nothing to add to
            return (-phys.constant).expand(clamped.shape[0])
        return torch.zeros(clamped.shape[0], dtype=clamped.dtype, device=clamped.device)

    checks = {}

    def train_block(variant):
        def block(n):
            physics.twice_pass_power = zero_power if variant == "rkm-noacct" else real_power
            try:
                model.max_epochs = model.epoch + n
                start_epoch = model.epoch
                t0 = time.perf_counter()
                model.train(data, save=False, print_every=10**9)
                dt = time.perf_counter() - t0
            finally:
                physics.twice_pass_power = real_power
            checks[variant] = float(model.power_f)
            return dt, model.epoch - start_epoch

        return block

    blocks.update({v: train_block(v) for v in spec["variants"]})
    times, updates = _measure(blocks, spec["repeats"], spec["min_time"], spec["warmup_time"])
    if "rkm-noacct" in checks and checks["rkm-noacct"] != 0.0:
        raise RuntimeError("the no-accounting variant still computed power: the twice_pass_power patch did not apply")
    if "rkm" in checks and not checks["rkm"] > 0.0:
        raise RuntimeError(f"rkm accounted no power (power_f = {checks['rkm']})")
    rss, note = mem.increase()
    return _result(spec, times, updates, peak_rss=rss, rss_note=note,
                   dtype=str(model.W.dtype).replace("torch.", ""), version=rkm.__version__)


class _Window:
    """DataLoader-like iterable: each pass yields the next ``n`` batches of a fixed list, cycling.

    pyrkm's ``train`` runs whole passes over its loader (``while epoch < max_epochs: for
    v_data in loader``), so a pass of exactly ``n`` batches makes it do exactly ``n`` updates.
    """

    def __init__(self, batches):
        self.batches, self.position, self.n = batches, 0, 0

    def take(self, n: int) -> _Window:
        self.n = n
        return self

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            batch = self.batches[self.position]
            self.position = (self.position + 1) % len(self.batches)
            yield batch


def _worker_pyrkm(spec):
    import torch

    _set_threads(spec["threads"])
    from benchmarks.pyrkm_compat import import_pyrkm

    pyrkm = import_pyrkm()  # with the torchvision stub, in this process only
    torch.manual_seed(spec["seed"])  # pyrkm draws from torch's global generator
    batches = [torch.from_numpy(b) for b in _load_batches(spec)]
    window = _Window(batches)
    state_dir = tempfile.mkdtemp(prefix="pyrkm-bench-")
    blocks = _with_gemm(spec, {})
    mem = PeakMemory()
    mem.start()
    model = pyrkm.RKM(
        model_name="bench", n_visible=N_VISIBLE, n_hidden=spec["n_hidden"], k=spec["k"], lr=spec["lr"],
        max_epochs=1, batch_size=spec["batch"], train_algo=spec["algo"], mytype=torch.float32,
    )
    model.t_to_save = []  # never pickle the model
    if str(model.device) != "cpu":
        raise RuntimeError(f"pyrkm chose device {model.device}; the benchmark compares CPU runs")

    def block(n):
        model.max_epochs = model.epoch + n
        start_epoch = model.epoch
        t0 = time.perf_counter()
        model.train(window.take(n), print_every=10**9, model_state_path=state_dir + os.sep)
        return time.perf_counter() - t0, model.epoch - start_epoch

    blocks["pyrkm"] = block
    times, updates = _measure(blocks, spec["repeats"], spec["min_time"], spec["warmup_time"])
    rss, note = mem.increase()
    if os.listdir(state_dir):
        raise RuntimeError(f"pyrkm wrote files to {state_dir}")
    os.rmdir(state_dir)
    return _result(spec, times, updates, peak_rss=rss, rss_note=note,
                   dtype=str(model.W.dtype).replace("torch.", ""), version=getattr(pyrkm, "__version__", "?"))


def _worker_sklearn(spec):
    import numpy as np
    import sklearn
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    batches = _load_batches(spec)
    B, lr, seed = spec["batch"], spec["lr"], spec["seed"]
    variant = spec["variants"][0]
    blocks = _with_gemm(spec, {})
    mem = PeakMemory()
    with threadpool_limits(limits=spec["threads"]):
        mem.start()
        rbm = BernoulliRBM(n_components=spec["n_hidden"], learning_rate=lr, batch_size=B, n_iter=1, random_state=seed)
        if variant == "sklearn":
            position = [0]

            def block(n):
                t0 = time.perf_counter()
                for _ in range(n):
                    rbm.partial_fit(batches[position[0]])
                    position[0] = (position[0] + 1) % len(batches)
                return time.perf_counter() - t0, n
        else:
            rows = np.concatenate(batches)  # fit walks these rows in order: the same batches
            per_pass = len(batches)

            def block(n):
                rbm.n_iter = max(1, math.ceil(n / per_pass))
                t0 = time.perf_counter()
                rbm.fit(rows)
                return time.perf_counter() - t0, rbm.n_iter * per_pass

        blocks[variant] = block
        times, updates = _measure(blocks, spec["repeats"], spec["min_time"], spec["warmup_time"])
    rss, note = mem.increase()
    return _result(spec, times, updates, peak_rss=rss, rss_note=note, dtype=str(rbm.components_.dtype),
                   version=sklearn.__version__)


def _worker_gemm(spec):
    """Float32 torch.mm rate of 2048 x 2048 x 2048 (the machine's large-GEMM rate)."""
    import torch

    m = kdim = n = GEMM_BIG
    times, _ = _measure({"mm": _gemm_block(m, kdim, n, spec["threads"])}, spec["repeats"], spec["min_time"],
                        spec["warmup_time"])
    ms = quantiles(times["mm"])["median"]
    return {"gemm": {f"{m}x{kdim}x{n}": {"ms_median": ms, "gflops": 2.0 * m * kdim * n / (ms * 1e-3) / 1e9}},
            "torch": torch.__version__, "threads": torch.get_num_threads()}


WORKERS = {"rkm": _worker_rkm, "pyrkm": _worker_pyrkm, "sklearn": _worker_sklearn, "gemm": _worker_gemm}


def worker_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = {"ok": True, **WORKERS[spec["kind"]](spec)}
    except Exception as exc:  # reported in the table, never fatal to the whole run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# ===================================================================== parent side
def library_available(lib: str) -> tuple[bool, str]:
    """Whether a library can be benchmarked here, and a note when not (pyrkm is optional)."""
    import importlib.util

    module = {"rkm": "rkm", "pyrkm": "pyrkm", "sklearn": "sklearn"}[lib]
    if importlib.util.find_spec(module) is None:
        hint = " (install it with `bash benchmarks/setup.sh`)" if lib == "pyrkm" else ""
        return False, f"{lib} is not importable in {sys.executable}{hint}: skipped"
    return True, ""


def _worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU benchmark: pyrkm would otherwise pick CUDA when present
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_worker(spec: dict, workdir: Path, timeout: float, verbose: bool) -> dict:
    """Run one measurement in a fresh interpreter; returns its result dict (``ok`` False on failure)."""
    fd, spec_path = tempfile.mkstemp(suffix=".json", dir=workdir)
    os.close(fd)
    result_path = spec_path[:-5] + ".result.json"
    spec = {**spec, "result": result_path}
    Path(spec_path).write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "benchmarks.train_step", "--worker", spec_path]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=_worker_env(spec["threads"]), timeout=timeout,
            stdout=None if verbose else subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    if not os.path.exists(result_path):
        tail = (proc.stderr or "").strip().splitlines()[-1:] if not verbose else []
        why = f"worker died (exit {proc.returncode}{', killed: out of memory?' if proc.returncode in (-9, 137) else ''})"
        return {"ok": False, "error": why + (f": {tail[0]}" if tail else "")}
    return json.loads(Path(result_path).read_text())


def _config_key(row) -> tuple:
    return (row["n_hidden"], row["batch"], row["algo"], row["k"])


def make_row(lib: str, cfg: dict, threads: int, times_ms=None, updates=None, peak_rss=None,
             dtype="", note="", gemm_gflops=None, status=None, gemm_fast_gflops=None) -> dict:
    row = {f: "" for f in CSV_FIELDS}
    row.update(lib=lib, n_visible=N_VISIBLE, n_hidden=cfg["n_hidden"], batch=cfg["batch"], algo=cfg["algo"],
               k=cfg["k"], threads=threads, dtype=dtype, note=note, status=status or ("ok" if times_ms else "skipped"))
    if times_ms:
        q = quantiles(times_ms)
        ms = q["median"]
        row.update(
            ms_median=ms, ms_min=q["min"], ms_max=q["max"], ms_q1=q["q1"], ms_q3=q["q3"],
            repeats=len(times_ms), updates_per_repeat=int(round(sum(updates) / len(updates))),
            updates_per_s=1e3 / ms, samples_per_s=1e3 / ms * cfg["batch"],
            gflops=flops_per_update(cfg["batch"], cfg["n_hidden"], cfg["k"]) / (ms * 1e-3) / 1e9,
            gflops_all=flops_per_update_all(cfg["batch"], cfg["n_hidden"], cfg["k"]) / (ms * 1e-3) / 1e9,
        )
        if gemm_gflops:
            row.update(gemm_gflops=gemm_gflops, gemm_fraction=row["gflops"] / gemm_gflops,
                       gemm_fraction_all=row["gflops_all"] / gemm_gflops)
        if gemm_fast_gflops:
            row.update(gemm_fast_gflops=gemm_fast_gflops, gemm_fraction_fast=row["gflops"] / gemm_fast_gflops)
    if peak_rss is not None and lib != "rkm-noacct":
        row["peak_rss_mib"] = peak_rss / 2**20
    return row


def add_comparisons(rows: list[dict]) -> None:
    """Speedups of rkm over the other libraries and the accounting share, on the rkm rows."""
    by_cfg: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_cfg.setdefault(_config_key(r), {})[r["lib"]] = r
    for libs in by_cfg.values():
        base = libs.get("rkm")
        if not base or base["status"] != "ok":
            continue
        for other, field in (("pyrkm", "speedup_vs_pyrkm"), ("sklearn", "speedup_vs_sklearn"),
                             ("sklearn-fit32", "speedup_vs_sklearn_fit32")):
            o = libs.get(other)
            if o and o["status"] == "ok":
                base[field] = o["ms_median"] / base["ms_median"]
        o = libs.get("rkm-noacct")
        if o and o["status"] == "ok":
            base["accounting_share"] = 1.0 - o["ms_median"] / base["ms_median"]


def _median(values):
    import numpy as np

    return float(np.median(values)) if values else None


def summarize(rows: list[dict], gemm: dict, notes: list[str]) -> list[str]:
    """The summary block (Markdown lines)."""
    ok = [r for r in rows if r["status"] == "ok"]
    rkm_rows = [r for r in ok if r["lib"] == "rkm"]
    lines = []

    def cfg(r):
        return f"n_hidden={r['n_hidden']}, batch={r['batch']}, {r['algo']}, k={r['k']}"

    sp = [(r["speedup_vs_pyrkm"], r) for r in rkm_rows if r["speedup_vs_pyrkm"] != ""]
    if sp:
        lo = min(sp, key=lambda t: t[0])
        hi = max(sp, key=lambda t: t[0])
        lines.append(f"- **Speedup of rkm over pyrkm 0.1.0** (pyrkm ms / rkm ms, {len(sp)} configurations): "
                     f"median **{_median([s for s, _ in sp]):.1f}x**, minimum {lo[0]:.1f}x ({cfg(lo[1])}), "
                     f"maximum {hi[0]:.1f}x ({cfg(hi[1])}).")
    else:
        lines.append("- Speedup over pyrkm: n/a (pyrkm not measured).")
    for field, label in (("speedup_vs_sklearn", "sklearn BernoulliRBM.partial_fit (float64 inside)"),
                         ("speedup_vs_sklearn_fit32", "sklearn BernoulliRBM.fit on float32")):
        vals = [(r[field], r) for r in rkm_rows if r[field] != ""]
        if vals:
            each = ", ".join(f"{s:.2f}x (n_hidden={r['n_hidden']}, batch={r['batch']})" for s, r in vals)
            lines.append(f"- **rkm vs {label}**, PCD k=1 (sklearn ms / rkm ms; > 1: rkm faster): "
                         f"median **{_median([s for s, _ in vals]):.2f}x**; {each}.")
    if not any(r[f] != "" for r in rkm_rows for f in ("speedup_vs_sklearn", "speedup_vs_sklearn_fit32")):
        lines.append("- rkm vs sklearn: n/a (sklearn not measured; it is compared at PCD, k=1 only).")
    big = [r for r in rkm_rows if r["n_hidden"] >= 500 and r["batch"] == 256 and r["k"] == 1 and r["gemm_fraction"] != ""]
    if big:
        f1 = [r["gemm_fraction"] for r in big]
        f2 = [r["gemm_fraction_all"] for r in big]
        lines.append(f"- **Fraction of the same-shape float32 GEMM rate (IEEE torch.mm)**, rkm, n_hidden >= 500, "
                     f"batch 256, k=1 ({len(big)} rows): passes only (2(2k+1)BNvNh) median **{_median(f1):.0%}** "
                     f"(range {min(f1):.0%} to {max(f1):.0%}); all products (2(2k+3)BNvNh) median "
                     f"**{_median(f2):.0%}** (range {min(f2):.0%} to {max(f2):.0%}).")
        f3 = [r["gemm_fraction_fast"] for r in big if r["gemm_fraction_fast"] != ""]
        if f3:
            lines.append(f"- Same rows against the same-shape GEMM in the fast float32 mode rkm uses "
                         f"(rkm.core._products): passes only median **{_median(f3):.0%}** (range {min(f3):.0%} to {max(f3):.0%}).")
    else:
        lines.append("- Fraction of GEMM rate at n_hidden >= 500, batch 256, k=1: n/a (not in this grid).")
    acc = [(r["accounting_share"], r) for r in rkm_rows if r["accounting_share"] != ""]
    if acc:
        vals = [a for a, _ in acc]
        lines.append(f"- **Energy accounting share of rkm's update time** (1 - no-accounting ms / rkm ms): "
                     f"median **{_median(vals):.1%}**, range {min(vals):.1%} to {max(vals):.1%}.")
    for lib in ("rkm", "pyrkm", "sklearn", "sklearn-fit32"):
        mem = [(r["peak_rss_mib"], r) for r in ok if r["lib"] == lib and r["peak_rss_mib"] != ""]
        if mem:
            top = max(mem, key=lambda t: t[0])
            lines.append(f"- Peak RSS increase, {lib}: at most {top[0]:.0f} MiB ({cfg(top[1])}).")
    big_key = f"{GEMM_BIG}x{GEMM_BIG}x{GEMM_BIG}"
    if big_key in gemm:
        lines.append(f"- float32 GEMM {GEMM_BIG}^3 (torch.mm): {gemm[big_key]['gflops']:.1f} GFLOP/s.")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines.append(f"- **{len(failed)} measurement(s) failed** (see the note column): "
                     + "; ".join(f"{r['lib']} at {cfg(r)}" for r in failed[:5]) + ("; ..." if len(failed) > 5 else "") + ".")
    for n in notes:
        lines.append(f"- Note: {n}")
    return lines


def _fmt(value, spec: str, empty: str = "") -> str:
    if value == "" or value is None:
        return empty
    return format(value, spec)


def write_markdown(path: Path, rows, gemm, notes, meta, gemm_fast=None) -> None:
    out = ["# rkm training-step benchmark", ""]
    out.append(f"`{meta['command']}`  ")
    out.append(f"{meta['date']} | {meta['cpu']} | {meta['cores']} cores, {meta['threads']} threads | "
               f"python {meta['python']} | torch {meta['torch']} | " +
               " | ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "  ")
    out.append(f"rkm fast float32 products: {meta['fast_matmul']}")
    out += ["", "## Summary", ""]
    out += summarize(rows, gemm, notes)
    out += ["", "## Per update", "",
            "ms: median over repetitions of (block time / updates in the block); spread: min to max, IQR: "
            "25th to 75th percentile. GFLOP/s: 2(2k+1)·B·Nv·Nh / time (the passes); % GEMM: that rate over "
            "torch.mm of (B x 784) @ (784 x n_hidden) in IEEE float32; % fast GEMM: over the same product in the "
            "fast float32 mode rkm uses; speedups are other ms / rkm ms (> 1: rkm faster); "
            "accounting: share of rkm's time spent computing power; peak RSS: increase over the worker's "
            "post-import baseline.", ""]
    head = ["n_hidden", "batch", "algo", "k", "library", "ms/update", "min to max", "IQR", "updates/s", "samples/s",
            "GFLOP/s", "% GEMM", "% fast GEMM", "vs pyrkm", "vs sklearn", "vs sklearn-fit32", "accounting", "peak RSS MiB", "note"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---:" if h not in ("algo", "library", "note") else "---" for h in head) + "|")
    for r in rows:
        out.append("| " + " | ".join([
            str(r["n_hidden"]), str(r["batch"]), r["algo"], str(r["k"]), r["lib"],
            _fmt(r["ms_median"], ".3f", "-"),
            "" if r["ms_min"] == "" else f"{r['ms_min']:.3f} to {r['ms_max']:.3f}",
            "" if r["ms_q1"] == "" else f"{r['ms_q1']:.3f} to {r['ms_q3']:.3f}",
            _fmt(r["updates_per_s"], ".1f"), _fmt(r["samples_per_s"], ".0f"), _fmt(r["gflops"], ".1f"),
            _fmt(r["gemm_fraction"], ".0%"), _fmt(r["gemm_fraction_fast"], ".0%"), _fmt(r["speedup_vs_pyrkm"], ".1f"), _fmt(r["speedup_vs_sklearn"], ".2f"),
            _fmt(r["speedup_vs_sklearn_fit32"], ".2f"), _fmt(r["accounting_share"], ".1%"),
            _fmt(r["peak_rss_mib"], ".1f"), str(r["note"]).replace("|", "/"),
        ]) + " |")
    out += ["", "## float32 GEMM (torch.mm, same thread count)", "",
            "(B x 784) @ (784 x n_hidden) is timed inside the first worker of each configuration, interleaved with "
            "its repetitions; a row's % GEMM uses its own configuration's measurement. Here: the median over the "
            "configurations of a shape and the range. Rows marked fast mode time the same product with "
            "torch.backends.mkldnn.matmul.fp32_precision = 'bf16', the mode of rkm's fast products."
            + (f" {GEMM_BIG}^3 is timed once, in its own worker." if f"{GEMM_BIG}x{GEMM_BIG}x{GEMM_BIG}" in gemm else ""), "",
            "| shape (m x k x n) | measurements | ms (median) | GFLOP/s (median) | GFLOP/s range |", "|---|---:|---:|---:|---:|"]
    for label, table in (("", gemm), (" fast mode", gemm_fast or {})):
        for shape, g in table.items():
            out.append(f"| {shape}{label} | {g['n']} | {g['ms_median']:.4f} | {g['gflops']:.1f} | "
                       f"{g['gflops_min']:.1f} to {g['gflops_max']:.1f} |")
    out += ["", "## Libraries", ""]
    for lib in ROW_LIBS:
        out.append(f"- `{lib}`: {ROW_DESCRIPTIONS[lib]}")
    path.write_text("\n".join(out) + "\n")


def write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def gemm_summary(samples: dict[str, list[float]]) -> dict[str, dict]:
    """Per shape 'm x k x n': the median ms of its measurements and the GFLOP/s range."""
    out = {}
    for shape, ms in samples.items():
        m, kdim, n = (int(x) for x in shape.split("x"))
        flops = 2.0 * m * kdim * n
        rates = [flops / (t * 1e-3) / 1e9 for t in ms]
        med = statistics.median(ms)
        out[shape] = {"ms_median": med, "gflops": flops / (med * 1e-3) / 1e9, "gflops_min": min(rates),
                      "gflops_max": max(rates), "n": len(ms)}
    return dict(sorted(out.items(), key=lambda t: tuple(int(x) for x in t[0].split("x"))))


def rkm_matmul_probe() -> dict:
    """rkm's measurement of its fast float32 products on this machine (``rkm.core._products.probe``)."""
    from rkm.core import _products

    return _products.probe()


def _versions(libs) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for lib, dist in (("rkm", "rkm"), ("pyrkm", "pyrkm"), ("sklearn", "scikit-learn")):
        if lib in libs:
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[lib] = metadata.version(dist)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-hidden", type=int, nargs="+", help=f"default {GRID['n_hidden']}")
    p.add_argument("--batch", type=int, nargs="+", help=f"default {GRID['batch']}")
    p.add_argument("--algo", nargs="+", choices=ALGOS, help=f"default {GRID['algo']}")
    p.add_argument("--k", type=int, nargs="+", help=f"default {GRID['k']}")
    p.add_argument("--libs", nargs="+", choices=LIBS, help=f"default {list(LIBS)}")
    p.add_argument("--repeats", type=int, help="timed repetitions per measurement (default 5; quick: 2)")
    p.add_argument("--rounds", type=int, help="rounds of workers per configuration, libraries in alternating "
                                               "order, repetitions pooled (default 2; quick: 1)")
    p.add_argument("--min-time", type=float, help="seconds per repetition, at least (default 0.3; quick: 0.02)")
    p.add_argument("--warmup-time", type=float, help="seconds of the last warm-up block (default 0.2; quick: 0.01)")
    p.add_argument("--threads", type=int, default=default_threads(), help="torch / BLAS threads (default: the cores this process may use)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT.relative_to(REPO)}/)")
    p.add_argument("--quick", action="store_true", help="one tiny configuration, rkm only, a few updates (the test suite)")
    p.add_argument("--no-accounting", action="store_true", help="do not time rkm without its power computation")
    p.add_argument("--rkm-input", choices=("batches", "tensor"), default="batches",
                   help="give rkm the list of float32 batches pyrkm gets (default) or one tensor of the same rows")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of every library (default 1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker before it is abandoned")
    p.add_argument("--plot", action="store_true", help="also draw train_step.png (python -m benchmarks.plot)")
    p.add_argument("--verbose", action="store_true", help="show the workers' own output")
    p.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    grid = QUICK if a.quick else GRID
    for name in ("n_hidden", "batch", "algo", "k"):
        if getattr(a, name) is None:
            setattr(a, name, list(grid[name]))
    if a.libs is None:
        a.libs = list(QUICK["libs"] if a.quick else LIBS)
    a.repeats = a.repeats or (2 if a.quick else 5)
    a.rounds = a.rounds or (1 if a.quick else 2)
    a.min_time = a.min_time if a.min_time is not None else (0.02 if a.quick else 0.3)
    a.warmup_time = a.warmup_time if a.warmup_time is not None else (0.01 if a.quick else 0.2)
    for name in ("n_hidden", "batch", "k"):
        if min(getattr(a, name)) < 1:
            p.error(f"--{name.replace('_', '-')} values must be >= 1")
    if a.threads < 1 or a.repeats < 1 or a.rounds < 1:
        p.error("--threads, --repeats and --rounds must be >= 1")
    return a


def load_data():
    """Binarised mnist-5k training rows, float32 (4500 x 784)."""
    import numpy as np

    from rkm.io.datasets import load_dataset

    X = np.asarray(load_dataset("mnist-5k").train, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != N_VISIBLE or not np.isin(X, (0.0, 1.0)).all():
        raise RuntimeError(f"mnist-5k is not a binary (N, {N_VISIBLE}) array: shape {X.shape}")
    return X


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.worker:
        return worker_main(a.worker)
    import numpy as np

    command = "python -m benchmarks.train_step " + " ".join(argv if argv is not None else sys.argv[1:])
    a.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    libs = []
    for lib in a.libs:
        available, why = library_available(lib)
        if available:
            libs.append(lib)
        else:
            notes.append(why)
            print(why, flush=True)
    if a.threads > default_threads():
        notes.append(f"--threads {a.threads} is more than the {default_threads()} cores this process may use")
    configs = [dict(n_hidden=h, batch=b, algo=al, k=k) for h, b, al, k in itertools.product(a.n_hidden, a.batch, a.algo, a.k)]
    X = load_data()
    common = dict(threads=a.threads, repeats=a.repeats, min_time=a.min_time, warmup_time=a.warmup_time,
                  seed=a.seed, lr=a.lr)
    fast = rkm_matmul_probe()
    meta = dict(command=command.strip(), date=time.strftime("%Y-%m-%d %H:%M"), cpu=_cpu_name(),
                cores=default_threads(), threads=a.threads, python=platform.python_version(),
                torch=_dist_version("torch"), versions=_versions(libs),
                fast_matmul=(f"{'in use' if fast['available'] else 'not used'} ({fast['reason']}; mean relative error "
                             f"{fast['fast_error']:.2g} vs IEEE {fast['ieee_error']:.2g})"))
    rows: list[dict] = []
    raw: dict = {"meta": meta, "workers": []}
    gemm_samples: dict[str, list[float]] = {}
    gemm_fast_samples: dict[str, list[float]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rkm-bench-") as tmp:
        workdir = Path(tmp)
        data_path = workdir / "mnist5k_train.npy"
        np.save(data_path, X)
        if not a.quick:
            print(f"GEMM rate {GEMM_BIG}^3 ...", flush=True)
            g = run_worker(dict(kind="gemm", **common), workdir, a.timeout, a.verbose)
            raw["workers"].append({"kind": "gemm", **g})
            if g.get("ok"):
                for shape, v in g["gemm"].items():
                    gemm_samples.setdefault(shape, []).append(v["ms_median"])
            else:
                notes.append(f"{GEMM_BIG}^3 GEMM measurement failed: {g.get('error')}")
        for i, cfg in enumerate(configs, 1):
            plan = []
            if "rkm" in libs:
                variants = ["rkm"] + ([] if a.no_accounting else ["rkm-noacct"])
                plan.append(("rkm", variants))
            if "pyrkm" in libs:
                plan.append(("pyrkm", ["pyrkm"]))
            if "sklearn" in libs and cfg["algo"] == "PCD" and cfg["k"] == 1:
                plan += [("sklearn", ["sklearn"]), ("sklearn-fit32", ["sklearn-fit32"])]
            shape = f"{cfg['batch']}x{N_VISIBLE}x{cfg['n_hidden']}"
            pooled: dict[str, dict] = {}
            failed: dict[str, str] = {}
            gemm_times: dict[str, list[float]] = {"gemm": [], "gemm_fast": []}
            said = []
            for round_index in range(a.rounds):
                # Alternate the order of the libraries between rounds, so that a slow spell of the
                # machine does not fall on one library only; repetitions are pooled over rounds.
                for j, (kind, variants) in enumerate(plan if round_index % 2 == 0 else plan[::-1]):
                    if kind in failed:
                        continue
                    # The first worker of each round also times the same-shape GEMM,
                    # interleaved with its own repetitions (same process, threads, moment).
                    spec = dict(kind="sklearn" if kind.startswith("sklearn") else kind, variants=variants,
                                data=str(data_path), rkm_input=a.rkm_input, gemm=j == 0,
                                gemm_fast=j == 0 and fast["available"], **cfg, **common)
                    res = run_worker(spec, workdir, a.timeout, a.verbose)
                    raw["workers"].append({"spec": {k: v for k, v in spec.items() if k != "data"}, **res})
                    if not res.get("ok"):
                        failed[kind] = str(res.get("error"))
                        said.append(f"{kind} FAILED ({res.get('error')})")
                        continue
                    for key, samples in (("gemm", gemm_samples), ("gemm_fast", gemm_fast_samples)):
                        if key in res:
                            gemm_times[key] += res[key]["times_ms"]
                            samples.setdefault(shape, []).append(res[key]["ms_median"])
                    for v in variants:
                        r, into = res["rows"][v], pooled.setdefault(v, {"times": [], "updates": [], "rss": []})
                        into["times"] += r["times_ms"]
                        into["updates"] += r["updates"]
                        if res.get("peak_rss") is not None:
                            into["rss"].append(res["peak_rss"])
                        into["dtype"], into["note"] = res.get("dtype", ""), res.get("rss_note", "")
            flops = 2.0 * cfg["batch"] * N_VISIBLE * cfg["n_hidden"]
            gemm_rate, gemm_fast_rate = (
                flops / (quantiles(t)["median"] * 1e-3) / 1e9 if t else None
                for t in (gemm_times["gemm"], gemm_times["gemm_fast"])
            )
            if gemm_rate:
                said.append(f"mm {gemm_rate:.1f} GFLOP/s")
            if gemm_fast_rate:
                said.append(f"mm fast mode {gemm_fast_rate:.1f} GFLOP/s")
            for kind, variants in plan:
                for v in variants:
                    if kind in failed:
                        rows.append(make_row(v, cfg, a.threads, note=f"failed: {failed[kind]}", status="failed"))
                        continue
                    got = pooled[v]
                    rows.append(make_row(v, cfg, a.threads, got["times"], got["updates"],
                                         max(got["rss"]) if got["rss"] else None, got["dtype"], got["note"],
                                         gemm_rate, gemm_fast_gflops=gemm_fast_rate))
                    said.append(f"{v} {rows[-1]['ms_median']:.3f} ms")
            add_comparisons(rows)
            elapsed = time.perf_counter() - started
            print(f"[{i}/{len(configs)} {elapsed:6.0f} s] n_hidden={cfg['n_hidden']} batch={cfg['batch']} "
                  f"{cfg['algo']} k={cfg['k']}: " + ", ".join(said), flush=True)
            gemm = gemm_summary(gemm_samples)
            write_csv(a.out / "train_step.csv", rows)  # after every configuration: partial results survive
            write_markdown(a.out / "train_step.md", rows, gemm, notes, meta, gemm_summary(gemm_fast_samples))
    gemm = gemm_summary(gemm_samples)
    raw["rows"] = rows
    (a.out / "raw.json").write_text(json.dumps(raw, indent=1, default=str))
    write_csv(a.out / "train_step.csv", rows)
    write_markdown(a.out / "train_step.md", rows, gemm, notes, meta, gemm_summary(gemm_fast_samples))
    print("\n".join(["", *summarize(rows, gemm, notes)]))
    print(f"\nwrote {a.out / 'train_step.md'} and {a.out / 'train_step.csv'} in {time.perf_counter() - started:.0f} s")
    if a.plot:
        from benchmarks.plot import plot

        png = plot(a.out / "train_step.csv", a.out / "train_step.png")
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
