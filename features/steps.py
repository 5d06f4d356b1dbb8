"""The base of the feature steps that learn nothing: a transformer from raw rows to predictors.

A fitted step computes the predictors it was fitted with, and no others. That matters because
fitted steps are pickled inside every logged model while their code is not: when a predictor is
added to a step's ``names`` (``marrow_involvement`` to the baseline step, say), a model fitted
before still answers with the predictors its trees and its additive part were fitted on. Each
step records its predictors at fit (``names_``); steps pickled before they did so computed
``first_names`` (the step's predictors in layout generation 1, :mod:`features.layout`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError


def as_columns(columns: list[np.ndarray]) -> np.ndarray:
    """Rows x ``len(columns)`` from 1-D arrays of one length, as floats: ``np.column_stack``'s
    values (laid out column by column), without its reshaping of every array, which was half
    the cost of a step on one patient's row."""
    return np.array(columns, dtype=float).T


def require_fitted(step, attribute: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` unless ``step`` has ``attribute``: what
    ``check_is_fitted(step, attribute)`` does, without its inspection of every attribute
    (microseconds that each step paid on every single-patient request)."""
    if not hasattr(step, attribute):
        raise NotFittedError(
            f"This {type(step).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


class FeatureStep(TransformerMixin, BaseEstimator):
    """The base of every feature step: a scikit-learn transformer whose ``transform`` returns a
    numpy array of predictors, as it computes it.

    scikit-learn wraps the ``transform`` of every ``TransformerMixin`` subclass for its
    ``set_output`` API (pandas or polars output), a wrapper that reads the global configuration
    on each call: 16 calls for one patient's request. The feature pipeline only ever outputs
    arrays, so its steps opt out (``auto_wrap_output_keys=None``, scikit-learn's documented
    switch) and ``set_output`` is not offered on them.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(auto_wrap_output_keys=None, **kwargs)

    if TYPE_CHECKING:  # what every step defines (TransformerMixin declares none of them)

        def fit(self, X, y=None) -> Self: ...
        def transform(self, X) -> np.ndarray: ...
        def get_feature_names_out(self, input_features=None) -> np.ndarray: ...


class Stateless(FeatureStep):
    """A feature step with nothing to learn: fit records the input width and the predictors.

    Subclasses set ``names`` (the predictors, in order) and ``_compute`` (one array per name, in
    that order, from the masked raw rows); a step whose predictors changed since generation 1 of
    the layout also sets ``first_names``.
    """

    names: tuple[str, ...] = ()
    first_names: tuple[str, ...] | None = None  # None: the same as ``names``

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        self.names_ = tuple(self.names)
        return self

    def fitted_names(self) -> tuple[str, ...]:
        """The predictors this step computes: those it was fitted with (``names`` if unfitted)."""
        if hasattr(self, "names_"):
            return self.names_
        if hasattr(self, "n_features_in_") and self.first_names is not None:
            return self.first_names  # pickled before steps recorded their predictors
        return self.names

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.fitted_names(), dtype=object)

    def transform(self, X):
        require_fitted(self, "n_features_in_")
        names = self.fitted_names()
        values = dict(zip(self.names, self._compute(np.asarray(X, dtype=float)), strict=True))
        return as_columns([values[name] for name in names])

    def _compute(self, raw: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError
