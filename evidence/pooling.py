"""Fixed- and random-effects pooling of effect sizes (metafor's ``rma.uni`` without moderators)."""

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import _checks
from ._fit import Design, fit_model, tau2_q_profile, z_ratio
from .errors import EvidenceError


@dataclass(frozen=True)
class Tau2Interval:
    """Q-profile confidence interval for tau^2 and the matching I^2 (%) and H^2 bounds."""

    tau2: float
    tau2_low: float
    tau2_high: float
    i2_low: float
    i2_high: float
    h2_low: float
    h2_high: float
    alpha: float

    def to_frame(self):
        """One row per quantity with columns estimate-free ``low`` and ``high``."""
        return pd.DataFrame(
            {"low": [self.tau2_low, self.i2_low, self.h2_low],
             "high": [self.tau2_high, self.i2_high, self.h2_high]},
            index=["tau2", "i2", "h2"],
        )


@dataclass(frozen=True)
class PoolResult:
    """Result of :func:`pool`; fields are floats unless noted.

    ``i2`` and ``weights`` are percentages; ``weights`` is a numpy array in input order.
    ``statistic`` is z (``test="z"``) or t with ``k - 1`` df (``test="knha"``).
    """

    k: int
    estimate: float
    se: float
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pvalue: float
    method: str
    test: str
    alpha: float
    weights: np.ndarray
    _model: object = field(default=None, repr=False, compare=False)

    def tau2_conf_int(self, alpha=None):
        """Q-profile confidence interval for tau^2, I^2 and H^2.

        Parameters
        ----------
        alpha : float, optional
            1 - confidence level; defaults to the ``alpha`` of the fit.

        Returns
        -------
        Tau2Interval

        Notes
        -----
        As metafor's ``confint(res)`` for ``rma.uni`` (Viechtbauer 2007): each bound solves
        Q(tau2) = chi-square quantile with k - 1 df on [0, tau2_max] (metafor: R's
        ``uniroot``; here safeguarded Newton steps to the same 1e-14 tolerance, the same
        root), tau2_max = max(100, 10 tau^2); a bound below 0 is reported as 0, one above tau2_max
        as tau2_max. I^2 and H^2 bounds use the same typical within-study variance as ``i2``.

        References
        ----------
        Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in
        meta-analysis. Statistics in Medicine, 26, 37-52.
        """
        alpha = self.alpha if alpha is None else _checks.check_alpha(alpha)
        if self.k < 2 or self.method == "FE":
            raise EvidenceError(
                f"tau2_conf_int needs a random-effects fit with k >= 2; got k={self.k}, "
                f"method='{self.method}'."
            )
        model = self._model
        low, high = tau2_q_profile(_with_alpha(model, alpha))
        vt = model.vt
        return Tau2Interval(self.tau2, low, high, 100 * low / (vt + low), 100 * high / (vt + high),
                            low / vt + 1, high / vt + 1, alpha)

    def percent_change(self):
        """The estimate and its confidence interval as percent change, 100 (exp(x) - 1).

        Returns
        -------
        tuple of float
            ``(estimate, ci_low, ci_high)`` in percent; meaningful for log response ratios.
        """
        back = 100 * np.expm1([self.estimate, self.ci_low, self.ci_high])
        return tuple(float(x) for x in back)

    def to_frame(self):
        """One-row DataFrame of the scalar fields (weights left out)."""
        row = {name: getattr(self, name) for name in _SCALARS}
        return pd.DataFrame([row])

    def summary(self):
        """A short plain-text report, like metafor's ``print(res)``."""
        level = round(100 * (1 - self.alpha), 6)
        stat = "t" if self.test == "knha" else "z"
        return "\n".join([
            f"{'Fixed' if self.method == 'FE' else 'Random'}-effects model "
            f"(k = {self.k}; tau^2 estimator: {self.method}; test: {self.test})",
            f"tau^2 = {self.tau2:.4f}, I^2 = {self.i2:.2f}%, H^2 = {self.h2:.4f}",
            f"Q({self.q_df}) = {self.q:.4f}, p = {self.q_pvalue:.4g}",
            f"estimate = {self.estimate:.4f} (se {self.se:.4f}), {stat} = {self.statistic:.4f}, "
            f"p = {self.pvalue:.4g}",
            f"{level:g}% CI [{self.ci_low:.4f}, {self.ci_high:.4f}], "
            f"PI [{self.pi_low:.4f}, {self.pi_high:.4f}]",
        ])


_SCALARS = ("k", "estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "pi_low",
            "pi_high", "tau2", "i2", "h2", "q", "q_df", "q_pvalue", "method", "test", "alpha")


def _with_alpha(model, alpha):
    """The same fitted model with another alpha (only the Q-profile uses it)."""
    return replace(model, alpha=alpha)


def pool(yi, vi, method="REML", test="z", alpha=0.05):
    """Pool effect sizes with a fixed- or random-effects model.

    Parameters
    ----------
    yi : array-like of shape (k,)
        Observed effect sizes (e.g. log response ratios).
    vi : array-like of shape (k,)
        Their sampling variances, all > 0.
    method : {"REML", "ML", "DL", "PM", "EB", "HS", "SJ", "HE", "FE"}
        Estimator of the between-study variance tau^2; "FE" fits a fixed-effect model.
    test : {"z", "knha"}
        Normal-theory z test, or the Knapp-Hartung t test with k - 1 df.
    alpha : float
        1 - confidence level for confidence and prediction intervals.

    Returns
    -------
    PoolResult

    Raises
    ------
    EvidenceError
        On malformed input (names the argument and position).
    ConvergenceError
        If an iterative estimator does not converge.

    Notes
    -----
    Numbers match metafor 3.8-1 ``rma.uni(yi, vi, method=method, test=test)``:

    * tau^2: DL, HE, HS and SJ in closed form (SJ started from the variance of yi with
      divisor k); ML and REML by Fisher scoring from max(0, HE) with step halving at 0,
      stopping when tau^2 changes by less than 1e-12, plus metafor's check that tau^2 = 0
      does not have a higher likelihood; PM as the root of Q(tau2) = k - 1 in
      [0, max(100, 10 mad(yi)^2)] (metafor: R's ``uniroot``; here Newton steps kept inside
      a bracket, to the same 1e-14 tolerance on tau^2, so the same root). EB (Morris) is computed by the same root finding: the
      fixed point of metafor's EB iteration is the PM equation, so both give the same tau^2.
      tau^2 is truncated at 0.
    * Knapp-Hartung: the variance of the estimate is multiplied by
      s^2 = sum(w (y - mu)^2) / (k - 1) (no truncation at 1), t quantiles with k - 1 df.
    * Prediction interval as ``predict.rma``: estimate +/- crit sqrt(se^2 + tau^2), crit the
      normal or t(k - 1) quantile of the test.
    * I^2 = 100 tau^2 / (tau^2 + s^2) and H^2 = tau^2 / s^2 + 1 with the typical within-study
      variance s^2 = (k - 1) sum(w) / ((sum w)^2 - sum(w^2)), w = 1 / vi. For "FE",
      I^2 = max(0, 100 (Q - (k - 1)) / Q) and H^2 = Q / (k - 1).
    * k = 1: tau^2 = 0, Q = 0 with 0 df, p = 1, I^2 = 0, H^2 = 1 (metafor's values);
      ``test="knha"`` needs k >= 2.
    * ``weights`` are 100 w / sum(w) with w = 1 / (vi + tau^2), as ``weights.rma.uni``.

    References
    ----------
    Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    Journal of Statistical Software, 36(3), 1-48.
    Knapp, G., & Hartung, J. (2003). Improved tests for a random effects meta-regression
    with a single covariate. Statistics in Medicine, 22, 2693-2710.
    Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
    meta-analysis. Statistics in Medicine, 21, 1539-1558.
    """
    y, v = _checks.as_effects(yi, vi)
    method = _checks.check_choice(method, _checks.METHODS, "method")
    test = _checks.check_choice(test, _checks.TESTS, "test")
    alpha = _checks.check_alpha(alpha)
    _checks.check_k(len(y), 1, method, test)
    model = fit_model(y, v, Design.intercept(len(y)), method, test, alpha)
    return _result(model)


def _result(model):
    """Build a PoolResult from an intercept-only model."""
    est, se = float(model.beta[0]), float(np.sqrt(model.vb[0, 0]))
    stat = z_ratio(est, se)
    # predict() for the intercept-only model, in scalars
    half_ci, half_pi = model.crit * se, model.crit * float(np.sqrt(se**2 + model.tau2))
    ci_lo, ci_hi, pi_lo, pi_hi = est - half_ci, est + half_ci, est - half_pi, est + half_pi
    return PoolResult(
        k=model.k, estimate=est, se=se, statistic=float(stat),
        pvalue=float(model.pvalues(stat)), ci_low=ci_lo, ci_high=ci_hi, pi_low=pi_lo,
        pi_high=pi_hi, tau2=model.tau2, i2=model.i2, h2=model.h2, q=model.qe,
        q_df=model.k - 1, q_pvalue=model.qe_pvalue, method=model.method, test=model.test,
        alpha=model.alpha, weights=100 * model.w / model.w.sum(), _model=model,
    )
