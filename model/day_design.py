"""The additive part's design matrix, kept in its factored form: never built row by column.

The additive part (:mod:`model.linear_offset`) has coefficients that vary with the landmark
day: its design is ``X = [1, z (x) B, after]``, where each row's middle block is the Kronecker
product of its ``n_terms`` standardised values ``z`` with its day basis ``B`` (K Bernstein
polynomials of the landmark day), so column ``1 + j*K + k`` is ``z_j * B_k``. Built out, ``X``
has ``1 + n_terms*K + n_after`` columns: at 30,000 training patients (about 250,000 landmark
rows with the augmentation copies) and K = 3 that is 250,000 x ~480 doubles, about 1 GB, and
building it cost more than the Newton steps it served; at 100,000 patients it would not fit the
8 GB a training run may use.

Every product the Newton solver needs (:func:`evaluation.logistic.fit_logistic`) can be had
from the factors, ``parts = [1, z, after]`` (rows x (1 + n_terms + n_after)) and the basis
(rows x K), with fewer operations than from ``X`` itself:

* ``X @ theta``: ``theta``'s middle block is an (n_terms x K) matrix ``b``; the middle part of
  the log-odds is the row-wise sum of ``(z @ b) * B``;
* ``v @ X``: the middle block is ``z.T @ (v * B)`` (n_terms x K);
* ``X.T @ diag(c) @ X`` (the Hessian): the rows of one landmark day share their basis, so
  their block is the Kronecker product of their small weighted Gram matrix of ``parts`` with
  the basis's outer product, K**2 times cheaper to sum than the product of ``X``. With more
  distinct day rows than :data:`MAX_DAY_GROUPS` (a training set whose landmark days are not a
  small grid) it is summed over chunks of rows of ``X`` built a chunk at a time.

The three agree with the built-out matrix up to rounding (the order of the sums differs), which
``tests/test_training_linear_offset.py`` checks against ``X`` itself.
"""

from __future__ import annotations

import numpy as np

MAX_DAY_GROUPS = 64
"""More distinct day-basis rows than this: the Hessian is summed over row chunks of ``X``."""

CHUNK_ROWS = 8192
"""Rows of ``X`` built at a time when the Hessian is summed over chunks (a few MB)."""


class DayVaryingDesign:
    """``X = [1, z (x) B, after]`` from its factors (see the module docstring).

    Parameters
    ----------
    parts
        rows x (1 + n_terms + n_after): a column of ones, the ``n_terms`` values ``z`` whose
        coefficients vary with the day, then the ``after`` columns (one coefficient each).
    n_terms
        How many columns of ``parts`` after the first are day-varying terms.
    basis
        rows x K: each row's day basis.
    """

    def __init__(self, parts: np.ndarray, n_terms: int, basis: np.ndarray):
        self.parts = np.asarray(parts, dtype=float)
        self.basis = np.asarray(basis, dtype=float)
        self.n_terms = n_terms
        self.n_basis = self.basis.shape[1]
        n_after = self.parts.shape[1] - 1 - n_terms
        self.shape = (len(self.parts), 1 + n_terms * self.n_basis + n_after)
        self._terms = slice(1, 1 + n_terms)  # z within parts
        self._middle = slice(1, 1 + n_terms * self.n_basis)  # z (x) B within X
        days, row_day = np.unique(self.basis, axis=0, return_inverse=True)
        self._groups = None
        if len(days) <= MAX_DAY_GROUPS:
            row_day = row_day.ravel()
            index = [np.flatnonzero(row_day == d) for d in range(len(days))]
            self._groups = [
                (b, rows, self.parts[rows]) for b, rows in zip(days, index, strict=True)
            ]

    def _split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``theta`` (replicates x columns of X) as its intercepts, middle blocks (replicates x
        n_terms x K) and ``after`` coefficients."""
        middle = theta[:, self._middle].reshape(len(theta), self.n_terms, self.n_basis)
        return theta[:, 0], middle, theta[:, self._middle.stop :]

    def dot(self, theta: np.ndarray) -> np.ndarray:
        """``theta @ X.T``: replicates x rows of log-odds, for ``theta`` replicates x columns."""
        intercept, middle, after = self._split(np.atleast_2d(theta))
        z, rest = self.parts[:, self._terms], self.parts[:, self._terms.stop :]
        out = np.empty((len(intercept), len(self.parts)))
        for r in range(len(intercept)):
            out[r] = intercept[r] + np.vecdot(z @ middle[r], self.basis) + rest @ after[r]
        return out

    def tdot(self, v: np.ndarray) -> np.ndarray:
        """``v @ X``: replicates x columns, for ``v`` replicates x rows."""
        v = np.atleast_2d(v)
        z, rest = self.parts[:, self._terms], self.parts[:, self._terms.stop :]
        out = np.empty((len(v), self.shape[1]))
        for r in range(len(v)):
            out[r, 0] = v[r].sum()
            out[r, self._middle] = (z.T @ (v[r][:, None] * self.basis)).ravel()
            out[r, self._middle.stop :] = v[r] @ rest
        return out

    def columns(self, rows: slice | np.ndarray) -> np.ndarray:
        """Rows of ``X`` built out (for a chunk, or a test)."""
        parts, basis = self.parts[rows], self.basis[rows]
        middle = (parts[:, self._terms, None] * basis[:, None, :]).reshape(len(parts), -1)
        return np.column_stack([parts[:, 0], middle, parts[:, self._terms.stop :]])

    def gram(self, c: np.ndarray) -> np.ndarray:
        """``X.T @ diag(c) @ X``, for row weights ``c``."""
        if self._groups is None:
            out = np.zeros((self.shape[1], self.shape[1]))
            for start in range(0, len(self.parts), CHUNK_ROWS):
                chunk = slice(start, start + CHUNK_ROWS)
                x = self.columns(chunk)
                out += (x * c[chunk, None]).T @ x
            return out
        size, at = self.shape[1], self._terms
        rest = np.r_[0, self._terms.stop : self.parts.shape[1]]  # the intercept and after
        outside = np.r_[0, self._middle.stop : size]
        middle = self._middle
        out = np.zeros((size, size))
        for b, index, rows in self._groups:
            g = (rows * c[index, None]).T @ rows
            out[middle, middle] += np.kron(g[at, at], np.outer(b, b))
            out[middle, outside] += np.kron(g[at][:, rest], b[:, None])
            out[np.ix_(outside, outside)] += g[np.ix_(rest, rest)]
        out[outside, middle] = out[middle, outside].T
        return out
