"""`SparseMLP` scaling and config edges: B alone on teachers whose biases vanish, and explicit
address bits of dense_weight."""

import jax
import numpy as np
import pytest

from sparselearn.errors import ConfigError
from sparselearn.targets.sparse_mlp import SparseMLP


@pytest.mark.parametrize("fields", [
    dict(n=8, s=4, k=2, construction="junta"),                   # 1 address bit: units relu(±x_j), bias 0
    dict(n=1, s=4, k=1, construction="random"),                  # codewords ±1 with radius 1: bias 0
    dict(n=10, s=8, k=8, construction="biased", active=0.5),     # median cut of a symmetric law: bias 0
])
def test_b_alone_on_a_zero_bias_construction_is_a_config_error(fields):
    b = np.asarray(SparseMLP(W=1.0, **fields).init(jax.random.key(0))["b"])
    assert np.all(b == 0)
    with pytest.raises(ConfigError) as err:
        SparseMLP(B=1.0, **fields)
    assert err.value.key == "B"


def test_b_alone_on_random_pairs_of_odd_codewords_is_a_config_error():
    """Two codewords of odd length per group are antipodal with probability 1/7: all biases 0, and
    B alone would scale them to infinity (NaN labels on about one seed in seven)."""
    with pytest.raises(ConfigError) as err:
        SparseMLP(n=6, s=2, k=1, construction="random", bits=3, B=1.0)
    assert err.value.key == "B"
    both = SparseMLP(n=6, s=2, k=1, construction="random", bits=3, B=1.0, W=1.0)    # then W sets the scale
    assert both.norms(both.init(jax.random.key(2)))["W"] == pytest.approx(1.0, rel=1e-5)


def test_dense_weight_bits_equal_to_n_is_a_config_error():
    assert SparseMLP(n=4, s=32, k=1, construction="dense_weight", bits=3).layout.bits == 3
    with pytest.raises(ConfigError) as err:
        SparseMLP(n=4, s=32, k=1, construction="dense_weight", bits=4)    # no dense coordinates left
    assert err.value.key == "bits"
