"""Closed-form rates and bounds from the papers the toolkit serves, as overlays for plots.

Every function is pure numpy and broadcasts over array arguments. Constants hidden by O(·), Θ(·)
or Õ(·) in a theorem are set to 1 (or exposed as a keyword) and log factors hidden by Õ are
dropped, so curves are right in *shape* (slope on a log-log plot), not in absolute level — scale
them to the data when overlaying. Explicit constants are kept where a paper states them.

Notation: n input dimension, s hidden units, k active units (or parity size / polynomial degree),
m samples, W and B the weight and bias norms of H^{W,B}_{n,s,k}, R the input radius (√n on the
cube), A = W·R, ε accuracy, δ failure probability.

Papers: ADKM = Awasthi, Dikkala, Kamath, Meka, arXiv 2406.17989 (COLT 2024); LSJGH = Li, Sha,
Jiang, Gao, Han, arXiv 2609.09130; BEGKMZ = Barak et al., arXiv 2207.08799 (NeurIPS 2022);
EGKMZ = Edelman et al., arXiv 2309.03800 (NeurIPS 2023); KCGK = Kou, Chen, Gu, Kakade, arXiv
2404.12376 (NeurIPS 2024); WNL = Wang, Nichani, Lee, arXiv 2311.13774 (ICLR 2024).

Example:
    >>> m = np.logspace(2, 6, 50)
    >>> sparse = rademacher_adkm(n=100, s=1000, k=4, m=m, W=1.0, B=1.0, R=10.0)
    >>> dense = rademacher_dense(s=1000, m=m, W=1.0, B=1.0, R=10.0)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

ArrayLike = float | np.ndarray

#: c₁ = (1 − τ)²/(64√2) with τ = √3/2: the constant of the lower bound in LSJGH Theorem 14.
MINIMAX_C1 = (1.0 - math.sqrt(3.0) / 2.0) ** 2 / (64.0 * math.sqrt(2.0))


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _require(name: str, x: np.ndarray, ok: np.ndarray, what: str) -> None:
    """ValueError naming `name` unless `ok` holds everywhere (for a function whose result would
    otherwise be an exception deep inside, or a loop that never ends)."""
    if not np.all(ok):
        raise ValueError(f"{name} must {what}, got {x}")


def _log1(x) -> np.ndarray:
    """log(x) floored at 1, so bounds with a log factor stay finite and monotone for tiny arguments."""
    return np.maximum(np.log(np.maximum(_f(x), 1e-300)), 1.0)


def log_comb(n, k) -> np.ndarray:
    """ln C(n, k) for real arrays (via log-gamma); −inf where k < 0 or k > n."""
    n, k = _f(n), _f(k)
    with np.errstate(invalid="ignore"):
        out = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return np.where((k < 0) | (k > n), -np.inf, out)


# =============================================================================== Rademacher
def rademacher_adkm_k1(n, s, m, W, B, R) -> np.ndarray:
    """ADKM Theorem 19 (k = 1): R_S(H^{W,B}_{n,s,1}) ≤ (WR + B)·√(s·n·log(m(R + B)))/√m, the
    log floored at 1 (as in every bound here with a log factor).

    Example:
        >>> round(float(rademacher_adkm_k1(n=10, s=16, m=1000, W=1, B=1, R=np.sqrt(10))), 3)
        4.806
    """
    return (_f(W) * _f(R) + _f(B)) * np.sqrt(_f(s) * _f(n) * _log1(_f(m) * (_f(R) + _f(B))) / _f(m))


def rademacher_adkm(n, s, k, m, W, B, R) -> np.ndarray:
    """ADKM Eq. (15) (proof of Theorem 17, general k):
    R_S(H^{W,B}_{n,s,k}) ≤ (WR + B)·√(s·n·k·log(k·m(R + B)))/√m, the log floored at 1.

    Example:
        >>> round(float(rademacher_adkm(n=100, s=64, k=4, m=1e4, W=1, B=1, R=10)), 2)
        63.44
    """
    return (_f(W) * _f(R) + _f(B)) * np.sqrt(
        _f(s) * _f(n) * _f(k) * _log1(_f(k) * _f(m) * (_f(R) + _f(B))) / _f(m))


def rademacher_conjecture20(s, k, m, W, B, R) -> np.ndarray:
    """ADKM Conjecture 20: R_S ≤ (WR + B)·√(s·k)/√m, with no dependence on n (settled up to
    log^{3/2} m by LSJGH Theorems 2–3)."""
    return (_f(W) * _f(R) + _f(B)) * np.sqrt(_f(s) * _f(k) / _f(m))


def rademacher_dense(s, m, W, B, R) -> np.ndarray:
    """The dense baseline quoted by ADKM (§4): R_S(H_{n,s,s}) ≤ (WR + B)·s/√m."""
    return (_f(W) * _f(R) + _f(B)) * _f(s) / np.sqrt(_f(m))


def rademacher_sum_abs(m) -> np.ndarray:
    """ρ_m = E|ζ_1 + … + ζ_m|/m for independent Rademacher ζ_i (LSJGH notation), exactly:
    E|S_m| = m·C(m − 1, ⌊(m − 1)/2⌋)/2^{m−1}. Lies in [1/√(3m), 1/√m].

    Example:
        >>> float(rademacher_sum_abs(3))      # E|S_3| = 1.5, so 0.5
        0.5
    """
    m = _f(m)
    return np.exp(log_comb(m - 1, np.floor((m - 1) / 2)) - (m - 1) * math.log(2.0))


def rademacher_lsjgh_upper(s, k, m, W, B, R, *, C: float = 1.0) -> np.ndarray:
    """LSJGH Theorem 2 (upper bound, no dimension factor), the smallest of its three statements:

        R_S ≤ C·A·min{k, √(sk/m)·ℓ_m^{3/2}} + k·B·ρ_m,   R_S ≤ k(A + B),   R_S ≤ 2s(A + B)/√m

    with A = W·R, ℓ_m = log 2m and ρ_m = `rademacher_sum_abs(m)`. The constant C of the first
    bound is not given in the paper (default 1).
    """
    s, k, m, A, B = _f(s), _f(k), _f(m), _f(W) * _f(R), _f(B)
    main = C * A * np.minimum(k, np.sqrt(s * k / m) * np.log(2 * m) ** 1.5) + k * B * rademacher_sum_abs(m)
    return np.minimum(main, np.minimum(k * (A + B), 2 * s * (A + B) / np.sqrt(m)))


def rademacher_lsjgh_lower(s, k, m, W, B, R, n=None) -> np.ndarray:
    """LSJGH Theorem 3 (lower bound): for some input marginal,
    E[R] ≥ (1/(4√2))·(A·min{k, √(sk/m)} + k·B/√m), A = W·R.

    It needs n ≥ q = min{⌊s/k⌋, m}; where `n` is given and smaller, the result is nan.
    """
    s, k, m, A, B = _f(s), _f(k), _f(m), _f(W) * _f(R), _f(B)
    out = (A * np.minimum(k, np.sqrt(s * k / m)) + k * B / np.sqrt(m)) / (4 * math.sqrt(2.0))
    if n is not None:
        out = np.where(_f(n) >= np.minimum(np.floor(s / k), m), out, np.nan)
    return out


def rademacher_zero_bias(k, m, W, R) -> np.ndarray:
    """LSJGH Proposition 10: a zero-bias network k-sparse on the whole ball has at most 2k nonzero
    units, so R ≤ 4·k·A/√m with A = W·R."""
    return 4 * _f(k) * _f(W) * _f(R) / np.sqrt(_f(m))


def excess_risk_minimax(s, k, m, *, C1: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """LSJGH Theorem 14 (agnostic minimax excess risk of the normalised class, τA ≤ B ≤ A):
    lower c₁·min{1, √(s/(km))} with c₁ = (1 − √3/2)²/(64√2),
    upper C₁·min{1, √(s/(km))·log^{3/2}(2m)}
    (C₁ not given; default 1); s, k and m positive. Returns (lower, upper)."""
    s, k, m = _f(s), _f(k), _f(m)
    for name, v in (("s", s), ("k", k), ("m", m)):
        _require(name, v, v > 0, "be positive")
    rate = np.sqrt(s / (k * m))
    return MINIMAX_C1 * np.minimum(1.0, rate), C1 * np.minimum(1.0, rate * np.log(2 * m) ** 1.5)


# =============================================================================== sample sizes
def sample_complexity_sparse(n, s, k, eps, delta, W, B, R) -> np.ndarray:
    """ADKM Theorem 17: ERM over H^{W,B}_{n,s,k} is (ε, δ)-PAC with
    m = ((WR + B)²·k·s·n·log(k(R + B)/ε) + log(1/δ))/ε² samples, i.e. Õ(ksn/ε²) (constant 1; the
    first log floored at 1)."""
    eps = _f(eps)
    return ((_f(W) * _f(R) + _f(B)) ** 2 * _f(k) * _f(s) * _f(n) * _log1(_f(k) * (_f(R) + _f(B)) / eps)
            + np.log(1 / _f(delta))) / eps ** 2


def sample_complexity_dense(s, eps, delta, W, B, R) -> np.ndarray:
    """The dense baseline (ADKM §4): the Rademacher bound (WR + B)·s/√m gives
    m = ((WR + B)²·s² + log(1/δ))/ε², matching the stated Ω(s²/ε²) for H_{n,s,s} (constant 1)."""
    return ((_f(W) * _f(R) + _f(B)) ** 2 * _f(s) ** 2 + np.log(1 / _f(delta))) / _f(eps) ** 2


def sample_complexity_minimax(s, k, eps) -> np.ndarray:
    """LSJGH Theorem 14: the agnostic sample size of the normalised class is Θ̃(s/(k·ε²))
    (logs and constants dropped)."""
    return _f(s) / (_f(k) * _f(eps) ** 2)


# =============================================================================== low-degree algorithm
def output_bound(n, k, W, B) -> np.ndarray:
    """C_H = k(W√n + B): the largest |h| on {±1}^n for h ∈ H^{W,B}_{n,s,k} (ADKM §2)."""
    return _f(k) * (_f(W) * np.sqrt(_f(n)) + _f(B))


#: `num_features` sums binomials exactly up to this degree (beyond, by their logarithms)
EXACT_DEGREE = 4096


def num_features(n, d) -> np.ndarray:
    """N_d = Σ_{0≤i≤d} C(n, i): the number of Walsh characters of degree ≤ d (ADKM §3 algorithm);
    a fractional d counts up to ⌊d⌋, a negative one gives 0."""
    n, d = np.broadcast_arrays(_f(n), _f(d))
    out = np.zeros(n.shape)
    for idx in np.ndindex(n.shape):
        top = min(math.floor(d[idx]), n[idx]) if np.isfinite(d[idx]) else n[idx]
        if float(n[idx]).is_integer() and top <= EXACT_DEGREE:
            # in integers, rounded once: exp(log C) summed is off by units from ~10¹¹ on
            out[idx] = float(sum(math.comb(int(n[idx]), i) for i in range(int(top) + 1)))
        else:
            out[idx] = np.rint(np.sum(np.exp(log_comb(n[idx], np.arange(math.floor(top) + 1)))))
    return out if out.shape else float(out)


def lowdegree_degree(n, s, k, W, B, eps) -> np.ndarray:
    """ADKM Theorem 8: the degree d = (k⁸W⁴·log⁴(ns) + k⁶B⁴·log s)/ε² that suffices for the
    low-degree algorithm (the Θ constant is not given; set to 1)."""
    n, s, k, W, B = _f(n), _f(s), _f(k), _f(W), _f(B)
    return (k ** 8 * W ** 4 * np.log(n * s) ** 4 + k ** 6 * B ** 4 * np.log(s)) / _f(eps) ** 2


def lowdegree_samples(n, d, k, W, B, eps, delta, *, log10: bool = False) -> np.ndarray:
    """ADKM Lemma 7 / Theorem 8: samples and time n^d·C_H²·log(1/δ)/ε with C_H = k(W√n + B).
    These overflow quickly; `log10=True` returns log₁₀ of the count instead."""
    n = _f(n)
    logv = (_f(d) * np.log(n) + 2 * np.log(output_bound(n, k, W, B)) + np.log(np.log(1 / _f(delta)))
            - np.log(_f(eps)))
    return logv / math.log(10) if log10 else np.exp(logv)


def halfspace_as_lemma6(n, p) -> np.ndarray:
    """ADKM Lemma 6 (Kane 2014): a halfspace indicator with mean p has AS = O(p·√(n·log(1/p)));
    0 at p = 0 (a unit that never fires)."""
    p = _f(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p == 0, 0.0, p * np.sqrt(_f(n) * np.log(1 / p)))


def as_bound_lemma9(n, s, k, W, B) -> np.ndarray:
    """ADKM Lemma 9: AS(h) ≤ O(k⁴W²√n·log(ns) + k³B²√(log s)) for h ∈ H^{W,B}_{n,s,k} (constant 1)."""
    n, s, k = _f(n), _f(s), _f(k)
    return k ** 4 * _f(W) ** 2 * np.sqrt(n) * np.log(n * s) + k ** 3 * _f(B) ** 2 * np.sqrt(np.log(s))


def ns_bound_lemma10(n, s, k, W, B, rho) -> np.ndarray:
    """ADKM Lemma 10: NS_ρ(h) = √(1−ρ)·O(k⁴W²·log²(ns/(1−ρ)) + k³B²√(log s)) (constant 1);
    0 at ρ = 1, its limit (NS_1 = 0)."""
    n, s, k, rho = _f(n), _f(s), _f(k), _f(rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sqrt(1 - rho) * (k ** 4 * _f(W) ** 2 * np.log(n * s / (1 - rho)) ** 2
                                  + k ** 3 * _f(B) ** 2 * np.sqrt(np.log(s)))
    return np.where(rho == 1, 0.0, out)


def tail_bound_claim21(noise_sensitivity, rho, d) -> np.ndarray:
    """ADKM Claim 2.1 (Klivans–O'Donnell–Servedio 2004): Σ_{|T|>d} f̂(T)² ≤ 2·NS_ρ(f)/(1 − ρ^d),
    for a correlation ρ ∈ (0, 1) and degree d ≥ 1 (outside, the right side is no bound)."""
    _require("rho", _f(rho), (_f(rho) > 0) & (_f(rho) < 1), "lie in (0, 1)")
    _require("d", _f(d), _f(d) >= 1, "be at least 1")
    return 2 * _f(noise_sensitivity) / (1 - _f(rho) ** _f(d))


# =============================================================================== parities
def parity_sq_queries(n, k) -> np.ndarray:
    """Statistical-query lower bound for k-sparse parities: the SQ dimension is C(n, k), so an SQ
    learner with polynomial tolerance needs Ω(n^k) queries (the bound KCGK match; BEGKMZ §4)."""
    return np.exp(log_comb(n, k))


def parity_sgd_samples(n, k) -> np.ndarray:
    """KCGK (NeurIPS 2024): sign SGD on a 2-layer net with 2^{Θ(k)} neurons learns k-sparse parities
    from Õ(n^{k−1}) samples (Õ(n^k) queries), matching the SQ bound. Also 1/γ² for the Fourier
    gap γ = Θ(n^{−(k−1)/2}) of BEGKMZ Def. 1 (logs dropped)."""
    return _f(n) ** (_f(k) - 1)


def parity_fourier_gap(n, k) -> np.ndarray:
    """BEGKMZ Def. 1 with ReLU/sign initialisation: the population-gradient gap γ = Θ(n^{−(k−1)/2})."""
    return _f(n) ** (-(_f(k) - 1) / 2)


def parity_information_samples(n, k) -> np.ndarray:
    """Information-theoretic lower bound: one ±1 label carries at most one bit, so identifying S
    among C(n, k) sets needs at least log₂ C(n, k) ≈ k·log₂(n/k) samples."""
    return log_comb(n, k) / math.log(2.0)


def gf2_full_rank_probability(n, m) -> np.ndarray:
    """P[m uniform vectors of GF(2)^n span it] = Π_{i=0}^{n−1} (1 − 2^{i−m}) (0 if m < n). With
    full rank, Gaussian elimination recovers any (noiseless) parity: GF(2) learning needs ~n samples."""
    n, m = np.broadcast_arrays(_f(n), _f(m))
    out = np.zeros(n.shape)
    for idx in np.ndindex(n.shape):
        if m[idx] >= n[idx]:
            i = np.arange(int(n[idx]))
            out[idx] = np.exp(np.sum(np.log1p(-(2.0 ** (i - m[idx])))))
    return out if out.shape else float(out)


def gf2_samples(n, delta) -> np.ndarray:
    """Smallest m with `gf2_full_rank_probability(n, m)` ≥ 1 − δ (about n + log₂(1/δ)), 0 < δ < 1."""
    n, delta = np.broadcast_arrays(_f(n), _f(delta))
    _require("delta", delta, (delta > 0) & (delta < 1), "lie in (0, 1)")   # else the search never stops
    out = np.zeros(n.shape)
    for idx in np.ndindex(n.shape):
        m = int(n[idx])
        while gf2_full_rank_probability(n[idx], m) < 1 - delta[idx]:
            m += 1
        out[idx] = m
    return out if out.shape else float(out)


def hidden_progress_tc(n, k, *, c: float = 1.0, alpha: float = 1.0) -> np.ndarray:
    """BEGKMZ §3 (coverage sweep): SGD reaches 100% accuracy on (n, k)-parities within
    t_c ≤ c·n^{α·k} steps for small architecture-dependent c and α (fit them with `fit_power_law`)."""
    return c * _f(n) ** (alpha * _f(k))


def barak_batch_size(n, k, eps) -> np.ndarray:
    """BEGKMZ Theorem 4: batch size B = Ω(n^k·log(n/ε)) makes the parity features appear after one
    step (constant 1)."""
    n = _f(n)
    return n ** _f(k) * np.log(n / _f(eps))


def barak_iterations(n, k, r, eps) -> np.ndarray:
    """BEGKMZ Theorem 4: expected loss ≤ ε within O(k³·r²·n/ε²) iterations (width r, constant 1)."""
    return _f(k) ** 3 * _f(r) ** 2 * _f(n) / _f(eps) ** 2


def barak_min_width(k, eps) -> np.ndarray:
    """BEGKMZ Theorem 4: width r = Ω(2^k·k·log(k/ε)) (constant 1)."""
    k = _f(k)
    return 2 ** k * k * np.log(k / _f(eps))


def polynet_iterations(n, k, eps, delta) -> np.ndarray:
    """BEGKMZ Theorem 7 (disjoint PolyNet, online SGD): error ≤ ε once
    T ≥ 6·log(2nT/δ)·log(2k/ε)·(3n′ − 2)^{2k−1}, n′ = n/k. Returns the smallest such T (the
    fixed point of the implicit inequality); 0 < ε, δ < 1 and 1 ≤ k ≤ n."""
    n, k, eps, delta = np.broadcast_arrays(_f(n), _f(k), _f(eps), _f(delta))
    _require("eps", eps, (eps > 0) & (eps < 1), "lie in (0, 1)")   # log(2k/ε) ≤ 0 from ε = 2k
    _require("delta", delta, (delta > 0) & (delta < 1), "lie in (0, 1)")
    _require("k", k, (k >= 1) & (k <= n), "lie in [1, n]")
    out = np.zeros(n.shape)
    for idx in np.ndindex(n.shape):
        core = 6 * math.log(2 * k[idx] / eps[idx]) * (3 * n[idx] / k[idx] - 2) ** (2 * k[idx] - 1)
        t = max(core, 1.0)
        for _ in range(200):          # T ↦ core·log(2nT/δ) is a contraction in log T
            nxt = core * math.log(2 * n[idx] * t / delta[idx])
            if abs(nxt - t) <= 1e-12 * t:
                break
            t = nxt
        out[idx] = t
    return out if out.shape else float(out)


def edelman_independent_steps(n, k, r, m, delta) -> np.ndarray:
    """EGKMZ Proposition 3: with r parameters and gradient noise of tolerance τ ≈ 1/√m, the first
    T iterates are independent of the parity (w.p. ≥ 1 − δ) while r·T/(τ²·δ) ≤ ½·C(n, k), i.e. for
    T ≤ C(n, k)·δ/(2·r·m). Learning needs more steps, more width, more data or luck."""
    return np.exp(log_comb(n, k)) * _f(delta) / (2 * _f(r) * _f(m))


def sparse_init_width(n, k, s, *, c2: float = 1.0) -> np.ndarray:
    """EGKMZ Theorem 4 (sparse initialisation with s nonzeros per neuron, s > Ω(k)): width
    r = c₂·(n/s)^k."""
    return c2 * (_f(n) / _f(s)) ** _f(k)


def sparse_init_samples(n, k, s, *, c3: float = 1.0) -> np.ndarray:
    """EGKMZ Theorem 4: m ≥ c₃·(s/k)^{k−1}·n²·log n samples (s = αn recovers m = Ω(n^{k+1}))."""
    n = _f(n)
    return c3 * (_f(s) / _f(k)) ** (_f(k) - 1) * n ** 2 * np.log(n)


def sign_sgd_neurons(k) -> np.ndarray:
    """KCGK: 2^{Θ(k)} neurons suffice for sign SGD on k-sparse parities (constant 1 in the exponent)."""
    return 2.0 ** _f(k)


# =============================================================================== hierarchical
def hierarchical_samples_three_layer(d, k) -> np.ndarray:
    """WNL (abstract): layerwise GD on a three-layer network learns h = g∘p (p of degree k from the
    paper's subclass) from Õ(d^k) samples; Õ(d²) for quadratic p (logs dropped)."""
    return _f(d) ** _f(k)


def hierarchical_samples_kernel(d, k, q) -> np.ndarray:
    """WNL (abstract): kernel methods need Θ̃(d^{kq}) samples for g∘p with deg p = k, deg g = q."""
    return _f(d) ** (_f(k) * _f(q))


# =============================================================================== fitting
def fit_power_law(x, y) -> tuple[float, float]:
    """Least-squares fit of y ≈ c·x^α in log-log space; returns (c, α). Non-positive or non-finite
    points are ignored. Use it to read α off a t_c(n) or m(n) curve.

    Example:
        >>> np.round(fit_power_law([10, 20, 40], [100, 400, 1600]), 6)       # y = x²
        array([1., 2.])
    """
    x, y = _f(x).ravel(), _f(y).ravel()
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError("need at least two positive points to fit a power law")
    alpha, logc = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(np.exp(logc)), float(alpha)
