"""Cluster-robust variances for a pooled intercept: metafor's sandwich (CR1) and
clubSandwich's CR2 with Satterthwaite degrees of freedom, in O(k) memory.

The working model has covariance V = diag(d) + s2 Z_site Z_site' + s1 Z_cl Z_cl', sites
nested in clusters, so V is block-diagonal by cluster (the random-effects model is the
case s1 = s2 = 0). With weights W = V^-1, x = W 1 the GLS weights, info = 1'W 1 and
residuals e, clubSandwich's CR2 estimator (inverse-variance weights, target V) is

    Var = sum_j (1'W_j A_j e_j)^2 / info^2,
    A_j = T_j' G_j^(-1/2) T_j,  G_j = T_j (V_j - 1 1' / info) T_j',  V_j = T_j' T_j.

A_j does not depend on which square root T_j of V_j is used. With S = V_j^(1/2) it is
S (S Y S)^(-1/2) S for Y = V_j - 1 1'/info, the matrix geometric mean V_j # Y^-1, and

    V_j # Y^-1 = (2 / pi) int_0^inf (t W_j + Y / t)^-1 dt / t.

Since t W_j + V_j / t = V_j^-1 (V_j^2 + t^2) / t, (t W_j + V_j / t)^-1 = t Re (V_j - i t I)^-1,
and Y's rank-one term is one Sherman-Morrison update. (V_j - i t I)^-1 has the same
Woodbury form as V_j^-1 with complex diagonal d - i t, so every bilinear form the
integrand needs is a sum over sites and clusters: O(k) per quadrature node, no n_j x n_j
matrix. In u = log t the integrand is a sum of sech(u - u_m) bumps centred between the
logarithms of V_j's extreme eigenvalues; the trapezoidal rule on it converges
geometrically in the step (0.3: ~1e-14), and beyond the bumps the integrand follows
t K0 - t^3 K1 (t -> 0) and K_inf / t - L / t^3 (t -> inf) with closed-form coefficients,
so the nodes past both ends are summed as geometric series (:func:`_tails`). About 60
nodes cover sampling variances spread over a decade.

The Satterthwaite degrees of freedom reduce to scalars too. With R_j = 1'W_j 1 and
alpha_j = 1'W_j A_j 1, clubSandwich's P matrix (get_P_array, Satterthwaite) has
tr P = 1 / info and sum P^2 = (sum R_j^2 - sum eta_j^2 + (sum eta_j)^2) / info^4 with
eta_j = alpha_j^2 / info, because A_j V_j A_j = V_j + A_j 1 1' A_j / info.
"""

from dataclasses import dataclass

import numpy as np

ROBUST_VCOV = ("CR1", "CR2")
STEP = 0.3  # trapezoid step in log t: error ~ exp(-pi^2 / STEP) ~ 5e-15 relative
TAIL = 7.0  # nodes beyond the bumps, in log t: neglected tail terms ~ exp(-5 TAIL) ~ 6e-16
CHUNK = 500_000  # effects x nodes per block of work: two such buffers, 8 MB in all


@dataclass(frozen=True)
class WorkingModel:
    """V = diag(d) + s2 (a block of ones per site) + s1 (a block of ones per cluster).

    ``site`` gives each effect's site code and ``site_cluster`` each site's cluster code;
    for the random-effects model pass the cluster codes as sites, ``site_cluster =
    arange(n)`` and s1 = s2 = 0.
    """

    d: np.ndarray
    s1: float
    s2: float
    site: np.ndarray
    site_cluster: np.ndarray
    n_clusters: int

    @property
    def n_sites(self):
        return len(self.site_cluster)

    def cluster_of_effects(self):
        return self.site_cluster[self.site]


def _stacked(codes, n, m):
    """Group codes for m stacked rows: row j's groups are j n .. j n + n - 1."""
    return (codes[None, :] + n * np.arange(m)[:, None]).ravel()


def _cluster_sums(model, values):
    """Per-cluster sums of the rows of an (m, n_sites) complex or real array."""
    m, n = values.shape
    nc = model.n_clusters
    codes = _stacked(model.site_cluster, nc, m)

    def one(part):
        return np.bincount(codes, weights=part.ravel(), minlength=m * nc).reshape(m, nc)

    if np.iscomplexobj(values):
        return one(values.real) + 1j * one(values.imag)
    return one(values)


def gls_weights(model):
    """x = V^-1 1 per effect: (1/d) c g with c = 1/(1 + s2 S) per site, g per cluster."""
    a = 1 / model.d
    S = np.bincount(model.site, weights=a, minlength=model.n_sites)
    c = 1 / (1 + model.s2 * S)
    g = 1 / (1 + model.s1 * _cluster_sums(model, (c * S)[None, :])[0])
    return a * (c * g[model.site_cluster])[model.site]


class _Sweep:
    """Bilinear forms of (V - i t I)^-1 for up to ``m`` nodes t at a time.

    The per-effect work buffers and stacked site codes are made once: every quadrature
    node needs eight per-site sums over all k effects.
    """

    def __init__(self, model, m, phis):
        k = len(model.d)
        self.model = model
        self.codes = _stacked(model.site, model.n_sites, m)
        self.p, self.w = np.empty((m, k)), np.empty((m, k))
        self.d2 = model.d**2
        # (d - it)^-1 = (d + it) p with p = 1/(d^2 + t^2): sums of phi d p and phi p
        self.phis = [(None, model.d)] + [(phi, phi * model.d) for phi in phis]

    def _site_sums(self, values):
        m, k = values.shape
        n = self.model.n_sites
        return np.bincount(self.codes[: m * k], weights=values.ravel(),
                           minlength=m * n).reshape(m, n)

    def forms(self, t):
        """Per-cluster 1'(.)1, x'(.)1, e'(.)1 and e'(.)x of (V - i t I)^-1, complex (m, n)."""
        m = len(t)
        p, w = self.p[:m], self.w[:m]
        np.add(self.d2[None, :], (t * t)[:, None], out=p)
        np.reciprocal(p, out=p)
        sums = []
        for phi, phi_d in self.phis:
            real = self._site_sums(np.multiply(p, phi_d, out=w))
            imag = self._site_sums(p if phi is None else np.multiply(p, phi, out=w))
            sums.append(real + 1j * t[:, None] * imag)
        model = self.model
        S, X, E, XE = sums
        c = 1 / (1 + model.s2 * S)
        R = _cluster_sums(model, c * S)
        g = 1 / (1 + model.s1 * R)
        sig = _cluster_sums(model, c * X)  # per-cluster u'x, u = (V without s1)^-1 1
        gt = g[:, model.site_cluster]
        kap = c * (model.s2 * X + model.s1 * gt * sig[:, model.site_cluster])
        rex = _cluster_sums(model, XE - kap * E)
        return g * R, g * sig, g * _cluster_sums(model, c * E), rex


def cr2_terms(model, resid, x, info):
    """Per-cluster alpha_j = 1'W_j A_j 1 and meat_j = 1'W_j A_j e_j of CR2.

    Parameters
    ----------
    model : WorkingModel
    resid : ndarray of shape (k,)
        Residuals e = y - estimate.
    x : ndarray of shape (k,)
        The GLS weights V^-1 1 (:func:`gls_weights`).
    info : float
        1'V^-1 1 = sum(x).

    Returns
    -------
    alpha, meat : ndarray of shape (n_clusters,)
    """
    n = model.n_clusters
    clusters = model.cluster_of_effects()
    r_j = np.bincount(clusters, weights=x, minlength=n)
    t_all = _nodes(model, r_j, info)
    step = max(1, min(len(t_all), CHUNK // len(resid)))
    sweep = _Sweep(model, step, (x, resid, x * resid))
    acc_1, acc_e = np.zeros(n), np.zeros(n)
    for start in range(0, len(t_all), step):
        t = t_all[start:start + step]
        r11, rx1, re1, rex = (t[:, None] * f.real for f in sweep.forms(t))
        denom = t[:, None] * info - r11  # > 0: t W + Y / t stays positive definite
        acc_1 += np.sum(rx1 * t[:, None] * info / denom, axis=0)
        acc_e += np.sum(rex + rx1 * re1 / denom, axis=0)
    # the nodes beyond the ends, summed as geometric series of the tails' leading terms
    r1 = np.exp(-STEP) / -np.expm1(-STEP)  # sum of exp(-n STEP) over n >= 1
    r3 = np.exp(-3 * STEP) / -np.expm1(-3 * STEP)
    tails = _tails(model, clusters, resid, x, r_j, info)
    t_lo, t_hi = t_all[0], t_all[-1]
    for acc, (k0, k1, k_inf, l_inf) in zip((acc_1, acc_e), tails, strict=True):
        acc += r1 * (t_lo * k0 + k_inf / t_hi) - r3 * (t_lo**3 * k1 + l_inf / t_hi**3)
    scale = 2 / np.pi * STEP
    return scale * acc_1, scale * acc_e


def _tails(model, clusters, resid, x, r_j, info):
    """Per-cluster coefficients of the integrand beyond the nodes, for z = 1 and z = e.

    As t -> 0, 1'W (t W + Y/t)^-1 z = t K0 - t^3 K1 + O(t^5) with K0 = 1'W Y^-1 z and
    K1 = 1'W Y^-1 W Y^-1 z; as t -> inf it is K_inf / t - L / t^3 + O(t^-5) with
    K_inf = 1'z and L = 1'Y V z. With Y^-1 = W + rho w w' (w = W 1, rho = 1/(info - R_j))
    and p_m = W^m 1: K0 = p_2'z + rho S (w'z), K1 = p_4'z + rho (w'z) p_4'1 + rho S p_3'z
    + rho^2 S (w'z) p_3'1, S = p_2'1; and L = (V 1)'(V z) - n_j (1'V z) / info.
    """
    n = model.n_clusters

    def per_cluster(values):
        return np.bincount(clusters, weights=values, minlength=n)

    powers = [x]  # W 1, W^2 1, W^3 1, W^4 1
    for _ in range(3):
        powers.append(_solve(model, powers[-1]))
    p1, p2, p3, p4 = ([per_cluster(p), per_cluster(p * resid)] for p in powers)
    rho = 1 / (info - r_j)
    s2 = p2[0]
    v1 = _times(model, np.ones(len(resid)))
    ve = _times(model, resid)
    size = np.bincount(clusters, minlength=n).astype(float)
    out = []
    for z in (0, 1):  # z = 1, then z = e
        k0 = p2[z] + rho * s2 * p1[z]
        k1 = p4[z] + rho * p1[z] * p4[0] + rho * s2 * p3[z] + rho**2 * s2 * p1[z] * p3[0]
        vz = v1 if z == 0 else ve
        k_inf = size if z == 0 else per_cluster(resid)
        l_inf = per_cluster(v1 * vz) - size * per_cluster(vz) / info
        out.append((k0, k1, k_inf, l_inf))
    return out


def _solve(model, values):
    """V^-1 values for one per-effect vector: Woodbury per site, then per cluster."""
    a = 1 / model.d
    S = np.bincount(model.site, weights=a, minlength=model.n_sites)
    c = 1 / (1 + model.s2 * S)
    g = 1 / (1 + model.s1 * _cluster_sums(model, (c * S)[None, :])[0])
    av = np.bincount(model.site, weights=a * values, minlength=model.n_sites)
    sig = _cluster_sums(model, (c * av)[None, :])[0][model.site_cluster]
    kap = c * (model.s2 * av + model.s1 * g[model.site_cluster] * sig)
    return a * (values - kap[model.site])


def _times(model, values):
    """V values: d v plus s2 times the site sums plus s1 times the cluster sums."""
    site_sums = np.bincount(model.site, weights=values, minlength=model.n_sites)
    cluster_sums = np.bincount(model.site_cluster, weights=site_sums, minlength=model.n_clusters)
    return (model.d * values + model.s2 * site_sums[model.site]
            + model.s1 * cluster_sums[model.cluster_of_effects()])


def _nodes(model, r_j, info):
    """Quadrature nodes t = exp(u) covering every cluster's integrand.

    The bumps are centred between log of V's smallest eigenvalue (>= min d) less
    log(info / (info - R_j)) / 2 for the rank-one update, and log of its largest
    (<= max d + s2 (largest site) + s1 (largest cluster), Gershgorin).
    """
    d = model.d
    per_site = np.bincount(model.site, minlength=model.n_sites)
    per_cluster = np.bincount(model.site_cluster, weights=per_site, minlength=model.n_clusters)
    high = float(np.max(d) + model.s2 * per_site.max() + model.s1 * per_cluster.max())
    drop = 0.5 * float(np.max(np.log(info / (info - r_j))))
    u = np.arange(np.log(np.min(d)) - drop - TAIL, np.log(high) + TAIL + STEP, STEP)
    return np.exp(u)


def satterthwaite_df(r_j, alpha_j, info):
    """clubSandwich's Satterthwaite df for the CR2 variance of a pooled intercept.

    Parameters
    ----------
    r_j : ndarray
        Per-cluster 1'W_j 1 (they sum to ``info``).
    alpha_j : ndarray
        Per-cluster 1'W_j A_j 1 from :func:`cr2_terms`.
    info : float
        1'W 1.

    Returns
    -------
    float
        2 E^2 / Var of the CR2 variance under the working model,
        info^2 / (sum r_j^2 - sum eta_j^2 + (sum eta_j)^2), eta_j = alpha_j^2 / info.
    """
    eta = alpha_j**2 / info
    return float(info**2 / (np.sum(r_j**2) - np.sum(eta**2) + np.sum(eta) ** 2))


def robust_variance(model, resid, vcov, adjust=True):
    """Variance of the GLS intercept and its df: CR1 (metafor) or CR2 (clubSandwich).

    Parameters
    ----------
    model : WorkingModel
    resid : ndarray of shape (k,)
        Residuals e = y - estimate.
    vcov : {"CR1", "CR2"}
    adjust : bool
        CR1 only: times n / (n - 1), n clusters.

    Returns
    -------
    var : float
    df : float
        n - 1 for CR1, Satterthwaite's for CR2.
    """
    x = gls_weights(model)
    info = float(np.sum(x))
    n = model.n_clusters
    clusters = model.cluster_of_effects()
    if vcov == "CR2":
        alpha_j, meat_j = cr2_terms(model, resid, x, info)
        r_j = np.bincount(clusters, weights=x, minlength=n)
        return float(np.sum(meat_j**2)) / info**2, satterthwaite_df(r_j, alpha_j, info)
    score = np.bincount(clusters, weights=x * resid, minlength=n)
    var = float(np.sum(score**2)) / info**2 * (n / (n - 1) if adjust else 1.0)
    return var, n - 1
