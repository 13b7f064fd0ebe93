"""Augmentation: every op changes training batches as declared, and nothing else is touched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlcli.config.validate import ConfigError
from dlcli.errors import DlcliError
from dlcli.registry import AUG_OPS, AUGMENTATIONS, load_components
from dlcli.training.module import TaskModule

load_components()
IMAGE_OPS = [e.name for e in AUG_OPS if e.name not in ("mixup", "cutmix")]


def pipeline(ops, task="multiclass", in_shape=(3, 12, 12), **kw):
    return AUGMENTATIONS.get("pipeline").build({"ops": ops, **kw}, in_shape=in_shape, num_classes=4, task=task)


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_image_op_changes_the_batch_with_p1_and_not_with_p0(name):
    torch.manual_seed(0)
    x, y = torch.rand(6, 3, 12, 12), torch.tensor([0, 1, 2, 3, 0, 1])
    changed, labels = pipeline([{name: {"p": 1.0}}])(x, y)
    assert changed.shape == x.shape and not torch.allclose(changed, x)
    assert torch.equal(labels, y)  # image ops leave the targets alone
    same, _ = pipeline([{name: {"p": 0.0}}])(x, y)
    assert torch.equal(same, x)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixers_make_soft_targets_that_cross_entropy_consumes(name):
    torch.manual_seed(1)
    x, y = torch.rand(8, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    mixed, soft = pipeline([{name: {"p": 1.0}}], in_shape=(1, 8, 8))(x, y)
    assert mixed.shape == x.shape and not torch.allclose(mixed, x)
    assert soft.shape == (8, 4) and torch.allclose(soft.sum(1), torch.ones(8))
    assert (soft.max(1).values < 1).any()  # some targets really are mixtures
    logits = torch.randn(8, 4, requires_grad=True)
    loss = nn.CrossEntropyLoss()(logits, soft)
    loss.backward()
    expected = -(soft * torch.log_softmax(logits, 1)).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logits.grad is not None


def test_mixing_switches_off_for_the_last_epochs():
    aug = pipeline([{"mixup": {"p": 1.0}}], in_shape=(1, 8, 8), mix_off_last_epochs=2)
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    aug.set_epoch(7, max_epochs=10)
    assert aug(x, y)[1].shape == (4, 4)  # still mixing
    aug.set_epoch(8, max_epochs=10)
    out, labels = aug(x, y)
    assert torch.equal(out, x) and torch.equal(labels, y)


class Spy(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, y):
        self.calls += 1
        return x + 1, y


def test_only_training_batches_are_augmented():
    spy = Spy()
    module = TaskModule(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), nn.CrossEntropyLoss(), "multiclass", 2,
                        make_optimizer=lambda named: None, make_scheduler=lambda opt: None, augment=spy)
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached
    batch = (torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0]))
    module.validation_step(batch, 0)
    module.test_step(batch, 0)
    assert spy.calls == 0
    module.training_step(batch, 0)
    assert spy.calls == 1


def test_pipeline_errors():
    with pytest.raises(DlcliError, match=r"augmentation.ops\[0\]: unknown augmentation op 'rotate'. Did you mean "
                                         r"'rotation'\?"):
        pipeline(["rotate"])
    with pytest.raises(ConfigError, match=r"augmentation.ops\[0\].degree: unknown key"):
        pipeline([{"rotation": {"degree": 3}}])
    with pytest.raises(DlcliError, match="'hue' needs RGB images, got 1 channel"):
        pipeline(["hue"], in_shape=(1, 8, 8))
    with pytest.raises(DlcliError, match="mixup mixes class targets; this is a regression task"):
        pipeline(["mixup"], task="regression")
    with pytest.raises(DlcliError, match="needs images"):
        pipeline(["hflip"], in_shape=(5,))


@pytest.mark.slow
def test_standard_preset_trains_the_digits_cnn(make_config):
    from dlcli.training.train import train

    composed = make_config("experiment=digits_cnn", "augmentation=standard", "trainer.max_epochs=8")
    result = train(composed.config, composed.overrides)
    assert composed.config["augmentation"]["name"] == "pipeline"
    assert result.metrics["test/acc"] > 0.9
