"""No silent NaN: the check that stops training at the first update that produces a non-finite value.

:func:`check_update` runs at the end of every :meth:`~rkm.training.Trainer.update`, before the
update's callbacks (so no save point of a bad state is written) and before the update is
counted. It checks one sum: the update's energy (the power of every pass and sample) and
the sums of the next update's pass constants, which the network's physics cache computes now
instead of at the next update's start (the same work, done once either way). A NaN or inf in
any power, in the data or chains that fed a pass, or in ``W``, ``v_bias`` or ``h_bias`` after
the step reaches that sum. Only when it is not finite are the quantities told apart, for
the message.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from ..core import _checks
from ..core.network import Network
from ..errors import DataError
from ._accounting import Measured


def check_update(network: Network, measured: Measured, update: int, lr: float) -> None:
    """Raise a DataError naming ``update`` and the quantity if the update produced NaN or inf."""
    cache = network.physics(check=False)
    values = (measured.energy_f, measured.energy_b, cache.forward.conductance.sum(), cache.forward.constant,
              cache.backward.constant)
    if network.device.type == "cpu":  # reading five scalars is cheaper there than adding them as tensors
        probe = sum(value.item() for value in values)
    else:  # one synchronisation with the device
        probe = sum(values, torch.zeros((), dtype=torch.float64, device=network.device)).item()
    if math.isfinite(probe):
        return
    found, hints = [], []
    for direction, energy in (("forward", measured.energy_f), ("backward", measured.energy_b)):
        if not bool(torch.isfinite(energy)):
            found.append(f"the energy of its {direction} passes ({float(energy)})")
    if found:
        hints.append(f"the data or the model's chains hold NaN, inf or values too large for {network.dtype} "
                     "(such as 1e20): pass 0/1 data (rkm.io.datasets.binarize) and finite chains")
    programmed = [name for name, t in zip(("W", "v_bias", "h_bias"), network.parameters()) if not _checks.all_finite(t)]
    if programmed:
        found.append(f"the parameters {programmed} after its step")
        hints.append(f"the step overflowed: lower lr (now {lr:g})")
    elif not found:
        found.append("the realised conductances of the device model")
    raise DataError(f"update {update} produced NaN or inf in {' and '.join(found)}; training stopped before "
                    f"the update's callbacks, so no save point of this state was written. Likely cause: "
                    f"{'; '.join(hints) or 'the device model'}. Reload the last save point to go on.")


@contextlib.contextmanager
def step_overflow(update: int, lr: float, dtype: torch.dtype) -> Iterator[None]:
    """Turn torch's error for a step factor that ``dtype`` cannot hold (``lr`` too large) into a DataError."""
    try:
        yield
    except RuntimeError as err:
        if "overflow" not in str(err):
            raise
        raise DataError(f"the step of update {update} overflowed {dtype} ({err}); lower lr (now {lr:g}).") from None
