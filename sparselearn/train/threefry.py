"""Threefry, compiled cheaply on CPU, with every random bit unchanged.

A group program draws its data, teacher and initialisation through a few dozen threefry calls,
and on CPU each one costs compile time far beyond its run time: XLA emits its twenty rounds as
a fused loop per call site. Two remedies:

- `use_straight_line_lowering()` (applied on import): the lowering of `threefry2x32_p` emits
  the rounds as StableHLO ops directly instead of tracing JAX's jnp version once per shape;
- `merged_draws(fn)`: `fn` re-evaluated with its independent threefry calls hashed together,
  one call per dependency level (keys, then the draws from those keys, …), so XLA compiles a
  few copies of the hash instead of one per call site.

Example:
    >>> draw = lambda key: [jax.random.normal(k, (4,)) for k in jax.random.split(key, 3)]
    >>> start = jax.jit(merged_draws(draw))       # the bits of jax.jit(draw), fewer hashes to compile
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

#: Threefry-2x32's rotation distances, alternating every four rounds
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
#: calls with more elements than this keep their own hash: merging copies its operands, and
#: for a large draw the copies cost memory while the compile time saved is the same
MERGE_MAX_ELEMENTS = 1 << 20

try:  # JAX internals; without them both remedies are skipped (the bits are JAX's either way)
    from jax._src import core
    from jax._src.interpreters import mlir
    from jax._src.lib.mlir.dialects import hlo
    from jax._src.random import prng
    from jax._src.random import threefry2x32 as _threefry

    THREEFRY = _threefry.threefry2x32_p
except ImportError:  # pragma: no cover - a JAX without these modules
    THREEFRY = None


def _straight_line(ctx, key1, key2, x1, x2):
    """The lowering of `threefry2x32_p`: the twenty rounds of Threefry-2x32 emitted as
    StableHLO ops directly (JAX's own unrolled rule traces about a hundred jnp operations per
    shape to emit the same ops: 0.3 s of the quickstart group's 0.6 s lowering)."""
    out = ctx.avals_out[0]

    def full(value, aval):  # `value` (an operand of shape aval.shape) broadcast to the output
        return mlir.broadcast_in_dim(ctx, value, out, broadcast_dimensions=range(out.ndim - aval.ndim, out.ndim))

    def const(c: int):
        return full(mlir.ir_constant(np.uint32(c)), out.update(shape=()))

    def rotate_left(v, d: int):
        return hlo.or_(hlo.shift_left(v, const(d)), hlo.shift_right_logical(v, const(32 - d)))

    k1, k2, x1, x2 = (full(v, a) for v, a in zip((key1, key2, x1, x2), ctx.avals_in))
    ks = (k1, k2, hlo.xor(hlo.xor(k1, k2), const(0x1BD11BDA)))
    x = [hlo.add(x1, ks[0]), hlo.add(x2, ks[1])]
    for block in range(5):
        for d in ROTATIONS[block % 2]:
            x[0] = hlo.add(x[0], x[1])
            x[1] = hlo.xor(x[0], rotate_left(x[1], d))
        x = [hlo.add(x[0], ks[(block + 1) % 3]), hlo.add(hlo.add(x[1], ks[(block + 2) % 3]), const(block + 1))]
    return x


def use_straight_line_lowering() -> None:
    """Lower JAX's threefry hash on CPU as straight-line code, as JAX does on GPU, instead of a
    loop: the same bits (tests check the published known answers and a numpy reference), but
    each random draw then compiles to one kernel rather than a while loop of small ones, which
    cuts the compile time of a group by about half. A no-op where JAX's internals differ."""
    if THREEFRY is None:
        return
    used = [(mlir, "broadcast_in_dim"), (mlir, "ir_constant")] + [
        (hlo, name) for name in ("add", "xor", "or_", "shift_left", "shift_right_logical")]
    if all(hasattr(module, name) for module, name in used):
        rule = _straight_line
    else:  # JAX's own straight-line rule
        rule = getattr(_threefry, "_threefry2x32_lowering_rule", None)
    if rule is not None:  # one function per shape, shared by its call sites
        mlir.register_lowering(THREEFRY, rule, platform="cpu", inline=False)


# ------------------------------------------------------------------------- merging

#: the key primitives whose threefry implementation is inlined, so their hashes can merge
_KEY_PRIMITIVES = ("random_bits", "random_split", "random_fold_in")
_CALLS = ("jit", "pjit", "closed_call")


@dataclass
class _Eqn:
    """One equation of the flattened program: inputs and outputs are value ids (ints) or
    `_Known` constants."""

    primitive: Any
    params: dict
    ins: list
    outs: list
    ctx: Any = None


@dataclass(frozen=True)
class _Known:
    value: Any


def _is_threefry_key(aval) -> bool:
    dtype = getattr(aval, "dtype", None)
    return (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
            and getattr(dtype._impl, "name", None) == "threefry2x32")


def _draws(jaxpr) -> bool:
    """Whether `jaxpr` hashes anything outside loops and conditionals (those stay opaque)."""
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if eqn.primitive is THREEFRY or (name in _KEY_PRIMITIVES and _is_threefry_key(eqn.invars[0].aval)):
            return True
        if name in _CALLS and "jaxpr" in eqn.params and _draws(eqn.params["jaxpr"].jaxpr):
            return True
    return False


def _key_implementation(eqn):
    """The jaxpr of key primitive `eqn` on the uint32 data of its keys: JAX's own
    implementation (its threefry_2x32 calls), as its lowering would emit it."""
    # split and random_bits depend on jax_threefry_partitionable as it was where the draw was
    # traced (the lowering reads it under the equation's context), not as it is now
    ctx = getattr(eqn, "ctx", None)
    partitionable = getattr(ctx, "threefry_partitionable", jax.config.jax_threefry_partitionable)
    return _key_implementation_at(eqn.primitive.name, tuple(sorted(eqn.params.items())),
                                  tuple(a.aval for a in eqn.invars), bool(partitionable))


@functools.lru_cache(maxsize=512)
def _key_implementation_at(name: str, params: tuple, avals: tuple, partitionable: bool):
    keys, impl, p = avals[0], avals[0].dtype._impl, dict(params)
    if name == "random_bits":
        fn = prng.iterated_vmap_unary(keys.ndim, lambda k: impl.random_bits(k, p["bit_width"], p["shape"]))
    elif name == "random_split":
        fn = prng.iterated_vmap_unary(keys.ndim, lambda k: impl.split(k, p["shape"]))
    else:
        fn = prng.iterated_vmap_binary_bcast(keys.shape, avals[1].shape, impl.fold_in)
    data = core.physical_aval(keys)
    with jax.threefry_partitionable(partitionable):
        return jax.make_jaxpr(fn)(jax.ShapeDtypeStruct(data.shape, data.dtype),
                                  *(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals[1:]))


class _Flat:
    """A jaxpr flattened for merging: calls that draw are inlined and key primitives replaced
    by their threefry implementation; everything else stays one opaque equation."""

    def __init__(self, closed):
        self.eqns: list[_Eqn] = []
        self.count = 0
        self.inputs = self._fresh(len(closed.jaxpr.invars))
        self.outputs = self._inline(closed, self.inputs)

    def _fresh(self, n: int) -> list[int]:
        self.count += n
        return list(range(self.count - n, self.count))

    def _add(self, primitive, params, ins, n_out, ctx=None) -> list[int]:
        outs = self._fresh(n_out)
        self.eqns.append(_Eqn(primitive, params, ins, outs, ctx))
        return outs

    def _inline(self, closed, ins: list) -> list:
        jaxpr = closed.jaxpr
        env = {**{v: _Known(c) for v, c in zip(jaxpr.constvars, closed.consts)}, **dict(zip(jaxpr.invars, ins))}

        def read(atom):
            return _Known(atom.val) if isinstance(atom, core.Literal) else env[atom]

        for eqn in jaxpr.eqns:
            args, name = [read(a) for a in eqn.invars], eqn.primitive.name
            if name in _CALLS and "jaxpr" in eqn.params and _draws(eqn.params["jaxpr"].jaxpr):
                outs = self._inline(eqn.params["jaxpr"], args)
            elif name in _KEY_PRIMITIVES and _is_threefry_key(eqn.invars[0].aval):
                keys = eqn.invars[0].aval
                impl = _key_implementation(eqn)
                data = self._add(prng.random_unwrap_p, {}, args[:1], 1)
                outs = self._inline(impl, data + args[1:])
                if name != "random_bits":  # new keys
                    outs = self._add(prng.random_wrap_p, {"impl": keys.dtype._impl}, outs, 1)
            else:
                outs = self._add(eqn.primitive, eqn.params, args, len(eqn.outvars), eqn.ctx)
            env.update(zip(eqn.outvars, outs))
        return [read(a) for a in jaxpr.outvars]

    def levels(self) -> dict[int, list[_Eqn]]:
        """Equations by level: the number of hashes on the longest path to their inputs. The
        hashes of one level do not depend on each other."""
        depth: dict[int, int] = {}
        by_level: dict[int, list[_Eqn]] = {}
        for eqn in self.eqns:
            level = max((depth.get(i, 0) for i in eqn.ins if not isinstance(i, _Known)), default=0)
            for o in eqn.outs:
                depth[o] = level + (eqn.primitive is THREEFRY)
            by_level.setdefault(level, []).append(eqn)
        return by_level


def _hash_once(k1, k2, x1, x2):
    """threefry2x32 of flat operands inside a loop that runs once. XLA cannot count its trips,
    so the hash is computed once into memory; otherwise XLA fuses it into every consumer of
    its slices and compiles one copy per call site again. Its two words are written as one
    array, so one kernel computes both."""
    def body(state):
        return jnp.bool_(True), jnp.stack(THREEFRY.bind(k1, k2, x1, x2))

    _, y = jax.lax.while_loop(lambda state: ~state[0], body,
                              (jnp.bool_(False), jnp.zeros((2, *x1.shape), jnp.uint32)))
    return y[0], y[1]


def _hash_level(eqns: list[_Eqn], value: Callable) -> dict[int, Any]:
    """The outputs of the threefry equations of one level: those that share their leading
    dimension (the run axis of a group, kept whole so its sharding survives) hashed in one
    call of `_hash_once`; empty ones and those above MERGE_MAX_ELEMENTS as they were."""
    out: dict[int, Any] = {}
    together: dict[Any, list] = {}
    for eqn in eqns:
        shape = tuple(np.broadcast_shapes(*(np.shape(value(i)) for i in eqn.ins)))
        if not 0 < math.prod(shape) <= MERGE_MAX_ELEMENTS:  # an empty draw has nothing to merge
            out.update(zip(eqn.outs, THREEFRY.bind(*(value(i) for i in eqn.ins))))
        else:
            together.setdefault(shape[:1], []).append((eqn, shape))
    for lead, members in together.items():
        flat = [jnp.concatenate([jnp.broadcast_to(value(eqn.ins[j]), shape).reshape(*lead, -1)
                                 for eqn, shape in members], axis=-1) for j in range(4)]
        hashed = _hash_once(*flat)
        cuts = np.cumsum([math.prod(shape[len(lead):]) for _, shape in members])[:-1]
        parts = [jnp.split(y, cuts, axis=-1) for y in hashed]
        for i, (eqn, shape) in enumerate(members):
            out.update(zip(eqn.outs, (parts[0][i].reshape(shape), parts[1][i].reshape(shape))))
    return out


def _evaluate(flat: _Flat, args: list) -> list:
    values = dict(zip(flat.inputs, args))

    def value(i):
        return i.value if isinstance(i, _Known) else values[i]

    for level, eqns in sorted(flat.levels().items()):
        hashes = []
        for eqn in eqns:
            if eqn.primitive is THREEFRY:
                hashes.append(eqn)
                continue
            params = eqn.primitive.get_bind_params(eqn.params)
            with eqn.ctx.manager if eqn.ctx is not None else contextlib.nullcontext():
                result = eqn.primitive.bind(*(value(i) for i in eqn.ins), **params)
            values.update(zip(eqn.outs, result if eqn.primitive.multiple_results else [result]))
        values.update(_hash_level(hashes, value))
    return [value(i) for i in flat.outputs]


def merged_draws(fn: Callable) -> Callable:
    """`fn` with its threefry calls merged: traced to a jaxpr, then re-evaluated with the
    hashes that do not depend on each other computed in one call per level. The random bits are
    identical (threefry hashes every element on its own); floats made from them may differ in
    the last bit where XLA now fuses their arithmetic differently, as between compile tiers.
    XLA compiles a few copies of the hash instead of one per call site: the smoke figures
    compile in 38% less time (126 → 78 s in one process).
    Calls inside loops and conditionals stay as they are; off CPU (where a hash compiles to one
    kernel) and without JAX's internals nothing changes.

    Example:
        >>> draw = lambda key: (jax.random.normal(key, (3,)), jax.random.bits(key, (2,)))
        >>> merged, plain = jax.jit(merged_draws(draw))(jax.random.key(0)), jax.jit(draw)(jax.random.key(0))
        >>> bool((merged[1] == plain[1]).all())       # the bits of the unmerged function
        True
    """
    if THREEFRY is None or not hasattr(THREEFRY, "bind"):
        return fn

    @functools.wraps(fn)
    def merged(*args):
        if jax.default_backend() != "cpu":
            return fn(*args)
        closed, shapes = jax.make_jaxpr(fn, return_shape=True)(*args)
        if closed.effects or not _draws(closed.jaxpr):
            outs = core.eval_jaxpr(closed.jaxpr, closed.consts, *jax.tree.leaves(args))
        else:
            outs = _evaluate(_Flat(closed), jax.tree.leaves(args))
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)

    return merged
