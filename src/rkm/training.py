"""Training: negative-phase chains, one update, energy accounting, the training loop.

One update (``update_step``) runs, with power accounted for every pass:

1. the positive phase: data ``v`` clamped, hidden sample ``h`` (forward pass);
2. the negative phase of ``train_algo`` (``B = batch_size`` model chains):

   ========  ==============================================  ======================
   algo      chain                                           model pair
   ========  ==============================================  ======================
   CD        k steps v -> h -> v from the data batch         (v_k, h_{k-1})
   PCD       k steps from the persistent chains (kept)       (v_k, h_{k-1})
   vRDM      k steps from fresh random binary visibles       (v_k, h_{k-1})
   RDM       as vRDM, then one more forward pass             (v_k, h_k)
   hRDM      fresh random hiddens, one backward pass, then   (v_k, h_{k-1});
             k-1 steps                                       k=1: (v_1, h_1 ~ v_1)
   ========  ==============================================  ======================

   ``(v_k, h_{k-1})`` is the state of the circuit at the end of the last backward pass,
   as in the reference. For hRDM with k=1 the reference paired the model visibles with
   the random starting hiddens; here one forward pass samples hiddens from them.
3. the contrastive statistics as two matrix products (never a (batch, n_hidden,
   n_visible) tensor), centering offsets slid towards the batch means, and the
   optimiser step with regularisation and clipping (``RBM._apply_update``). Plain SGD
   (no centering, no regularisation) adds the two products straight into ``W``.

Energy accounting follows the reference: ``power_f`` / ``power_b`` are the sum, over the
update's forward / backward passes, of the batch-mean power of each pass; ``energy``
accumulates the power of every pass and every sample (in units of power x pass time),
in float64.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator

import numpy as np
import torch

from . import comparators, matmul, metrics, physics
from .batches import batch_rows
from .errors import ConfigError, DataError

logger = logging.getLogger("rkm.training")


class _Accounting:
    """The passes of one update, with the power of each pass kept for one reduction at the end."""

    def __init__(self, model):
        self.model = model
        self.powers: tuple[list, list] = ([], [])
        # the passes leave out each direction's constant power; taken before the update changes it
        self.constants = tuple(phys.constant for phys in model._physics(check=False))

    def forward(self, v, binary: bool = True):
        """Hidden sample from ``v``; ``binary=False`` when ``v`` may not be 0/1 (data, user-set chains)."""
        _, h, power = self.model._pass(v, True, self.model.model_beta, power=True, binary=binary)
        self.powers[0].append(power)
        return h

    def backward(self, h):
        _, v, power = self.model._pass(h, False, self.model.model_beta, power=True, binary=True)
        self.powers[1].append(power)
        return v

    def close(self) -> None:
        """Store the update's ``power_f``, ``power_b`` and add every pass to ``energy``.

        The passes hold twice their power less the direction's constant, unclipped; all
        of a direction's passes get the constant, are halved and clipped in one go.
        """
        model = self.model
        for name, powers, constant in zip(("power_f", "power_b"), self.powers, self.constants):
            power = torch.cat(powers).add_(constant).clamp_min_(0.0).mul_(0.5)
            sizes = [p.shape[0] for p in powers]
            if len(set(sizes)) == 1:
                means = power.view(len(sizes), -1).mean(dim=1, dtype=torch.float64)
            else:  # a short last data batch beside full-size chains
                means = torch.stack([part.mean(dtype=torch.float64) for part in power.split(sizes)])
            setattr(model, name, means.sum())
            model.energy += power.sum(dtype=torch.float64)

    def gibbs(self, v, steps: int, binary: bool = True):
        """``steps`` full steps v -> h -> v; returns the last v and the h it came from.

        ``binary`` says whether the starting ``v`` is known to be 0/1; every later state is.
        """
        h = None
        for _ in range(steps):
            h = self.forward(v, binary)
            v, binary = self.backward(h), True
        return v, h


def negative_phase(
    model, acc: _Accounting, v_data: torch.Tensor, data_binary: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model samples ``(v_model, h_model)`` of ``model.train_algo``, with accounting.

    ``data_binary``: ``v_data`` is known to be 0/1.
    """
    algo, k, B = model.train_algo, model.k, model.batch_size
    opts = {"generator": model.generator, "dtype": model.mytype, "device": model.device}
    if algo == "CD":
        return acc.gibbs(v_data, k, binary=data_binary)
    if algo == "PCD":
        chains = model.persistent_chains
        if chains.shape != (B, model.n_visible):
            raise ConfigError(
                f"persistent_chains has shape {tuple(chains.shape)} but batch_size is {B}; "
                "keep batch_size fixed during PCD training."
            )
        v, h = acc.gibbs(chains, k, binary=False)
        model.persistent_chains = v
        return v, h
    if algo in ("vRDM", "RDM"):
        v, h = acc.gibbs(comparators.random_binary((B, model.n_visible), **opts), k)
        if algo == "RDM":
            h = acc.forward(v)
        return v, h
    v = acc.backward(comparators.random_binary((B, model.n_hidden), **opts))
    v, h = acc.gibbs(v, k - 1)
    if h is None:
        h = acc.forward(v)
    return v, h


def update_step(model, v_data: torch.Tensor) -> None:
    """One gradient update on the batch ``v_data`` (already on the model's device and dtype)."""
    acc = _Accounting(model)
    # the int8 statistics need 0/1 data; the check also spares the data passes a square
    counting = not model.centering and model.fast_matmul is not False and v_data.device.type == "cpu"
    data_binary = counting and matmul.is_binary(v_data)
    h_data = acc.forward(v_data, binary=data_binary)
    v_model, h_model = negative_phase(model, acc, v_data, data_binary)

    if model.centering:
        model.ov = (1 - model.slv) * model.ov + model.slv * v_data.mean(dim=0)
        model.oh = (1 - model.slh) * model.oh + model.slh * h_data.mean(dim=0)
    nd, nm = v_data.shape[0], v_model.shape[0]
    fast = model.uses_fast_matmul
    dv = v_data.mean(dim=0) - v_model.mean(dim=0)
    dh = h_data.mean(dim=0) - h_model.mean(dim=0)
    counts = matmul.binary_counts(h_data, v_data, h_model, v_model) if data_binary else None  # nd == nm if not None
    if model._plain_sgd():
        # the statistics accumulate straight into W: no float W-sized gradient is formed
        if counts is not None:
            model._W.add_(counts, alpha=model.lr / nd)
        else:
            matmul.addmm_(model._W, h_data.t(), v_data, model.lr / nd, fast)
            matmul.addmm_(model._W, h_model.t(), v_model, -model.lr / nm, fast)
        model._apply_update(None, dv, dh)
    else:
        if counts is not None:
            dW = counts.to(model.mytype).div_(nd)
        else:
            dW = matmul.mm(((h_data - model.oh) / nd).t(), v_data - model.ov, fast)
            matmul.addmm_(dW, (h_model - model.oh).t(), v_model - model.ov, -1.0 / nm, fast)
        model._apply_update(dW, dv, dh)

    acc.close()
    forward, backward = model._physics(check=False)
    model.relax_t_f, model.relax_t_b = physics.relaxation_times(forward), physics.relaxation_times(backward)


# ----------------------------------------------------------------- data
def pass_seed(seed: int, pass_index: int) -> int:
    """Seed of the shuffling of pass ``pass_index`` over an array: a pure function, so resumes repeat it."""
    return (int(seed) * 1_000_003 + int(pass_index) * 7919 + 12345) % (2**63)


def _to_batch(model, batch) -> torch.Tensor:
    return model._as_batch(batch_rows(batch), model.n_visible, "a training batch")[0]


def batches(model, data) -> Iterator[torch.Tensor]:
    """Endless mini-batches from ``data``, positioned at update ``model.epoch``.

    Arrays and tensors are shuffled per pass with :func:`pass_seed`; other iterables
    (a DataLoader, a list of batches) are iterated again and again, the batches already
    consumed in the current pass skipped on resume when the iterable has a length.
    """
    if isinstance(data, (torch.Tensor, np.ndarray)):
        X = model._as_batch(data, model.n_visible, "train_data")[0]
        n, B = X.shape[0], model.batch_size
        per_pass = math.ceil(n / B)
        pass_index, position = divmod(model.epoch, per_pass)
        while True:
            g = torch.Generator().manual_seed(pass_seed(model.seed, pass_index))
            order = torch.randperm(n, generator=g).to(X.device)
            for i in range(position, per_pass):
                yield X[order[i * B : (i + 1) * B]]
            position, pass_index = 0, pass_index + 1
    if not hasattr(data, "__iter__"):
        raise DataError(f"train_data must be a DataLoader, an iterable of batches, a tensor or an array, got {type(data).__name__}.")
    skip = model.epoch % len(data) if hasattr(data, "__len__") and len(data) > 0 else 0
    while True:
        produced = 0
        for i, batch in enumerate(data):
            if i < skip:
                continue
            produced += 1
            yield _to_batch(model, batch)
        if produced == 0:
            raise DataError("train_data yielded no batches; pass a re-iterable (a DataLoader, a list) or an array.")
        skip = 0


# ------------------------------------------------------------ the loop
@contextlib.contextmanager
def evaluation_rng(model):
    """Monitoring draws from its own generator, so it never changes the training trajectory."""
    saved = model.generator
    model.generator = torch.Generator(device=model.device).manual_seed(pass_seed(model.seed, -1 - model.epoch))
    try:
        yield
    finally:
        model.generator = saved


def monitored_error(model, v: torch.Tensor, k: int = 1) -> float:
    """Reconstruction error (``rkm.metrics.reconstruction_error``) drawn from a separate
    generator, so monitoring never changes the training trajectory."""
    with evaluation_rng(model):
        return metrics.reconstruction_error(model, v, k)


class _Interrupt:
    """First Ctrl-C: finish the running update, save, then raise KeyboardInterrupt."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _ensure_visible_logging() -> None:
    """Show progress messages on stderr when the application configured no logging (like the reference's prints)."""
    base = logging.getLogger("rkm")
    if not base.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        base.addHandler(handler)
        base.setLevel(logging.INFO)


def train(
    model,
    train_data,
    test_data=(),
    print_error=False,
    print_test_error=False,
    model_state_path="model_states/",
    print_every=100,
    progress=False,
    save=True,
    callback=None,
) -> None:
    """Train ``model`` up to ``model.max_epochs`` updates; see :meth:`rkm.RBM.train`."""
    from .checkpoint import save_model

    model._check_settings()
    print_every = int(print_every)
    if print_every < 1:
        raise ConfigError(f"print_every must be >= 1, got {print_every}.")
    test = None
    if print_test_error:
        if test_data is None or len(test_data) == 0:
            raise DataError("print_test_error=True needs test_data.")
        test = model._as_batch(test_data, model.n_visible, "test_data")[0]
    model._physics()
    save_points = set(model.t_to_save) if save else set()
    source = batches(model, train_data)
    if not progress:
        _ensure_visible_logging()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.max_epochs, initial=model.epoch, unit="update", dynamic_ncols=True)

    with _Interrupt() as interrupt:
        while model.epoch < model.max_epochs:
            v_data = next(source)
            start = time.perf_counter()
            update_step(model, v_data)
            model.epoch += 1
            if model.epoch in save_points:
                save_model(model, model_state_path)
            if callback is not None:
                callback(model)
            if model.epoch % print_every == 0:
                _report(model, v_data, test, print_error, time.perf_counter() - start, bar)
            if bar is not None:
                bar.update(1)
            if interrupt.requested:
                path = save_model(model, model_state_path)
                logger.warning("Interrupted at update %d; resumable save point written to %s", model.epoch, path)
                if bar is not None:
                    bar.close()
                raise KeyboardInterrupt
    if bar is not None:
        bar.close()
    logger.info("*** Training finished at update %d", model.epoch)


def _report(model, v_data, test, print_error, seconds, bar) -> None:
    fields = {"update": model.epoch, "time": seconds}
    if print_error:
        fields["train-err"] = monitored_error(model, v_data)
    if test is not None:
        fields["test-err"] = monitored_error(model, test)
    fields["power_f"] = float(model.power_f)
    fields["power_b"] = float(model.power_b)
    if bar is not None:
        bar.set_postfix({k: f"{v:.4g}" for k, v in fields.items() if k not in ("update", "time")}, refresh=False)
        return
    parts = [f"Update: {model.epoch}"]
    if test is not None:
        parts.append(f"test-err {fields['test-err']:.5g}")
    if print_error:
        parts.append(f"train-err {fields['train-err']:.5g}")
    parts.append(f"time: {seconds:f}")
    logger.info(" , ".join(parts))
