"""Files: datasets and their readers, save points.

=================  =================================================================
module             what it holds
=================  =================================================================
``datasets``       the binarised datasets: mnist-5k, digits, bars-and-stripes, MNIST, arrays
``savepoints``     save-point files: tensors + header, one digest, bounded reads, atomic writes
=================  =================================================================

Internal: ``_batches`` (what one training batch from an iterable may be), ``_binary`` (the
``Dataset`` record and binarisation), ``_readers`` (.npy/.npz/.csv and IDX files), ``_mnist``
(full MNIST folders and the download); ``datasets`` is their public entry. This layer knows
no model class; it imports only :mod:`rkm.errors` and the core's checks.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["datasets", "savepoints"])
