"""Exact parity recovery by Gaussian elimination over GF(2).

With bits b_i = (1 − x_i)/2 and c = (1 − y)/2, a parity label y = Π_{i∈S} x_i is the linear
equation Σ_{i∈S} b_i = c (mod 2). m samples give the system B s = c over GF(2), solved here
on bit-packed rows (64 coordinates per uint64 word, the label bit appended as column n), so
one elimination step is a vectorised XOR over all rows: O(n · m · n/64) word operations,
n = 1000 in well under a second.

- No solution: the labels agree with no parity (label noise, or not a parity target) —
  `fit` raises `FitFailed` with the reason, and the run is stored as failed.
- A unique solution needs rank n, which ≈ n + 10 uniform samples give with probability
  ≈ 1 − 2^−10.
- Several solutions (rank r < n, nullity n − r): every solution is a consistent hypothesis.
  With `sparsest=True` and nullity ≤ `max_nullity`, all 2^nullity are enumerated and the one
  with the fewest variables is returned (for a k-sparse target with k small that is usually
  the target, even below n samples); otherwise the solution with every free variable 0.

Example:
    >>> x = np.random.default_rng(0).choice([-1.0, 1.0], (64, 30))     # x in {±1}^(m×n)
    >>> y = x[:, [3, 17, 21]].prod(1)                                   # y in {±1}^m
    >>> params = GF2().fit(None, x, y)
    >>> params["support"], params["rank"]
    (array([ 3, 17, 21]), 30)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sparselearn.contracts import input_distribution
from sparselearn.errors import FitFailed, require


def pack(bits: np.ndarray) -> np.ndarray:
    """Boolean rows (m, c) → uint64 words (m, ⌈c/64⌉), bit j of a row in word j//64 at j%64."""
    m, c = bits.shape
    words = -(-c // 64)
    packed = np.packbits(bits.astype(bool), axis=1, bitorder="little")
    padded = np.zeros((m, words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view("<u8").astype(np.uint64)


def unpack(words: np.ndarray, c: int) -> np.ndarray:
    """Inverse of `pack` for the first c bits: (…, W) uint64 → (…, c) bool."""
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :c].astype(bool)


def _bit(rows: np.ndarray, col: int) -> np.ndarray:
    w, b = divmod(col, 64)
    return ((rows[:, w] >> np.uint64(b)) & np.uint64(1)).astype(bool)


def eliminate(rows: np.ndarray, n: int) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over GF(2) of packed rows (m, W) on their first n columns
    (later columns, such as the label bit, are carried along). Returns (rows, pivot columns);
    row i < rank has its leading 1 in column pivots[i] and no other row has that column set."""
    a = rows.copy()
    pivots: list[int] = []
    r = 0
    for col in range(n):
        if r == a.shape[0]:
            break
        below = np.flatnonzero(_bit(a[r:], col))
        if below.size == 0:
            continue
        p = r + below[0]
        if p != r:
            a[[r, p]] = a[[p, r]]
        hit = _bit(a, col)
        hit[r] = False
        a[hit] ^= a[r]
        pivots.append(col)
        r += 1
    return a, pivots


def _span(start: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """start ^ every combination of `vectors` (v, W), shape (2^v, W); row i holds vector j
    where bit j of i is set."""
    out = start[None, :]
    for v in vectors:
        out = np.concatenate([out, out ^ v[None, :]])
    return out


def _lightest(start: np.ndarray, vectors: np.ndarray, n: int, block: int = 16) -> np.ndarray:
    """The lightest of the 2^v words start ^ span(vectors) as n bools, the first in `_span`
    order on ties. Enumerated 2^block at a time, so memory stays at 2^block words per row
    however many vectors there are."""
    head = _span(start, vectors[:block])
    best, best_weight = None, n + 1
    for offset in _span(np.zeros_like(start), vectors[block:]):
        weights = np.bitwise_count(head ^ offset).sum(axis=1)
        i = int(np.argmin(weights))
        if weights[i] < best_weight:
            best, best_weight = head[i] ^ offset, int(weights[i])
    return unpack(best, n)


def solve(x: np.ndarray, y: np.ndarray, *, sparsest: bool = True, max_nullity: int = 16) -> dict:
    """Every parity consistent with (x, y): the chosen support and the system's rank.

    x: (m, n) in {±1}, y: (m,) in {±1}. Raises FitFailed when no parity fits.
    Returns {"support": (k,) int indices, "rank": r, "nullity": n − r} (2^nullity parities fit).
    """
    m, n = x.shape
    bits = np.concatenate([x < 0, (y < 0)[:, None]], axis=1)
    reduced, pivots = eliminate(pack(bits), n)
    rank = len(pivots)
    if rank < m and _bit(reduced[rank:], n).any():
        raise FitFailed(f"no parity on n = {n} bits agrees with all {m} labels (rank {rank}): noisy labels, "
                        "or the target is not a parity")
    pivot_rows = reduced[:rank]
    solution = np.zeros(n, dtype=bool)
    solution[pivots] = _bit(pivot_rows, n)
    free = np.setdiff1d(np.arange(n), pivots)
    if sparsest and 0 < free.size <= max_nullity:
        basis = np.zeros((free.size, n), dtype=bool)           # one null-space vector per free column
        basis[np.arange(free.size), free] = True
        for j, f in enumerate(free):
            basis[j, pivots] = _bit(pivot_rows, int(f))
        solution = _lightest(pack(solution[None, :])[0], pack(basis), n)
    return {"support": np.flatnonzero(solution), "rank": rank, "nullity": n - rank}


@dataclass(frozen=True)
class GF2:
    """Parity learning by elimination over GF(2) (a host learner: numpy, one run at a time).

    Fields: `sparsest` (with several consistent parities, return one with the fewest
    variables, by enumerating the null space when its dimension is ≤ `max_nullity`),
    `max_nullity` (0 … 24; the 2^max_nullity candidates are enumerated 2^16 at a time, so
    memory stays at 2^16 packed rows; time grows as 2^max_nullity).

    Example:
        >>> x = np.random.default_rng(0).choice([-1.0, 1.0], (20, 30))   # m < n: 2^10 parities fit
        >>> GF2().fit(None, x, x[:, [3, 17, 21]].prod(1))["support"]       # the sparsest of them
        array([ 3, 17, 21])
    """

    sparsest: bool = True
    max_nullity: int = 16

    name: ClassVar[str] = "gf2"
    kind: ClassVar[str] = "host"

    def __post_init__(self):
        require(0 <= self.max_nullity <= 24, "max_nullity", f"must be in [0, 24], got {self.max_nullity}")
        require(self.sparsest or self.max_nullity == GF2.max_nullity, "max_nullity",
                f"is used only with sparsest: true, got max_nullity {self.max_nullity} with sparsest: false")

    def check(self, target, data) -> None:
        """GF(2) elimination reads ±1 inputs and ±1 labels."""
        inputs = input_distribution(target)
        require(inputs in ("hypercube", "biased"), "name",
                f"gf2 needs ±1 inputs; target {target.name} has {inputs} inputs")
        require(target.task == "classification", "name",
                f"gf2 needs ±1 labels; target {target.name} is a {target.task} target")

    def fit(self, key, x, y) -> dict:
        """Solve for a parity consistent with every example; FitFailed if there is none."""
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(f"x must be (m, n) and y (m,), got {x.shape} and {y.shape}")
        if x.shape[0] == 0:
            raise ValueError("empty training set (m = 0)")
        if not (np.all(np.abs(x) == 1) and np.all(np.abs(y) == 1)):
            raise ValueError("gf2 needs inputs and labels in {±1}")
        return solve(x, y, sparsest=self.sparsest, max_nullity=self.max_nullity)

    def apply(self, params: dict, x) -> np.ndarray:
        """χ_S(x) = Π_{i∈S} x_i, shape (m,) float32 (1 for the empty set)."""
        x = np.asarray(x)
        return np.prod(x[:, params["support"]], axis=1).astype(np.float32)
