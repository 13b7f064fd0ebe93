"""Optimizers' parameter groups, learning-rate multipliers, the L1 penalty and gradient clipping."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlcli.config.compose import compose
from dlcli.errors import DlcliError
from dlcli.optim import build_optimizer, param_groups
from dlcli.training.module import TaskModule


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))


def test_groups_by_multiplier_and_decay():
    model = net()
    groups = param_groups(model.named_parameters(), lr=0.1, weight_decay=0.01,
                          multipliers={"0.*": 0.5, "*.weight": 2.0}, decay_bias_and_norm=False)
    by_name = {id(p): n for n, p in model.named_parameters()}
    summary = sorted((sorted(by_name[id(p)] for p in g["params"]), g.get("lr"), g.get("weight_decay"))
                     for g in groups)
    assert summary == [
        (["0.bias"], 0.05, 0.0),  # first matching pattern wins; 1-D: no decay
        (["0.weight"], 0.05, None),  # None: the optimizer's own value
        (["1.bias", "2.bias"], None, 0.0),  # the LayerNorm shift and the biases
        (["1.weight"], 0.2, 0.0),  # the LayerNorm scale: *.weight, but 1-D
        (["2.weight"], 0.2, None),
    ]


def test_a_pattern_that_matches_nothing_is_an_error():
    with pytest.raises(DlcliError, match="pattern\\(s\\) 'encoder.\\*' match no parameter. Parameter names look "
                                         "like: 0.weight, 0.bias"):
        param_groups(net().named_parameters(), 0.1, 0.0, {"encoder.*": 0.1}, True)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "radam"])
def test_zero_lr_group_is_frozen_while_the_rest_moves(name):
    model = net()
    node = {"name": name, "param_groups": {"0.*": 0.0}, "weight_decay": 0.1, "decay_bias_and_norm": True}
    opt = build_optimizer(node, model.named_parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    after = dict(model.named_parameters())
    assert torch.equal(before["0.weight"], after["0.weight"]) and torch.equal(before["0.bias"], after["0.bias"])
    assert not torch.equal(before["2.weight"], after["2.weight"])


def test_param_groups_from_the_command_line():
    cfg = compose(["model=perceptron", "optimizer.param_groups={1.*:0.1}",
                   "optimizer.decay_bias_and_norm=false"]).config
    assert cfg["optimizer"]["param_groups"] == {"1.*": 0.1}
    assert cfg["optimizer"]["decay_bias_and_norm"] is False


def _module(l1=0.0, lr=1.0, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    return TaskModule(model, nn.CrossEntropyLoss(), "multiclass", 2,
                      make_optimizer=lambda named: torch.optim.SGD([p for _, p in named], lr=lr),
                      make_scheduler=lambda opt: None, l1=l1, **kwargs)


def test_l1_penalty_adds_l1_times_sign_of_the_weights_to_the_gradient():
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    grads = {}
    for l1 in (0.0, 0.3):
        m = _module(l1)
        m.log = lambda *a, **k: None  # no trainer attached
        m.training_step((x, y), 0).backward()
        grads[l1] = {n: p.grad.clone() for n, p in m.model.named_parameters()}
    w = _module().model[0].weight.detach()
    assert torch.allclose(grads[0.3]["0.weight"] - grads[0.0]["0.weight"], 0.3 * torch.sign(w), atol=1e-6)
    assert torch.allclose(grads[0.3]["0.bias"], grads[0.0]["0.bias"])  # biases carry no penalty


@pytest.mark.parametrize(("algorithm", "clip"), [("norm", 0.01), ("value", 0.001)])
def test_gradient_clipping_bounds_the_update(algorithm, clip):
    module = _module(lr=1.0, clip_val=clip, clip_algorithm=algorithm)  # trainer.gradient_clip_* in a config
    before = [p.detach().clone() for p in module.model.parameters()]
    data = DataLoader(TensorDataset(torch.randn(8, 3) * 10, torch.tensor([0, 1] * 4)), batch_size=8)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu")
    trainer.fit(module, train_dataloaders=data)
    step = torch.cat([(p.detach() - b).flatten() for p, b in zip(module.model.parameters(), before, strict=True)])
    if algorithm == "norm":  # plain SGD at lr 1: the step is minus the clipped gradient
        assert step.norm().item() == pytest.approx(clip, rel=1e-3)
    else:
        assert step.abs().max().item() == pytest.approx(clip, rel=1e-3)
