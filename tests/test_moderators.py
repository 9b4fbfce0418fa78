"""meta_regression_nested() against metafor's rma.mv with mods, its O(k p^2) algebra against
dense k x k matrices, and moderator_analysis(), the report behind `synth --moderator`."""

import re
import subprocess
import sys

import metafor_moderators_golden as gm
import metafor_multilevel_golden as mv
import numpy as np
import pandas as pd
import pytest

from evidence import EvidenceError, meta_regression, pool_nested
from evidence.moderators import (
    ModeratorAnalysis,
    NestedRegressionResult,
    _evaluate_reg,
    _reg_data,
    meta_regression_nested,
    moderator_analysis,
)
from evidence.multilevel import _dense_codes

COEF_FIELDS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high")
PRED_FIELDS = {"pred": "pred", "se": "pred_se", "ci_low": "pred_ci_low",
               "ci_high": "pred_ci_high", "pi_low": "pred_pi_low", "pi_high": "pred_pi_high"}


def fit(case):
    return meta_regression_nested(*gm.inputs(case), method=case["method"], test=case["test"])


def r_term(term):
    """R's name of a term: factor(deltype) level general is 'deltypegeneral'."""
    return re.sub(r"^(\w+)\[(.+)\]$", r"\1\2", term)


# ---------------------------------------------------------------- golden: rma.mv with mods


@pytest.mark.parametrize("case", gm.GOLD["cases"], ids=gm.case_id)
def test_coefficients_match_rma_mv(case):
    res = fit(case)
    assert [r_term(t) for t in res.coefficients.index] == case["terms"]
    for name in COEF_FIELDS:
        gm.assert_close(res.coefficients[name], case[name], f"{name} ({case['call']})",
                        rtol=gm.rtol(case))
    assert (res.k, res.k + res.k_dropped, res.p) == (case["k"], case["k_all"], len(case["terms"]))


@pytest.mark.parametrize("case", gm.GOLD["cases"], ids=gm.case_id)
def test_tests_and_variance_components_match_rma_mv(case):
    res = fit(case)
    what, rtol = f"({case['call']})", gm.rtol(case)
    gm.assert_close(res.qm, case["qm"], f"QM {what}", rtol=rtol)
    gm.assert_close(res.qm_pvalue, case["qm_pvalue"], f"QM p-value {what}", rtol=rtol)
    assert (res.qm_df, res.qe_df) == (case["qm_df"], case["qe_df"])
    gm.assert_close(res.qm_ddf, case["qm_ddf"], f"QM ddf {what}")  # NaN for z, k - p for t
    gm.assert_close(res.qe, case["qe"], f"QE {what}", rtol=gm.QE_RTOL)
    gm.assert_close(res.qe_pvalue, case["qe_pvalue"], f"QE p-value {what}", rtol=gm.QE_RTOL)
    counts = (res.n_sources, res.n_sites, res.k)
    # where two levels are confounded metafor splits their variance; compare the sums
    expected = mv.merged_sigma2(case["sigma2"], res.estimable, counts)
    gm.assert_close(res.sigma2, expected, f"sigma2 {what}", rtol=rtol)
    assert list(counts[: len(case["n_levels"])]) == case["n_levels"]
    assert not any(res.estimable[j] for j, fixed in enumerate(case["sigma2_fixed"]) if fixed)


@pytest.mark.parametrize("case", gm.GOLD["cases"], ids=gm.case_id)
def test_predictions_and_weights_match_metafor(case):
    res = fit(case)
    pred = res.predict(gm.new_rows(case))
    for ours, theirs in PRED_FIELDS.items():
        gm.assert_close(pred[ours], case[theirs], f"predict {ours} ({case['call']})",
                        rtol=gm.rtol(case))
    gm.assert_close(res.weights(), case["weights"], f"weights ({case['call']})",
                    rtol=gm.rtol(case))


@pytest.mark.parametrize("case", gm.GOLD["cases"], ids=gm.case_id)
def test_pseudo_r2_is_the_reduction_of_the_summed_components(case):
    res = fit(case)
    counts = (res.n_sources, res.n_sites, res.k)
    null = mv.merged_sigma2(case["sigma2_null"], res.estimable, counts)
    gm.assert_close(res.sigma2_null, null, f"sigma2 of the null model ({case['null_call']})",
                    rtol=gm.rtol(case, null=True))
    np.testing.assert_allclose(res.r2, case["pseudo_r2"], rtol=0, atol=gm.R2_ATOL)


@pytest.mark.parametrize("case", gm.GOLD["cases"], ids=gm.case_id)
def test_likelihood_is_at_least_metafors(case):
    # the optimum we report must be as good as metafor's, not merely close to it
    assert fit(case).loglik >= case["loglik"] - gm.LOGLIK_SLACK


def test_golden_covers_methods_tests_moderator_kinds_and_designs():
    cases = gm.GOLD["cases"]
    assert {(c["method"], c["test"]) for c in cases} == {("REML", "z"), ("ML", "z"),
                                                       ("REML", "t"), ("ML", "t")}
    kinds = {tuple(sorted(c["mods"])) for c in cases}
    assert {("year",), ("deltype",), ("deltype", "year"), ("x",), ("biome",),
            ("biome", "x")} <= kinds
    assert any(c["k"] < c["k_all"] for c in cases)  # missing moderator values dropped
    assert any(c["fallback"] for c in cases) and not all(c["fallback"] for c in cases)
    flags = {fit(c).estimable for c in cases}
    # all identified; effects confounded with sites; sites with sources; a single source
    assert {(True, True, True), (True, True, False), (True, False, True),
            (False, True, True)} <= flags
    assert any(c["pseudo_r2"] == 0 for c in cases) and any(c["pseudo_r2"] > 0 for c in cases)


# ---------------------------------------------------------------- the O(k p^2) algebra


def _random_design(seed, p_extra=2):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 9))
    source = np.repeat(np.arange(n), rng.integers(1, 7, n))
    site = rng.integers(0, 3, len(source))
    k = len(source)
    X = np.column_stack([np.ones(k), rng.normal(size=(k, p_extra))])
    vi = rng.uniform(0.005, 0.1, k)
    yi = X @ rng.normal(0, 0.2, p_extra + 1) + rng.normal(0, 0.3, k)
    return yi, vi, X, source, n, site


def _dense(yi, vi, X, source, site, sigma2, reml):
    """Log-likelihood, gradient and expected information with explicit k x k matrices, and
    the observed Hessian as the Jacobian of the exact dense gradient."""
    site_codes = _dense_codes(source * 10 + site)[0]
    G = [np.equal.outer(source, source) * 1.0, np.equal.outer(site_codes, site_codes) * 1.0,
         np.eye(len(yi))]

    def parts(s):
        V = np.diag(vi) + sum(sj * Gj for sj, Gj in zip(s, G, strict=True))
        Vi = np.linalg.inv(V)
        xvx = X.T @ Vi @ X
        P = Vi - Vi @ X @ np.linalg.solve(xvx, X.T @ Vi)
        r = yi - X @ np.linalg.solve(xvx, X.T @ Vi @ yi)
        k, p = X.shape
        if reml:
            ll = -0.5 * ((k - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1]
                         + np.linalg.slogdet(xvx)[1] + r @ Vi @ r - np.linalg.slogdet(X.T @ X)[1])
        else:
            ll = -0.5 * (k * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + r @ Vi @ r)
        Q = P if reml else Vi
        Py = P @ yi
        grad = np.array([0.5 * (Py @ Gj @ Py - np.trace(Q @ Gj)) for Gj in G])
        fisher = np.array([[0.5 * np.trace(Q @ Ga @ Q @ Gb) for Gb in G] for Ga in G])
        hess = fisher - np.array([[Py @ Ga @ P @ Gb @ Py for Gb in G] for Ga in G])
        return ll, grad, hess, fisher

    return parts(sigma2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_woodbury_likelihood_gradient_and_hessian_equal_the_dense_ones(seed, method):
    yi, vi, X, source, n, site = _random_design(seed)
    data = _reg_data(np.ascontiguousarray(X.T), yi, vi, source, n, site, (True, True, True),
                     method == "REML")
    sigma2 = np.random.default_rng(100 + seed).uniform(0.0, 0.06, 3)
    ev = _evaluate_reg(data, sigma2)
    ll, grad, hess, fisher = _dense(yi, vi, X, source, site, sigma2, method == "REML")
    # the same sums in another order; conditioning of V (~1e2) and of X'V^-1X costs digits
    np.testing.assert_allclose(ev.loglik, ll, rtol=1e-11)
    for ours, theirs, name in ((ev.grad, grad, "gradient"), (ev.hess, hess, "Hessian"),
                               (ev.fisher, fisher, "expected information")):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9 * np.abs(theirs).max(),
                                   err_msg=name)


@pytest.mark.parametrize("seed", range(5))
def test_fit_is_the_global_maximum_on_random_designs(seed):
    # small random designs, some with components at 0: no optimiser started anywhere on a
    # grid finds a higher (restricted) likelihood than meta_regression_nested's
    from scipy import optimize

    yi, vi, X, source, _, site = _random_design(seed, p_extra=1)
    for method in ("REML", "ML"):
        res = meta_regression_nested(yi, vi, {"x": X[:, 1]}, source, site, method=method)
        free = np.array(res.estimable)

        def negll(s, free=free, method=method):
            return -_dense(yi, vi, X, source, site, np.where(free, s, 0.0), method == "REML")[0]

        for start in (0.001, 0.3):
            other = optimize.minimize(negll, np.full(3, start), method="L-BFGS-B",
                                      bounds=[(0, None)] * 3)
            # L-BFGS-B stops at ~1e-9 relative; it may reach, never beat, the maximum
            assert -other.fun <= res.loglik + 1e-9 * abs(res.loglik)


def test_every_effect_its_own_source_is_the_independent_meta_regression():
    yi, vi, _, _, mods = gm.data("synthetic_nested")
    keep = mods["x"].notna().to_numpy()
    k = int(keep.sum())
    for method in ("REML", "ML"):
        nested = meta_regression_nested(yi[keep], vi[keep], mods[keep], np.arange(k),
                                        np.zeros(k), method=method)
        flat = meta_regression(yi[keep], vi[keep], mods[keep].reset_index(drop=True),
                               method=method)
        assert nested.estimable == (True, False, False)
        # Newton here, Fisher scoring in meta_regression: both to ~1e-12 in tau^2
        np.testing.assert_allclose(nested.coefficients.to_numpy(), flat.coefficients.to_numpy(),
                                   rtol=1e-8)
        np.testing.assert_allclose([nested.sigma2[0], nested.qm, nested.qe],
                                   [flat.tau2, flat.qm, flat.qe], rtol=1e-8)


def test_a_shifted_and_scaled_moderator_gives_the_same_model():
    # a year as moderator: the fit is done on standardised columns, so 1000 + x / 1000 is
    # the same model with the slope times 1000 and the same predictions
    yi, vi, mods, source, site = gm.inputs(gm.GOLD["cases"][0])
    base = meta_regression_nested(yi, vi, mods, source, site)
    moved = meta_regression_nested(yi, vi, {"year": 1000 + mods["year"] / 1000}, source, site)
    np.testing.assert_allclose(moved.coefficients.loc["year", ["estimate", "se"]],
                               base.coefficients.loc["year", ["estimate", "se"]] * 1000,
                               rtol=1e-9)
    np.testing.assert_allclose(moved.sigma2, base.sigma2, rtol=1e-9)
    new = moved.predict({"year": 1000 + np.array([1976.0, 2000.0]) / 1000})
    old = base.predict({"year": [1976.0, 2000.0]})
    np.testing.assert_allclose(new.to_numpy(), old.to_numpy(), rtol=1e-9)
    assert moved.loglik == pytest.approx(base.loglik, rel=1e-12)


def test_result_does_not_depend_on_row_order_or_label_type():
    yi, vi, source, site, mods = gm.data("synthetic_nested")
    base = meta_regression_nested(yi, vi, mods, source, site)
    perm = np.random.default_rng(5).permutation(len(yi))
    shuffled = meta_regression_nested(
        yi[perm], vi[perm], mods.iloc[perm], [f"paper {source[i]}" for i in perm],
        np.asarray(site)[perm].astype(float))
    # summation order changes the last bits; the optimum moves by far less than 1e-8
    np.testing.assert_allclose(shuffled.coefficients.to_numpy(), base.coefficients.to_numpy(),
                               rtol=1e-8)
    np.testing.assert_allclose(shuffled.sigma2, base.sigma2, rtol=1e-8, atol=1e-12)
    assert (shuffled.k_dropped, shuffled.sites_dropped, shuffled.sources_dropped) == (
        base.k_dropped, base.sites_dropped, base.sources_dropped)


def test_hundred_thousand_effects_with_two_moderators_are_fitted():
    rng = np.random.default_rng(8)
    k, n = 100_000, 5_000
    source = rng.integers(0, n, k)
    site = rng.integers(0, 4, k)
    warming = rng.uniform(0.5, 6.0, (n, 4))[source, site]
    biome = np.array(["boreal", "temperate", "tropical"])[rng.integers(0, 3, n)][source]
    vi = rng.uniform(0.01, 0.05, k)
    yi = (0.1 - 0.05 * warming + np.where(biome == "tropical", 0.2, 0.0)
          + rng.normal(0, 0.2, n)[source] + rng.normal(0, np.sqrt(0.02), (n, 4))[source, site]
          + rng.normal(0, np.sqrt(0.01 + vi)))
    res = meta_regression_nested(yi, vi, {"warming": warming, "biome": biome}, source, site)
    # large-sample consistency: truth beta = (0.1, -0.05, 0, 0.2), sigma2 = (0.04, 0.02,
    # 0.01); the SE of the intercept is ~0.007, of sigma2_source ~0.001
    np.testing.assert_allclose(res.coefficients["estimate"], [0.1, -0.05, 0.0, 0.2], atol=0.03)
    np.testing.assert_allclose(res.sigma2, [0.04, 0.02, 0.01], atol=0.006)


# ---------------------------------------------------------------- missing values, degenerate fits


def _small(x=(1.0, 2.0, None, 4.0, 5.0, None, 7.0, 8.5)):
    yi = np.array([0.10, 0.25, -0.05, 0.30, 0.42, 0.05, 0.50, 0.61])
    vi = np.array([0.010, 0.020, 0.015, 0.012, 0.030, 0.010, 0.020, 0.025])
    source = ["a", "a", "b", "b", "c", "d", "e", "e"]
    site = [1, 2, 1, 1, 1, 1, 1, 2]
    return yi, vi, pd.DataFrame({"x": list(x)}), source, site


def test_rows_without_a_moderator_value_are_left_out_and_counted():
    yi, vi, mods, source, site = _small()
    res = meta_regression_nested(yi, vi, mods, source, site)
    # rows 2 and 5 lack x: source d (one site) goes entirely, source b keeps one of its
    # two effects of one site
    assert (res.k, res.k_dropped, res.sites_dropped, res.sources_dropped) == (6, 2, 1, 1)
    assert (res.n_sites, res.n_sources) == (6, 4)
    assert list(res.used) == [True, True, False, True, True, False, True, True]
    assert "2 effect(s) without a value of x left out (1 site(s) and 1 source(s)" in " ".join(res.notes)
    keep = res.used
    same = meta_regression_nested(yi[keep], vi[keep], mods[keep], np.array(source)[keep],
                                  np.array(site)[keep])
    assert same.k_dropped == 0 and same.notes == res.notes[:-1]
    np.testing.assert_allclose(same.coefficients.to_numpy(), res.coefficients.to_numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, "", "  "],
                         ids=["None", "nan", "pd.NA", "empty", "blank"])
def test_every_kind_of_missing_value_is_dropped(missing):
    yi, vi, _, source, site = _small()
    biome = ["boreal", "tundra", missing, "boreal", "tundra", missing, "tundra", "boreal"]
    res = meta_regression_nested(yi, vi, {"biome": biome}, source, site)
    assert res.k_dropped == 2 and list(res.coefficients.index) == ["intrcpt", "biome[tundra]"]


def test_zero_null_components_give_zero_r2():
    yi, vi = np.array([0.1, 0.12, 0.09, 0.11, 0.1, 0.13]), np.full(6, 0.05)
    res = meta_regression_nested(yi, vi, {"x": [1, 2, 3, 4, 5, 6]}, [1, 1, 2, 2, 3, 3],
                                 [1, 2, 1, 2, 1, 2])
    # Q is far below its df here: every component sits at its bound, 0, by a wide margin
    assert max(res.sigma2_null) < 1e-12 and res.r2 == pytest.approx(0.0, abs=1e-9)


def test_to_frame_is_the_coefficient_table():
    res = meta_regression_nested(*_small()[:3], *_small()[3:])
    frame = res.to_frame()
    assert isinstance(res, NestedRegressionResult)
    assert list(frame.columns) == ["term", *COEF_FIELDS] and list(frame["term"]) == ["intrcpt", "x"]


Y8, V8, M8, S8, T8 = _small()
REGRESSION_ERRORS = [
    ("moderator rows", Y8, V8, {"x": [1.0, 2.0, 3.0]}, S8, T8, {},
     "moderators has 3 rows but yi has 8"),
    ("source length", Y8, V8, M8, S8[:5], T8, {}, "yi has 8 and source has 5"),
    ("site length", Y8, V8, M8, S8, T8[:2], {}, "yi has 8 and site has 2"),
    ("missing site label", Y8, V8, M8, S8, [1, None, 1, 1, 1, 1, 1, 2], {},
     "site must not be missing; position 1"),
    ("every value missing", Y8, V8, {"x": [None] * 8}, S8, T8, {},
     "moderator(s) ['x'] have no value in any of the 8 effects"),
    ("constant moderator", Y8, V8, {"x": [2.5] * 8}, S8, T8, {},
     "moderator 'x' is constant (2.5 in all 8 effects with a value); its slope is not identifiable"),
    ("constant after dropping", Y8, V8, {"x": [2.5, 2.5, None, 2.5, 2.5, 2.5, 2.5, 2.5]}, S8,
     T8, {}, "moderator 'x' is constant (2.5 in all 7 effects with a value)"),
    ("single-level factor", Y8, V8, {"biome": ["boreal"] * 8}, S8, T8, {},
     "moderator 'biome' has a single level 'boreal'"),
    ("collinear dummies", Y8, V8,
     {"biome": list("abcabcab"), "zone": ["n", "s", "e", "n", "s", "e", "n", "s"]}, S8, T8, {},
     "the moderators are collinear (terms ['biome[b]', 'biome[c]', 'zone[n]', 'zone[s]'])"),
    ("numeric copy of a moderator", Y8, V8,
     {"x": [1.0, 2, 3, 4, 5, 6, 7, 8], "y": [3.0, 5, 7, 9, 11, 13, 15, 17]}, S8, T8, {},
     "the moderators are collinear (terms ['x', 'y'])"),
    ("too few effects for p", Y8[:4], V8[:4], {"biome": ["a", "b", "c", "d"]}, S8[:4], T8[:4],
     {}, "a meta-regression with 4 coefficients needs at least 5 effects with every moderator "
         "value, got k=4"),
    ("too few after dropping", Y8[:5], V8[:5], {"x": [1.0, None, None, None, 3.0]}, S8[:5],
     T8[:5], {}, "needs at least 3 effects with every moderator value, got k=2 (3 more lacked"),
    ("infinite moderator", Y8, V8, {"x": [1.0, 2, 3, np.inf, 5, 6, 7, 8]}, S8, T8, {},
     "moderator 'x' must be finite; position 3 is inf"),
    ("no moderator columns", Y8, V8, pd.DataFrame(index=range(8)), S8, T8, {},
     "moderators has no columns"),
    ("NaN effect", np.r_[np.nan, Y8[1:]], V8, M8, S8, T8, {}, "yi must be finite; position 0"),
    ("unknown method", Y8, V8, M8, S8, T8, {"method": "DL"},
     "unknown method 'DL'; must be one of ['REML', 'ML']"),
    ("knha is not an rma.mv test", Y8, V8, M8, S8, T8, {"test": "knha"},
     "unknown test 'knha'; must be one of ['z', 't']"),
    ("bad alpha", Y8, V8, M8, S8, T8, {"alpha": 2}, "alpha must be a number between 0 and 1"),
]


@pytest.mark.parametrize("case,yi,vi,mods,source,site,kwargs,message", REGRESSION_ERRORS,
                         ids=[c[0] for c in REGRESSION_ERRORS])
def test_bad_input_gets_one_line(case, yi, vi, mods, source, site, kwargs, message):
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        meta_regression_nested(yi, vi, mods, source, site, **kwargs)
    assert "\n" not in str(info.value)


PREDICT_ERRORS = [
    ("absent column", {"z": [1.0]}, "new_moderators lacks column(s) ['x']"),
    ("missing value", {"x": [1.0, np.nan]}, "moderator 'x' must be finite; position 1 is nan"),
]


@pytest.mark.parametrize("case,new,message", PREDICT_ERRORS, ids=[c[0] for c in PREDICT_ERRORS])
def test_predict_refuses_bad_new_values(case, new, message):
    res = meta_regression_nested(*_small()[:3], *_small()[3:])
    with pytest.raises(EvidenceError, match=re.escape(message)):
        res.predict(new)


# ---------------------------------------------------------------- moderator_analysis


def _effects(seed=12, n=30):
    """A frame as the knowledge base gives it: effects with site and source labels,
    warming, depths, a biome, some moderator values missing and a direction-only row."""
    rng = np.random.default_rng(seed)
    source = np.repeat(np.arange(n), rng.integers(1, 4, n))
    k = len(source)
    site = rng.integers(0, 2, k)
    warming = np.round(rng.uniform(0.5, 6.0, k), 1)
    vi = rng.uniform(0.005, 0.05, k)
    yi = -0.03 * warming + rng.normal(0, 0.1, n)[source] + rng.normal(0, np.sqrt(0.01 + vi))
    frame = pd.DataFrame({
        "yi": yi, "vi": vi, "study_id": [f"st-{s}-{t}" for s, t in zip(source, site, strict=True)],
        "source_key": [f"paper{s}" for s in source], "warming_c": warming,
        "depth_top_cm": 0.0, "depth_bottom_cm": rng.choice([10.0, 20.0, 30.0], k),
        "biome": rng.choice(["boreal", "temperate", "tundra"], n)[source], "measure": "ROM",
    })
    frame.loc[[2, 7], "warming_c"] = np.nan
    frame.loc[5, ["yi", "vi"]] = np.nan  # a direction-only row
    return frame


def test_report_carries_the_slope_its_percent_and_the_counts():
    frame = _effects()
    rep = moderator_analysis(frame, "warming_c")
    assert isinstance(rep, ModeratorAnalysis) and isinstance(rep.fit, NestedRegressionResult)
    row = rep.fit.coefficients.loc["warming_c"]
    assert (rep.slope, rep.slope_se, rep.slope_ci_low, rep.slope_pvalue) == (
        row["estimate"], row["se"], row["ci_low"], row["pvalue"])
    np.testing.assert_allclose([rep.percent_per_unit, rep.percent_ci_low, rep.percent_ci_high],
                               100 * np.expm1([row["estimate"], row["ci_low"], row["ci_high"]]),
                               rtol=1e-14)
    assert (rep.k_no_effect, rep.k_missing, rep.k_effects) == (1, 2, len(frame) - 3)
    assert rep.notes[0] == "1 row(s) without a finite yi and vi > 0 left out"
    assert rep.notes[1].startswith("2 effect(s) without a value of warming_c left out")
    assert (rep.kind, rep.unit, rep.model, rep.ratio) == ("numeric", "°C", "multilevel", True)
    assert rep.tau2 == pytest.approx(sum(rep.fit.sigma2), rel=1e-15)
    frame_row = rep.to_frame()
    assert len(frame_row) == 1 and {"slope", "percent_per_unit", "qm", "qm_pvalue", "r2",
                                    "sigma2_source", "k_missing", "notes"} <= set(frame_row)
    assert "fit" not in frame_row and "_points" not in frame_row


def test_line_is_the_prediction_over_the_observed_range():
    rep = moderator_analysis(_effects(), "warming_c")
    line = rep.line(n=7)
    points = rep.points()
    assert len(line) == 7 and line["x"].iloc[0] == points["x"].min()
    assert line["x"].iloc[-1] == points["x"].max()
    again = rep.fit.predict({"warming_c": line["x"]})
    np.testing.assert_allclose(line[["fitted", "ci_low", "ci_high"]].to_numpy(),
                               again[["pred", "ci_low", "ci_high"]].to_numpy(), rtol=1e-15)
    assert (line["ci_low"] < line["fitted"]).all() and (line["fitted"] < line["ci_high"]).all()
    np.testing.assert_allclose(line["percent"], 100 * np.expm1(line["fitted"]), rtol=1e-14)


def test_points_are_the_fitted_effects_with_the_model_weights():
    frame = _effects()
    rep = moderator_analysis(frame, "warming_c")
    points = rep.points()
    assert len(points) == rep.k_effects and points["x"].notna().all()
    assert not set(points["row"]) & {2, 5, 7}  # no moderator value; no effect
    np.testing.assert_allclose(points["weight"], rep.fit.weights(), rtol=0)
    assert points["weight"].sum() == pytest.approx(100, rel=1e-12)
    np.testing.assert_array_equal(points["yi"], frame.loc[points["row"], "yi"])


def test_independent_model_is_meta_regression_on_the_same_effects():
    frame = _effects()
    rep = moderator_analysis(frame, "warming_c", model="independent", method="DL", test="knha")
    rows = frame[frame["yi"].notna() & frame["warming_c"].notna()]
    ref = meta_regression(rows["yi"], rows["vi"], rows[["warming_c"]], method="DL", test="knha")
    assert rep.slope == ref.coefficients.loc["warming_c", "estimate"]
    assert (rep.qm, rep.r2, rep.tau2, rep.test) == (ref.qm, ref.r2, ref.tau2, "knha")
    assert rep.k_missing == 2 and all(np.isnan(rep.sigma2))
    assert any("as if independent" in note for note in rep.notes)
    w = 1 / (rows["vi"] + ref.tau2)
    np.testing.assert_allclose(rep.points()["weight"], 100 * w / w.sum(), rtol=1e-12)


def test_categorical_moderator_gives_levels_not_a_slope():
    rep = moderator_analysis(_effects(), "biome")
    assert rep.kind == "categorical" and np.isnan(rep.slope) and np.isnan(rep.percent_per_unit)
    line = rep.line()
    assert list(line["x"]) == ["boreal", "temperate", "tundra"]
    coef = rep.coefficients["estimate"]
    np.testing.assert_allclose(line["fitted"], [coef.iloc[0], coef.iloc[0] + coef.iloc[1],
                                                coef.iloc[0] + coef.iloc[2]], rtol=1e-12)


def test_depth_mid_point_is_derived_from_the_layer():
    frame = _effects()
    rep = moderator_analysis(frame, "depth_mid_cm")
    assert rep.unit == "cm" and set(rep.points()["x"]) <= {5.0, 10.0, 15.0}


@pytest.mark.parametrize("measures,expected", [
    (None, True), (["ROM"], True), (["ROM", "ROM_BC"], True), (["ROM", "SMD"], False),
    (["MD"], False),
])
def test_percent_change_only_for_log_response_ratios(measures, expected):
    frame = _effects()
    if measures is None:
        frame = frame.drop(columns="measure")
    else:
        frame["measure"] = [measures[i % len(measures)] for i in range(len(frame))]
    rep = moderator_analysis(frame, "warming_c")
    assert rep.ratio is expected and np.isnan(rep.percent_per_unit) is not expected
    assert ("percent" in rep.line(3)) is expected


def test_missing_labels_make_sites_and_sources_of_their_own():
    frame = _effects()
    frame.loc[[0, 1], "study_id"] = None
    frame.loc[frame["study_id"] == "st-3-0", "source_key"] = ""
    rep = moderator_analysis(frame, "warming_c")
    assert "2 effect(s) without a study_id: each its own site" in rep.notes
    assert any("without a source_key: each counts as its own source" in n for n in rep.notes)


HELPER_ERRORS = [
    ("not a frame", [1, 2], {}, "frame must be a pandas DataFrame; got list"),
    ("two moderators", _effects(), {"moderator": ["warming_c", "biome"]},
     "moderator must be one column name (a str); got ['warming_c', 'biome']"),
    ("no vi", pd.DataFrame({"yi": [0.1]}), {}, "frame lacks column(s) ['vi']"),
    ("no moderator", pd.DataFrame({"yi": [0.1], "vi": [0.01]}), {},
     "frame has no column 'warming_c'; columns are ['vi', 'yi']"),
    ("no effect", pd.DataFrame({"yi": [np.nan], "vi": [0.01], "warming_c": [1.0]}), {},
     "none of the 1 rows has a finite yi with vi > 0"),
    ("unknown model", _effects(), {"model": "robust"},
     "unknown model 'robust'; must be one of ['multilevel', 'independent']"),
    ("independent with a t test", _effects(), {"model": "independent", "test": "t"},
     "unknown test 't'; must be one of ['z', 'knha']"),
]


@pytest.mark.parametrize("case,frame,kwargs,message", HELPER_ERRORS,
                         ids=[c[0] for c in HELPER_ERRORS])
def test_moderator_analysis_refuses_bad_input(case, frame, kwargs, message):
    kwargs = {"moderator": "warming_c", **kwargs}
    with pytest.raises(EvidenceError, match=re.escape(message)) as info:
        moderator_analysis(frame, **kwargs)
    assert "\n" not in str(info.value)


def test_line_needs_two_points():
    rep = moderator_analysis(_effects(), "warming_c")
    with pytest.raises(EvidenceError, match=re.escape("line() needs n >= 2 points; got 1")):
        rep.line(n=1)


def test_nested_and_pool_nested_agree_on_the_null_model():
    yi, vi, mods, source, site = gm.inputs(gm.GOLD["cases"][-1])
    res = meta_regression_nested(yi, vi, mods, source, site)
    null = pool_nested(yi, vi, source, site)
    assert res.sigma2_null == null.sigma2


@pytest.mark.parametrize("module", ["scipy.stats", "scipy.optimize"])
def test_import_stays_cheap(module):
    # the explorer imports this for its bubble plot: no scipy.stats (~1 s) or optimize
    code = f"import evidence.moderators, sys; print({module!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
