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


@pytest.mark.slow
def test_huber_trains_on_diabetes(make_config):
    from dlcli.training.train import train

    composed = make_config("data=diabetes", "loss=huber")
    result = train(composed.config, composed.overrides)
    assert result.metrics["test/r2"] > 0.3


def test_batch_hard_triplet_on_a_hand_made_batch():
    # unit vectors at angles 0, 10 deg (class 0) and 90, 100 deg (class 1)
    angles = torch.tensor([0.0, 10.0, 90.0, 100.0]).deg2rad()
    emb = torch.stack([angles.cos(), angles.sin()], 1)
    labels = torch.tensor([0, 0, 1, 1])
    chord = lambda deg: 2 * torch.sin(torch.tensor(deg).deg2rad() / 2)  # noqa: E731  distance of unit vectors
    # hardest positive: always 10 deg away; nearest negative: 90 deg for the outer anchors (0, 100 deg),
    # 80 deg for the inner ones (10, 90 deg)
    expected = ((torch.relu(chord(10.0) - chord(90.0) + 1.5) + torch.relu(chord(10.0) - chord(80.0) + 1.5)) / 2).item()
    assert loss("triplet", margin=1.5)(emb, labels).item() == pytest.approx(expected, rel=1e-5)
    assert loss("triplet", margin=0.2)(emb, labels).item() == 0.0  # already separated by more than 0.2


def test_cosine_embedding_over_pairs():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # same-class pair: 1 - cos = 0; other-class pairs: cos 0 -> max(0, 0 - margin) = 0 (x4 ordered pairs)
    assert loss("cosine_embedding")(emb, labels).item() == pytest.approx(0.0, abs=1e-6)
    flipped = torch.tensor([0, 1, 1])  # the identical pair now counts as different classes: cos 1 - 0.5
    assert loss("cosine_embedding", margin=0.5)(emb, flipped).item() == pytest.approx(2 * 0.5 / 6 + 2 * 1 / 6)


def test_recall_at_one():
    from dlcli.nets.metrics import RecallAtOne

    metric = RecallAtOne()
    metric.update(torch.tensor([[1.0, 0.0], [0.9, 0.1]]), torch.tensor([0, 0]))
    metric.update(torch.tensor([[0.0, 1.0], [0.8, 0.2]]), torch.tensor([1, 1]))  # the last one sits with class 0
    # 0 and 1 find each other; 2's nearest is 3 (same class); 3's nearest is 1 (class 0)
    assert metric.compute().item() == pytest.approx(3 / 4)


def test_triplet_metric_learning_on_digits(make_config):
    from dlcli.training.train import train

    composed = make_config("experiment=digits_triplet", "trainer.max_epochs=15")
    result = train(composed.config, composed.overrides)
    assert result.summary["task"] == "metric_learning" and result.best["monitor"] == "val/recall_at_1"
    assert result.metrics["test/recall_at_1"] >= 0.9
