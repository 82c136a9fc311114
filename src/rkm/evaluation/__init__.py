"""Evaluation: sample quality, likelihoods and exact laws of small machines.

=================  =================================================================
module             what it holds
=================  =================================================================
``metrics``        reconstruction error, AATS, entropy, moments, spectra, FID, label quality
``fid``            the small MNIST classifier shipped with rkm, whose features define its FID
``exact``          a small machine's exact law: the Gibbs chain's stationary law, log Z, KL
``ais``            annealed importance sampling of log Z for large hopfield machines
``likelihood``     which likelihood applies to a model, and its values (``rkm evaluate``)
=================  =================================================================

Evaluation reads a model through its public attributes and imports only the core: a new
likelihood estimator goes here.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__, submodules=["ais", "exact", "fid", "likelihood", "metrics"])
