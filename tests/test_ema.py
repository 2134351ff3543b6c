"""Tests of ldm_core.ema: the moving average, the weight swap, saving and loading."""
import pytest
import torch
from torch import nn

from ldm_core.ema import EMA


def test_ema_average_and_swap():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = EMA(lin, decay=0.75)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    ema.update()  # 0.75 * 1 + 0.25 * 3
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 1.5))
    with ema.swapped():
        assert torch.allclose(lin.weight, torch.full((1, 2), 1.5))
    assert torch.allclose(lin.weight, torch.full((1, 2), 3.0))
    with pytest.raises(ValueError, match="EMA state lacks 1 parameter"):
        ema.load_state_dict({})


def test_ema_skips_frozen_parameters_and_round_trips():
    lin = nn.Linear(2, 1)
    lin.bias.requires_grad_(False)
    ema = EMA(lin, decay=0.5)
    assert list(ema.shadow) == ["weight"]
    saved = ema.state_dict()
    with torch.no_grad():
        lin.weight.add_(2.0)
    ema.update()
    other = EMA(lin, decay=0.5)
    other.load_state_dict(saved)
    assert torch.equal(other.shadow["weight"], saved["weight"]) and not torch.equal(ema.shadow["weight"], saved["weight"])
    ema.copy_to_module()
    assert torch.equal(lin.weight, ema.shadow["weight"])


def test_swap_restores_weights_after_an_exception():
    lin = nn.Linear(2, 1, bias=False)
    ema = EMA(lin, decay=0.5)
    with torch.no_grad():
        lin.weight.fill_(4.0)
    with pytest.raises(RuntimeError), ema.swapped():
        raise RuntimeError("validation failed")
    assert torch.equal(lin.weight, torch.full((1, 2), 4.0))
