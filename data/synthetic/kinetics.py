"""The hidden patient classes and CAR-T expansion kinetics.

Four hidden classes per patient, each discrete so that the true risk is exact:

* ``u`` expansion magnitude and ``r`` inflammation, discretised standard normals;
* ``k`` expansion timing: early, on time or late relative to the product's typical peak day;
* ``c`` composition: a typical or a CD4-dominant expansion.

CD4+ CAR-T cells in blood follow a gamma-variate curve peaking on the patient's peak day
(product day + timing shift) at a height set by product, dose, tumour burden and ``u``; CD8+
cells are CD4+ times a patient ratio whose mean depends on ``c``. Functions take arrays that
broadcast, so the simulation (one class per patient), the forward filter (every class per
patient) and the backward table (every product, class and drive) share them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from data.synthetic.parameters import PRODUCT_FAMILY, PRODUCT_NAMES, GeneratorParameters


def per_product(values: dict[str, float]) -> np.ndarray:
    """A product-family parameter as an array indexed by product code (:data:`PRODUCT_NAMES`):
    each product takes its family's value unless the dict names the product itself (where
    products of one family differ in the sources)."""
    return np.array(
        [values.get(name, values[PRODUCT_FAMILY[name]]) for name in PRODUCT_NAMES], dtype=float
    )


@dataclass(frozen=True)
class LatentGrid:
    """Values and prior probabilities of the hidden classes; joint classes in (u, r, k, c)
    order, c varying fastest."""

    u_values: np.ndarray
    u_prior: np.ndarray
    r_values: np.ndarray
    r_prior: np.ndarray
    shifts: np.ndarray  # timing shift (days) of each k
    k_prior: np.ndarray
    c_prior: np.ndarray  # (typical, CD4-dominant)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return len(self.u_values), len(self.r_values), len(self.shifts), len(self.c_prior)

    @property
    def n_classes(self) -> int:
        return int(np.prod(self.shape))

    def _index(self, axis: int) -> np.ndarray:
        return np.indices(self.shape)[axis].ravel()

    def class_u(self) -> np.ndarray:
        return self.u_values[self._index(0)]

    def class_r(self) -> np.ndarray:
        return self.r_values[self._index(1)]

    def class_k(self) -> np.ndarray:
        """Timing class index of each joint class."""
        return self._index(2)

    def class_c(self) -> np.ndarray:
        """1 where the joint class is CD4-dominant."""
        return self._index(3)

    def class_log_prior(self) -> np.ndarray:
        prior = np.einsum("u,r,k,c->urkc", self.u_prior, self.r_prior, self.k_prior, self.c_prior)
        return np.log(prior.ravel())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Joint class index of ``n`` patients drawn from the prior."""
        return rng.choice(self.n_classes, size=n, p=np.exp(self.class_log_prior()))


def latent_grid(params: GeneratorParameters) -> LatentGrid:
    """Equally spaced points over +/- ``class_span_sd`` with normal-bin probabilities for u and
    r; the timing and composition priors from the parameters."""

    def discretise(k: int) -> tuple[np.ndarray, np.ndarray]:
        values = np.linspace(-params.latent.class_span_sd, params.latent.class_span_sd, k)
        edges = np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2, [np.inf]])
        return values, np.diff(norm.cdf(edges))

    lat = params.latent
    u, pu = discretise(lat.expansion_classes)
    r, pr = discretise(lat.inflammation_classes)
    k_prior = np.asarray(lat.timing_prior, dtype=float)
    return LatentGrid(
        u,
        pu,
        r,
        pr,
        np.asarray(lat.timing_shift_days, dtype=float),
        k_prior / k_prior.sum(),
        np.array([1 - lat.cd4_dominant_prior, lat.cd4_dominant_prior]),
    )


def tumour_burden(
    blasts_pct: np.ndarray, involvement: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """Marrow tumour burden on the blast scale (0-1): blasts/100 where blasts were measured
    (leukaemias), else the burden of an involved marrow (lymphoma, CLL, myeloma); 0 if neither
    is known to be present."""
    blasts = np.asarray(blasts_pct, dtype=float)
    involved = np.nan_to_num(np.asarray(involvement, dtype=float), nan=0.0)
    return np.where(np.isnan(blasts), params.baseline.involvement_burden * involved, blasts / 100.0)


def expansion_log_peak(
    fam: np.ndarray,
    dose: np.ndarray,
    burden: np.ndarray,
    u: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """Natural log of the latent CD4+ CAR-T peak (cells/uL).

    ``log peak = log median(family) + dose_exponent(family) * log(dose / 2e6)
    + burden_effect * burden + sd * u``: dose raises expansion except after tisa-cel (ELIANA:
    no dose-expansion relation); tumour burden raises it (Hay 2017; Gust 2017).
    """
    p = params.expansion
    return (
        np.log(per_product(p.cd4_peak_median_cells_per_ul))[fam]
        + per_product(p.dose_exponent)[fam] * np.log(dose / 2e6)
        + p.burden_effect * burden
        + p.log_sd_between_patients * u
    )


def expansion_deviation(
    fam: np.ndarray, log_peak: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """How far a patient's expansion sits above its family's typical peak (log scale)."""
    return log_peak - np.log(per_product(params.expansion.cd4_peak_median_cells_per_ul))[fam]


def peak_day(fam: np.ndarray, shift: np.ndarray, params: GeneratorParameters) -> np.ndarray:
    """The patient's peak day: the product's typical day plus the timing class's shift."""
    return per_product(params.expansion.peak_day)[fam] + shift


def expansion_shape(
    fam: np.ndarray, shift: np.ndarray, days: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """Gamma-variate curve g(t) = (t/tp)^a exp(a(1 - t/tp)): 1 on the peak day tp, 0 at day 0.

    ``fam`` and ``shift`` broadcast together; the result has their shape plus ``days.shape``.
    """
    tp = peak_day(fam, shift, params)[..., None]
    a = np.broadcast_to(per_product(params.expansion.shape)[fam], np.shape(tp)[:-1])[..., None]
    x = np.asarray(days, dtype=float) / tp
    with np.errstate(divide="ignore"):
        log_g = a * (np.log(x) + 1.0 - x)
    return np.where(x > 0, np.exp(log_g), 0.0)


def ratio_mean(fam: np.ndarray, cd4_dominant: np.ndarray, params: GeneratorParameters):
    """Mean CD8+/CD4+ log ratio: the family's, or the CD4-dominant one."""
    e = params.expansion
    return np.where(
        np.asarray(cd4_dominant) == 1,
        e.cd4_dominant_log_ratio_mean,
        per_product(e.cd8_to_cd4_log_ratio_mean)[fam],
    )
