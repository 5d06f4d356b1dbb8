"""The feature steps that learn from the training rows: reference levels, weights, categories.

Most steps of the feature pipeline (:mod:`features.transformers`) compute each predictor from
the patient's own row. The steps here also hold state fitted on the training rows, without
labels, that travels with the logged model so that the endpoint computes exactly what training
did: the typical CD4+ level of each product on each day (:class:`ExpansionLevel`), the weights
of the inflammation index (:class:`InflammationIndex`), the categories seen in training
(:class:`CategoryIndicators`, with the vocabularies :func:`category_codes` codes against, also
read by :mod:`features.checks`) and each predictor's central training range
(:class:`TrainingRanges`). Kept apart so that what a fitted model carries besides its trees is
in one place.

Models logged before this module existed pickled these classes as ``features.transformers.*``:
that module imports them, so those names still resolve when such a model is loaded.
"""

from __future__ import annotations

import warnings

import numpy as np

from features import definitions as d
from features.kinetics import product_day_medians, product_group, product_index, reference_for
from features.layout import CATEGORICAL_FIELDS, col, series
from features.steps import FeatureStep, require_fitted
from icans.contract import DISEASE_GROUPS, DISEASES
from icans.errors import UnknownCategoryWarning


class ExpansionLevel(FeatureStep):
    """CD4+ CAR-T level so far: the latest sample, and the level relative to the product.

    * ``cd4_latest_cells_per_ul``: the latest CD4+ sample on days 1..L (NaN before the first).
    * ``cd4_expansion_vs_product``: the mean, over the CD4+ samples on days 1..L, of
      log(sample) minus the typical log CD4+ count of the same product on the same day.

    Rationale: the AUC and the peak to date grow with the landmark day and with the product's
    own kinetics (CD28 products expand faster and higher than 4-1BB ones; the peak falls in the
    second week), so "high expansion" means a different AUC on every day and for every product.
    What is associated with neurotoxicity is expansion above what the product usually does
    (ZUMA-1; Santomasso 2018). Comparing each sample with the product's typical level on that
    day, and averaging over the samples, gives one number on the same scale on every landmark
    day, which trees can split once instead of learning a threshold per day and per product;
    averaging on the log scale also damps the ~25% measurement noise of a single count.

    Learned state (no labels): for each (CAR target, costimulatory domain) seen in training and
    each day 1..28, the median log CD4+ count of the training rows sampled that day (each
    landmark row counts once: it is a reference point, not a population estimate). Cells with
    fewer than ``min_samples`` samples, and products never seen in training, use the median of
    all products on that day; a day with fewer samples than that overall is not compared (a
    sample on such a day is left out of the mean). Both features rise whenever a sample rises
    (monotone in CD4+ expansion).
    """

    names = ("cd4_latest_cells_per_ul", "cd4_expansion_vs_product")

    def __init__(self, min_samples: int = 20):
        self.min_samples = min_samples

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        block = series(raw, "cd4_cells_per_ul")
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(np.maximum(block, d.LOG_COUNT_FLOOR_CELLS_PER_UL))
        logs = np.where(np.isnan(block), np.nan, logs)
        self.groups_, self.reference_, self.pooled_ = product_day_medians(
            logs, product_group(raw), self.min_samples
        )
        return self

    def transform(self, X):
        require_fitted(self, "reference_")
        raw = np.asarray(X, dtype=float)
        block = series(raw, "cd4_cells_per_ul")
        index = product_index(product_group(raw), self.groups_)
        reference = reference_for(index, self.reference_, self.pooled_)
        return np.column_stack(
            [d.latest_sample_after_day0(block), d.mean_log_deviation(block, reference)]
        )

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)


class InflammationIndex(FeatureStep):
    """``lab_inflammation_index``: one weighted sum of the standardised log inflammation labs.

    LDH, CRP and ferritin rise and platelets fall with the systemic inflammation and endothelial
    activation that precede ICANS (Gauthier: LDH; Greenbaum 2021: CRP and ferritin; Pennisi
    2021: m-EASIX = LDH x CRP / platelets). Each is a noisy readout of the same state, so a
    weighted sum of all four reads it better than any one; m-EASIX fixes the weights (1, 1, 0,
    -1 on the log scale). Here the weights are the first principal component of the training
    patients' standardised log values (no labels: the direction in which the four labs vary
    together), oriented so that the index rises with LDH, CRP and ferritin and falls with
    platelets; a weight whose sign would contradict those published directions is set to 0, so
    the index is monotone in each lab in its published direction.

    A missing lab contributes its training mean (0 after standardising); with all four
    missing the index is NaN (reported as a missing input).
    """

    labs = ("ldh_u_per_l", "crp_mg_per_l", "ferritin_ng_per_ml", "platelets_10e9_per_l")
    directions = (1.0, 1.0, 1.0, -1.0)
    names = ("lab_inflammation_index",)

    def _logs(self, raw: np.ndarray) -> np.ndarray:
        values = np.column_stack([col(raw, lab) for lab in self.labs])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        logs = self._logs(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing lab -> NaN
            self.mean_ = np.nanmean(logs, axis=0)
            sd = np.nanstd(logs, axis=0)
        self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, np.inf)  # constant lab: weight 0
        self.mean_ = np.nan_to_num(self.mean_)
        z = np.nan_to_num((logs - self.mean_) / self.scale_)
        weights = np.zeros(len(self.labs))
        if len(z) > 1:
            _, vectors = np.linalg.eigh(np.cov(z, rowvar=False))
            weights = vectors[:, -1]
        direction = np.asarray(self.directions)
        if weights @ direction < 0:
            weights = -weights
        self.weights_ = np.where(weights * direction > 0, weights, 0.0)
        return self

    def transform(self, X):
        require_fitted(self, "weights_")
        logs = self._logs(np.asarray(X, dtype=float))
        z = (logs - self.mean_) / self.scale_
        z = np.where(np.isnan(z), 0.0, z)  # a missing lab: its training mean
        # column by column, not a matrix product: BLAS may sum a batch in another order than a
        # single row, and the endpoint's one-row result must equal the batch's bit for bit
        index = np.zeros(len(z))
        for j, weight in enumerate(self.weights_):
            index = index + weight * z[:, j]
        return np.where(np.isnan(logs).all(axis=1), np.nan, index)[:, None]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)


DISEASE_GROUP_NAMES = tuple(sorted(set(DISEASE_GROUPS.values())))
_GROUP_CODE_OF_DISEASE = np.array(
    [DISEASE_GROUP_NAMES.index(DISEASE_GROUPS[x]) for x in DISEASES], dtype=float
)
CATEGORY_VOCABULARY = {
    "car_target": CATEGORICAL_FIELDS["car_target"],
    "costimulatory_domain": CATEGORICAL_FIELDS["costimulatory_domain"],
    "car_product": CATEGORICAL_FIELDS["car_product"],
    "disease_group": DISEASE_GROUP_NAMES,
}


def category_codes(raw: np.ndarray) -> dict[str, np.ndarray]:
    """Codes (positions in each vocabulary, NaN if missing) of the encoded categorical fields."""
    disease = col(raw, "disease")
    known = ~np.isnan(disease)
    group = np.full(len(raw), np.nan)
    group[known] = _GROUP_CODE_OF_DISEASE[disease[known].astype(int)]
    return {
        "car_target": col(raw, "car_target"),
        "costimulatory_domain": col(raw, "costimulatory_domain"),
        "car_product": col(raw, "car_product"),
        "disease_group": group,
    }


class CategoryIndicators(FeatureStep):
    """Indicators for CAR target, costimulatory domain, CAR-T product and disease group seen in
    training.

    Rule for a category never seen in training (e.g. a CAR target absent from the training
    cohort): all its indicators are 0, so the model relies on the other predictors, and an
    :class:`~icans.errors.UnknownCategoryWarning` names the field and the value. It is never
    mapped to another category. A missing value is also all-zero and reported as missing.

    A step fitted before a field was encoded (the CAR-T product, added in layout generation 5)
    encodes only the fields it was fitted on (``codes_``), so a model already logged gives the
    same indicators whatever the newer fields hold; a field the training cohort never recorded
    (an optional column it lacks) has no indicator and no warning either.
    """

    def fit(self, X, y=None):
        raw = np.asarray(X, dtype=float)
        self.n_features_in_ = raw.shape[1]
        self.codes_ = {
            field: np.unique(codes[~np.isnan(codes)])
            for field, codes in category_codes(raw).items()
        }
        self.categories_ = {
            field: tuple(CATEGORY_VOCABULARY[field][int(c)] for c in codes)
            for field, codes in self.codes_.items()
        }
        return self

    def unseen(self, raw: np.ndarray) -> list[tuple[str, str]]:
        """(field, value) pairs in ``raw`` that training never saw."""
        require_fitted(self, "codes_")
        out = []
        for field, codes in self._codes(raw).items():
            if not len(self.codes_[field]):  # never recorded in training: not read, not unseen
                continue
            present = set(codes[~np.isnan(codes)].tolist())  # a few rows: sets, not np.unique
            for c in sorted(present - set(self.codes_[field].tolist())):
                out.append((field, CATEGORY_VOCABULARY[field][int(c)]))
        return out

    def transform(self, X):
        require_fitted(self, "codes_")
        raw = np.asarray(X, dtype=float)
        for field, value in self.unseen(raw):
            warnings.warn(
                f"{field}={value!r} was not seen in training: encoded as none of the "
                f"seen categories {list(self.categories_[field])}",
                UnknownCategoryWarning,
                stacklevel=2,
            )
        blocks = [
            (codes[:, None] == self.codes_[field][None, :]).astype(float)
            for field, codes in self._codes(raw).items()
        ]
        return np.hstack(blocks)

    def _codes(self, raw) -> dict[str, np.ndarray]:
        """:func:`category_codes` of the fields this step was fitted on, in its order."""
        codes = category_codes(np.asarray(raw, dtype=float))
        return {field: codes[field] for field in self.codes_}

    def get_feature_names_out(self, input_features=None):
        require_fitted(self, "categories_")
        return np.asarray(
            [f"{field}={k}" for field, known in self.categories_.items() for k in known],
            dtype=object,
        )


class TrainingRanges(FeatureStep):
    """Identity step that remembers each feature's central 99% training range.

    The endpoint and reports warn when a value falls outside it (the model has seen few or no
    such patients there). Learned state travels with the logged model.
    """

    def __init__(self, lower_quantile: float = 0.005, upper_quantile: float = 0.995):
        self.lower_quantile = lower_quantile
        self.upper_quantile = upper_quantile

    max_rows = 200_000  # quantiles from an evenly spaced subsample: stable and fast

    def fit(self, X, y=None):
        x = np.asarray(X, dtype=float)
        self.n_features_in_ = x.shape[1]
        if len(x) > self.max_rows:
            x = x[:: -(-len(x) // self.max_rows)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN range
            self.lower_ = np.nanquantile(x, self.lower_quantile, axis=0)
            self.upper_ = np.nanquantile(x, self.upper_quantile, axis=0)
        return self

    def transform(self, X):
        require_fitted(self, "lower_")
        return np.asarray(X, dtype=float)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features, dtype=object)
