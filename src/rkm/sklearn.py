"""scikit-learn estimators: the RKM (``BernoulliRKM``) and the RBM (``RBMEstimator``) as transformers.

Both follow :class:`sklearn.neural_network.BernoulliRBM`: the same constructor
parameters where they mean the same (``n_components``, ``learning_rate``,
``batch_size``, ``n_iter``, ``verbose``, ``random_state``), ``fit``, ``partial_fit``,
``transform`` (P(h = 1 | v)), ``gibbs``, ``score_samples``, ``get_feature_names_out``,
and the fitted state with trailing underscores (``components_``, ``intercept_hidden_``,
``intercept_visible_``), plus the RKM's physical parameters and its accounting
(``power_forward_``, ``power_backward_``, ``energy_``). They pass scikit-learn's
``check_estimator`` and work in a ``Pipeline``::

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from rkm.sklearn import BernoulliRKM

    clf = Pipeline([("rkm", BernoulliRKM(n_components=100, random_state=0)),
                    ("logistic", LogisticRegression(max_iter=1000))])
    clf.fit(X_train, y_train)          # X in [0, 1], e.g. digits / 16

Training is rkm's (:meth:`rkm.RBM.train`): the contrastive rule on binary samples with
the negative phase ``train_algo`` (default PCD, as ``BernoulliRBM``), energy accounted
on every pass. ``BernoulliRBM`` instead uses mean hidden probabilities in its
statistics, so the two learn differently from the same start; with the same parameters
their ``transform`` is the same and ``score_samples`` agrees in expectation.

Every draw comes from the machine's own generator, seeded from ``random_state``: two
fits with the same ``random_state`` are identical. ``fit`` and ``partial_fit`` print
nothing at ``verbose=0``; ``verbose > 0`` prints the score after every pass to standard
output, as ``BernoulliRBM`` does. rkm's own log messages (logger ``rkm``, such as the end of
training at INFO) are shown only where the application configures logging.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import Tags, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .core import _checks, comparators, hopfield
from .core._checks import integer
from .machine import RBM, RKM

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BernoulliRKM", "RBMEstimator"]


class BernoulliRKM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Restricted Kirchhoff Machine as a scikit-learn transformer (``BernoulliRBM``'s interface).

    Parameters
    ----------
    n_components : int
        Hidden units.
    learning_rate : float
        Learning rate of each update (the step is ``learning_rate`` times batch means).
    batch_size : int
        Samples per mini-batch, and number of model chains.
    n_iter : int
        Passes over the training data in ``fit``.
    verbose : int
        Above 0, print the score after every pass to standard output (as ``BernoulliRBM``); 0 prints
        nothing.
    random_state : None, int or numpy.random.RandomState
        Seeds the machine's generator (initial parameters, shuffling, every sample).
    k : int
        Gibbs steps of the negative phase.
    train_algo : {'PCD', 'CD', 'RDM', 'vRDM', 'hRDM'}
    optimizer : {'SGD', 'Adam'}
    model_beta : float
        Inverse temperature of the comparators. The default 0.2 keeps the RKM's features
        graded: with layer scaling a hidden unit's comparator sees its node voltage times the
        number of visible units, so at 1 nearly every P(h = 1 | v) is 0 or 1. On the digits
        pipeline (scaler -> BernoulliRKM -> logistic regression) 0.2 gave the best test
        accuracy of 0.02 to 1 at the defaults and at 100 components (``docs/sklearn.md``).
    g_v, g_h : float
        Bias supply voltages.
    offset : float
        Offset voltage c of the inverted sources.
    sampling : {'bernoulli', 'multi-threshold', 'single-threshold'}
    distribution : {'gaussian', 'uniform'}
    layer_scaled : bool
        Scale comparator inputs by the size of the clamped layer.
    min_W, max_W : float
        Clipping range of the parameters.
    device : str
        Torch device of the machine (computation in float64).

    Attributes
    ----------
    model_ : rkm.RKM or rkm.RBM
        The trained machine (float64); ``components_`` and the other fitted arrays are
        copies of its state.
    components_ : ndarray of shape (n_components, ``n_features_in_``)
        Weights ``W``.
    intercept_hidden_ : ndarray of shape (n_components,)
    intercept_visible_ : ndarray of shape (``n_features_in_``,)
    power_forward_, power_backward_ : float
        Power of the last update's forward and backward passes (sum of batch means).
    energy_ : float
        Energy dissipated by all passes since the estimator was last fitted.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    """

    _energy_type = "RKM"

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
        k: int = 1,
        train_algo: str = "PCD",
        optimizer: str = "SGD",
        model_beta: float = 0.2,
        g_v: float = 0.5,
        g_h: float = 0.5,
        offset: float = 0.0,
        sampling: str = "bernoulli",
        distribution: str = "gaussian",
        layer_scaled: bool = True,
        min_W: float = -10.0,
        max_W: float = 10.0,
        device: str = "cpu",
    ) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.train_algo = train_algo
        self.optimizer = optimizer
        self.model_beta = model_beta
        self.g_v = g_v
        self.g_h = g_h
        self.offset = offset
        self.sampling = sampling
        self.distribution = distribution
        self.layer_scaled = layer_scaled
        self.min_W = min_W
        self.max_W = max_W
        self.device = device

    # ------------------------------------------------------------ fitted state
    @property
    def components_(self) -> np.ndarray:
        return self._numpy(self.model_.W)

    @property
    def intercept_hidden_(self) -> np.ndarray:
        return self._numpy(self.model_.h_bias)

    @property
    def intercept_visible_(self) -> np.ndarray:
        return self._numpy(self.model_.v_bias)

    @property
    def power_forward_(self) -> float:
        return float(self.model_.power_f)

    @property
    def power_backward_(self) -> float:
        return float(self.model_.power_b)

    @property
    def energy_(self) -> float:
        return float(self.model_.energy)

    @property
    def _n_features_out(self) -> int:
        return self.model_.n_hidden

    @staticmethod
    def _numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().copy()

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # ------------------------------------------------------------------ input
    def _rows(self, X: Any, reset: bool) -> torch.Tensor:
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=reset)
        if sp.issparse(X):
            X = X.toarray()
        device = _checks.device(self.device) if reset else self.model_.device
        return torch.tensor(np.asarray(X, dtype=np.float64), device=device)

    def _new_machine(self, n_features: int) -> RBM:
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        cls = RKM if self._energy_type == "RKM" else RBM
        return cls(
            "sklearn", n_features, self.n_components, k=self.k, lr=self.learning_rate, max_epochs=1,
            energy_type=self._energy_type, optimizer=self.optimizer, g_v=self.g_v, g_h=self.g_h,
            batch_size=self.batch_size, train_algo=self.train_algo, model_beta=self.model_beta,
            mytype=torch.float64, min_W=self.min_W, max_W=self.max_W, offset=self.offset, sampling=self.sampling,
            distribution=self.distribution, layer_scaled=self.layer_scaled, seed=seed, device=self.device,
        )

    def _train(self, data: torch.Tensor | list[torch.Tensor], updates: int, x: torch.Tensor) -> None:
        """``updates`` gradient updates of ``model_`` on ``data`` (an array, or a list of one batch)."""
        model = self.model_
        start, per_pass, began = model.epoch, max(1, math.ceil(x.shape[0] / model.batch_size)), time.perf_counter()

        def report(m: RBM) -> None:
            done = m.epoch - start
            if done % per_pass == 0 or done == updates:
                score = float(self._score_tensor(x).mean())
                print(f"[{type(self).__name__}] Iteration {math.ceil(done / per_pass)}, score = {score:.2f}, "
                      f"time = {time.perf_counter() - began:.2f}s", flush=True)

        # max_epochs is a setting: a descriptor machine.py sets on RBM from hyperparams.MODEL, unseen by mypy
        model.max_epochs = model.epoch + updates  # type: ignore[attr-defined]
        model.train(data, save=False, print_every=model.max_epochs + 1, callback=report if self.verbose else None,
                    values="any")

    # --------------------------------------------------------------- learning
    def fit(self, X: Any, y: Any = None) -> Self:
        """Fit a new machine to ``X`` with ``n_iter`` passes of mini-batches of ``batch_size``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values in [0, 1] (binary data, or probabilities of on pixels).
        y : ignored

        Returns
        -------
        self
        """
        n_iter = integer("n_iter", self.n_iter)
        x = self._rows(X, reset=True)
        self.model_ = self._new_machine(x.shape[1])
        self._train(x, n_iter * math.ceil(x.shape[0] / self.model_.batch_size), x)
        return self

    def partial_fit(self, X: Any, y: Any = None) -> Self:
        """One gradient update with ``X`` as the mini-batch (a new machine on the first call).

        Returns
        -------
        self
        """
        if hasattr(self, "model_"):
            x = self._rows(X, reset=False)
        else:
            x = self._rows(X, reset=True)
            self.model_ = self._new_machine(x.shape[1])
        self._train([x], 1, x)
        return self

    # -------------------------------------------------------------- inference
    def _probability(self, x: torch.Tensor, forward: bool) -> torch.Tensor:
        """P(unit = 1) of the free layer given the clamped one, in closed form (no draw)."""
        m = self.model_
        drive = m.delta_eh(x) if forward else m.delta_ev(x)
        return comparators.probability(m.network.comparator, drive, m.model_beta)

    def transform(self, X: Any) -> np.ndarray:
        """P(h = 1 | v) of every hidden unit, the features a downstream model uses.

        Returns
        -------
        ndarray of shape (n_samples, n_components), float64
        """
        check_is_fitted(self)
        return self._probability(self._rows(X, reset=False), True).cpu().numpy()

    def gibbs(self, v: Any) -> np.ndarray:
        """One Gibbs step v -> h -> v from ``v``, drawn from the machine's generator.

        Returns
        -------
        ndarray of bool, shape (n_samples, n_features)
        """
        check_is_fitted(self)
        return self.model_.forward(self._rows(v, reset=False), 1).cpu().numpy() > 0.5

    def _score_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The score of :meth:`score_samples`, of rows already on the machine's device."""
        m = self.model_
        v = self._probability(x, True)
        log_on, log_off = comparators.log_probability(m.network.comparator, m.delta_ev(v), m.model_beta)
        # 0 * log 0 = 0: a pixel that cannot be wrong contributes nothing, never NaN
        on, off = torch.where(x > 0, x * log_on, 0.0), torch.where(x < 1, (1.0 - x) * log_off, 0.0)
        return (on + off).sum(dim=1)

    def score_samples(self, X: Any) -> np.ndarray:
        """Mean-field reconstruction log-likelihood of each sample (deterministic).

        The hidden nodes are clamped at their expected values ``P(h = 1 | v)`` and the
        score is ``sum_i log P(v'_i = v_i)`` for the visible units the backward pass
        then produces. An RKM has no free energy (see :meth:`rkm.RBM.free_energy`), so
        its pseudo-likelihood is not defined; an exact log-likelihood needs the
        exact evaluation of small machines. For ``energy_type='hopfield'`` see
        :meth:`RBMEstimator.score_samples`.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self)
        return self._score_tensor(self._rows(X, reset=False)).cpu().numpy()


class RBMEstimator(BernoulliRKM):
    """The Bernoulli RBM (``energy_type='hopfield'``) with ``BernoulliRKM``'s interface.

    A drop-in for :class:`sklearn.neural_network.BernoulliRBM`: same parameters (plus
    those of :class:`BernoulliRKM`, which here set only the resistor network whose power
    is accounted), the same ``transform`` for the same parameters, and a deterministic
    ``score_samples``. Its ``model_beta`` defaults to 1, ``BernoulliRBM``'s law.
    """

    _energy_type = "hopfield"

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
        k: int = 1,
        train_algo: str = "PCD",
        optimizer: str = "SGD",
        model_beta: float = 1.0,
        g_v: float = 0.5,
        g_h: float = 0.5,
        offset: float = 0.0,
        sampling: str = "bernoulli",
        distribution: str = "gaussian",
        layer_scaled: bool = True,
        min_W: float = -10.0,
        max_W: float = 10.0,
        device: str = "cpu",
    ) -> None:
        # scikit-learn reads an estimator's parameters from its own __init__'s signature: the list is repeated
        super().__init__(
            n_components, learning_rate=learning_rate, batch_size=batch_size, n_iter=n_iter, verbose=verbose,
            random_state=random_state, k=k, train_algo=train_algo, optimizer=optimizer, model_beta=model_beta, g_v=g_v,
            g_h=g_h, offset=offset, sampling=sampling, distribution=distribution, layer_scaled=layer_scaled,
            min_W=min_W, max_W=max_W, device=device,
        )

    def _score_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The pseudo-likelihood of :meth:`score_samples`, of rows already on the machine's device."""
        m = self.model_
        return hopfield.pseudo_log_likelihood(x, m.W, m.v_bias, m.h_bias, m.model_beta)

    def score_samples(self, X: Any) -> np.ndarray:
        """Pseudo-log-likelihood ``sum_i log P(v_i | v_-i)`` of each sample, every pixel flipped in turn.

        ``BernoulliRBM`` flips one random pixel per sample and returns ``n_features``
        times its log-conditional, a random estimate of this sum (which makes it fail
        two of scikit-learn's estimator checks); here every pixel is flipped
        (``v_i -> 1 - v_i``), so the score is deterministic and is the expectation of
        ``BernoulliRBM``'s. Cost: one (rows, n_features, n_components) block per chunk.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self)
        return self._score_tensor(self._rows(X, reset=False)).cpu().numpy()
