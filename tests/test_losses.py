"""Each loss computes what its name says, checked against formulas on small tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlcli.registry import LOSSES, load_components

load_components()
torch.manual_seed(0)
LOGITS = torch.randn(5, 3)
IDS = torch.tensor([0, 2, 1, 1, 0])


def loss(name, **params):
    return LOSSES.get(name).build(params)


def test_cross_entropy_sparse_categorical_and_weights():
    assert loss("cross_entropy")(LOGITS, IDS) == pytest.approx(F.cross_entropy(LOGITS, IDS).item())
    onehot = F.one_hot(IDS, 3).float()  # categorical targets give the same value
    assert loss("cross_entropy")(LOGITS, onehot).item() == pytest.approx(F.cross_entropy(LOGITS, IDS).item())
    weighted = loss("cross_entropy", class_weights=[1.0, 0.0, 0.0])(LOGITS, IDS)  # only class 0 counts
    mask = IDS == 0
    assert weighted.item() == pytest.approx(F.cross_entropy(LOGITS[mask], IDS[mask]).item(), rel=1e-5)
    smooth = loss("cross_entropy", label_smoothing=0.3)(LOGITS, IDS)
    target = onehot * 0.7 + 0.1  # 0.3 spread over 3 classes
    assert smooth.item() == pytest.approx(-(target * F.log_softmax(LOGITS, -1)).sum(-1).mean().item(), rel=1e-5)


def test_nll_and_kl_div_match_cross_entropy_for_class_ids():
    ce = F.cross_entropy(LOGITS, IDS).item()
    assert loss("nll")(LOGITS, IDS).item() == pytest.approx(ce, rel=1e-6)
    assert loss("kl_div")(LOGITS, IDS).item() == pytest.approx(ce, rel=1e-5)  # one-hot targets: entropy 0
    soft = torch.softmax(torch.randn(5, 3), -1)
    expected = (soft * (soft.log() - F.log_softmax(LOGITS, -1))).sum(-1).mean()
    assert loss("kl_div")(LOGITS, soft).item() == pytest.approx(expected.item(), rel=1e-5)


def test_focal_loss():
    assert loss("focal", gamma=0.0)(LOGITS, IDS).item() == pytest.approx(F.cross_entropy(LOGITS, IDS).item(),
                                                                          rel=1e-6)
    p = torch.softmax(LOGITS, -1)[torch.arange(5), IDS]
    expected = (-(1 - p) ** 2 * p.log()).mean()
    assert loss("focal", gamma=2.0)(LOGITS, IDS).item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss("focal")(LOGITS, IDS) < F.cross_entropy(LOGITS, IDS)  # easy examples are down-weighted


def test_hinge_binary_and_multiclass():
    logits, y = torch.tensor([2.0, 0.5, -1.0, -0.2]), torch.tensor([1.0, 1.0, 0.0, 1.0])
    # t = [1, 1, -1, 1]: max(0, 1 - t*z) = [0, 0.5, 0, 1.2]
    assert loss("hinge")(logits, y).item() == pytest.approx((0 + 0.5 + 0 + 1.2) / 4)
    assert loss("hinge")(LOGITS, IDS).item() == pytest.approx(F.multi_margin_loss(LOGITS, IDS).item())


def test_regression_losses():
    pred, target = torch.tensor([0.0, 0.5, 3.0]), torch.tensor([0.0, 0.0, 0.0])
    assert loss("mse")(pred, target).item() == pytest.approx((0.25 + 9) / 3)
    assert loss("mae")(pred, target).item() == pytest.approx(3.5 / 3)
    # huber, delta 1: 0.5 e^2 below 1, delta * (|e| - 0.5 delta) above
    assert loss("huber")(pred, target).item() == pytest.approx((0 + 0.125 + 2.5) / 3)
    # smooth_l1, beta 2: 0.5 e^2 / beta below beta, |e| - 0.5 beta above
    assert loss("smooth_l1", beta=2.0)(pred, target).item() == pytest.approx((0 + 0.0625 + 2.0) / 3)


def test_huber_trains_on_diabetes(make_config):
    from dlcli.training.train import train

    composed = make_config("data=diabetes", "loss=huber")
    result = train(composed.config, composed.overrides)
    assert result.metrics["test/r2"] > 0.3
