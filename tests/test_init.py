"""The numpy emulation of torch's CPU generator, checked bit for bit against torch itself."""

import numpy as np
import pytest

from attncli.init import TorchCPUGenerator

torch = pytest.importorskip("torch", reason="torch is the reference for seeded parameters")

SEEDS = [0, 1, 42, 123, 789, 2**31 + 5, 2**32 + 7, 2**63 - 1]
SHAPES = [(3, 2), (1, 1), (6, 4), (17, 5), (64, 64), (768, 64)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_rand_matches_torch_bit_for_bit(seed, shape):
    torch.manual_seed(seed)
    expected = torch.rand(*shape).numpy()
    got = TorchCPUGenerator(seed).rand(*shape)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", SEEDS[:5])
@pytest.mark.parametrize(("fan_in", "fan_out"), [(3, 2), (8, 4), (5, 7), (768, 64), (1, 1)])
def test_linear_layers_in_sequence_match_torch(seed, fan_in, fan_out):
    torch.manual_seed(seed)
    a = torch.nn.Linear(fan_in, fan_out)
    b = torch.nn.Linear(fan_in, fan_out, bias=False)
    c = torch.nn.Linear(fan_out, fan_out)
    gen = TorchCPUGenerator(seed)
    for layer, bias in ((a, True), (b, False), (c, True)):
        weight, got_bias = gen.linear(layer.in_features, layer.out_features, bias)
        np.testing.assert_array_equal(weight, layer.weight.detach().numpy())
        if bias:
            np.testing.assert_array_equal(got_bias, layer.bias.detach().numpy())
        else:
            assert got_bias is None


def test_uniform_matches_torch_uniform_():
    torch.manual_seed(5)
    expected = torch.empty(300).uniform_(-0.37, 1.9).numpy()
    np.testing.assert_array_equal(TorchCPUGenerator(5).uniform((300,), -0.37, 1.9), expected)


def test_different_seeds_give_different_streams():
    assert not np.array_equal(TorchCPUGenerator(1).rand(4), TorchCPUGenerator(2).rand(4))
