"""Tests of ldm_core.models.encoders: shapes, dropout only in training, init, errors, determinism."""

import pytest
import torch
from torch import nn

from ldm_core.models import count_parameters
from ldm_core.models.encoders import BrainAwareEncoder, OriginalMLPEncoder, RegularisedMLPEncoder

V = 37  # small voxel count, not divisible by the token counts used below
B = 3


def _encoders():
    return [
        OriginalMLPEncoder(V, hidden=(16, 12, 8), out_dim=10),
        RegularisedMLPEncoder(V, hidden=(16,), out_dim=10, dropout=0.2),
        RegularisedMLPEncoder(V, hidden=(), out_dim=10),
        BrainAwareEncoder(V, n_tokens=4, dim=16, depth=1, heads=2, out_dim=10),
    ]


# contract

@pytest.mark.parametrize("index", range(4))
def test_forward_shape_and_attributes(index):
    enc = _encoders()[index]
    tokens = enc(torch.randn(B, V))
    assert tokens.shape == (B, enc.n_tokens, enc.out_dim)
    assert enc.out_dim == 10
    assert enc.n_tokens == (4 if isinstance(enc, BrainAwareEncoder) else 1)


@pytest.mark.parametrize("index", range(4))
def test_eval_mode_is_deterministic(index):
    enc = _encoders()[index].eval()
    x = torch.randn(B, V)
    assert torch.equal(enc(x), enc(x))


@pytest.mark.parametrize("index", range(4))
def test_same_seed_same_parameters_and_outputs(index):
    torch.manual_seed(0)
    a = _encoders()[index].eval()
    torch.manual_seed(0)
    b = _encoders()[index].eval()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x = torch.randn(B, V)
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("index", range(4))
def test_wrong_voxel_count_raises(index):
    enc = _encoders()[index]
    with pytest.raises(ValueError, match=rf"\(B, {V}\).*got \(3, 5\)"):
        enc(torch.randn(B, 5))


# original encoder

def test_original_layout_and_parameter_count():
    enc = OriginalMLPEncoder(3092)
    widths = [m.out_features for m in enc.modules() if isinstance(m, nn.Linear)]
    assert widths == [1024, 768, 512, 512]
    assert sum(isinstance(m, nn.LayerNorm) for m in enc.modules()) == 3
    assert sum(isinstance(m, nn.GELU) for m in enc.modules()) == 3
    assert [m.p for m in enc.modules() if isinstance(m, nn.Dropout)] == [0.1] * 3
    linear = 3092 * 1024 + 1024 + 1024 * 768 + 768 + 768 * 512 + 512 + 512 * 512 + 512
    layernorm = 2 * (1024 + 768 + 512)
    assert count_parameters(enc) == linear + layernorm


def test_original_init_xavier_uniform_zero_bias():
    enc = OriginalMLPEncoder(V, hidden=(16,), out_dim=8)
    first = enc.net[0]
    bound = (6 / (V + 16)) ** 0.5
    assert first.weight.abs().max() <= bound
    assert torch.count_nonzero(first.bias) == 0


# regularised encoder

def test_regularised_hidden_dropout_only_in_training():
    x = torch.randn(B, V)
    enc = RegularisedMLPEncoder(V, hidden=(16,), out_dim=8, dropout=0.5).train()
    assert not torch.equal(enc(x), enc(x))
    enc.eval()
    assert torch.equal(enc(x), enc(x))


def test_regularised_adds_no_input_noise_or_voxel_dropout():
    """fMRI augmentation is TrainConfig's (fmri_noise, voxel_dropout), applied by the trainer, not here."""
    enc = RegularisedMLPEncoder(V, hidden=(16,), out_dim=8, dropout=0.0).train()
    x = torch.randn(B, V)
    assert torch.equal(enc(x), enc(x))
    with pytest.raises(TypeError):
        RegularisedMLPEncoder(V, input_noise=0.1)
    assert [m.p for m in enc.modules() if isinstance(m, nn.Dropout)] == [0.0]  # the hidden block's only


# brain-aware encoder

def test_brain_aware_groups_and_padding():
    enc = BrainAwareEncoder(V, n_tokens=4, dim=8, depth=1, heads=2, out_dim=6)
    assert enc.group_size == 10 and enc.n_pad == 3  # 37 voxels -> 4 groups of 10, 3 zeros
    exact = BrainAwareEncoder(40, n_tokens=4, dim=8, depth=1, heads=2, out_dim=6)
    assert exact.n_pad == 0


def test_brain_aware_token_sees_only_its_group():
    enc = BrainAwareEncoder(V, n_tokens=4, dim=8, depth=1, heads=2, out_dim=6).eval()
    enc.layers = nn.ModuleList()  # no attention: token k then depends on group k only
    x = torch.randn(1, V, requires_grad=True)
    enc(x)[0, 0].sum().backward()
    assert torch.count_nonzero(x.grad[0, 10:]) == 0
    assert torch.count_nonzero(x.grad[0, :10]) > 0


def test_brain_aware_docstring_states_data_limits():
    doc = BrainAwareEncoder.__doc__
    assert "no voxel coordinates" in doc
    assert "no time series" in doc


# errors

@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: OriginalMLPEncoder(0), "n_voxels must be a positive int, got 0"),
        (lambda: OriginalMLPEncoder(V, out_dim=-1), "out_dim must be a positive int, got -1"),
        (lambda: OriginalMLPEncoder(V, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (lambda: OriginalMLPEncoder(V, hidden=(8, 0)), r"hidden must be a sequence of positive ints, got \(8, 0\)"),
        (lambda: RegularisedMLPEncoder(V, dropout=1.5), r"dropout must be in \[0, 1\)"),
        (lambda: BrainAwareEncoder(V, n_tokens=38), r"n_tokens \(38\) must be <= n_voxels \(37\)"),
        (lambda: BrainAwareEncoder(V, dim=10, heads=4), r"dim \(10\) must be divisible by heads \(4\)"),
        (lambda: BrainAwareEncoder(V, depth=0), "depth must be a positive int, got 0"),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
