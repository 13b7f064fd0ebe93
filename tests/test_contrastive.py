"""Self-supervised contrastive pretraining: the NT-Xent loss, two views per image, no labels in training."""

from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from dlcli.errors import DlcliError
from dlcli.nets.losses import NTXent
from dlcli.registry import AUGMENTATIONS, load_components
from dlcli.training.build import build_run, load_data
from dlcli.training.train import train

load_components()


def test_nt_xent_matches_a_hand_computation():
    # views e1, e2 | e1, e2: each row's positive has cosine 1, its two negatives cosine 0, so every row gives
    # -log(e^(1/t) / (e^(1/t) + 2 e^0)) = log(1 + 2 e^(-1/t))
    eye = torch.eye(2)
    assert NTXent(0.5)(eye, eye).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)


def test_nt_xent_matches_a_loop_over_rows_and_is_symmetric_and_scale_free():
    torch.manual_seed(0)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    z = torch.nn.functional.normalize(torch.cat([a, b]), dim=-1)
    rows = []
    for i in range(10):  # the positive of i is the other view of the same image, i +- 5
        logits = [float(z[i] @ z[k]) / 0.3 for k in range(10) if k != i]
        pos = float(z[i] @ z[(i + 5) % 10]) / 0.3
        rows.append(-pos + math.log(sum(math.exp(v) for v in logits)))
    loss = NTXent(0.3)
    assert loss(a, b).item() == pytest.approx(sum(rows) / 10, rel=1e-5)
    assert loss(b, a).item() == pytest.approx(loss(a, b).item(), rel=1e-6)  # the views' order does not matter
    assert loss(3 * a, b).item() == pytest.approx(loss(a, b).item(), rel=1e-5)  # L2-normalised: cosine only


def test_matching_views_give_a_lower_loss_than_mismatched_ones():
    views = torch.eye(8)[:6]  # six distinct directions
    loss = NTXent(0.5)
    matched = loss(views, views).item()
    mismatched = loss(views, views.roll(1, 0)).item()  # each image paired with another's view
    assert matched < mismatched
    assert matched < math.log(2 * 6 - 1)  # below chance: the positive picked out among the 11 others


def test_auto_task_with_nt_xent_is_contrastive_with_an_embedding_output(make_config):
    prepared = load_data(make_config("loss=nt_xent").config)
    assert prepared.task == "contrastive" and prepared.out_features == 64
    with pytest.raises(DlcliError, match="does not fit a contrastive task .* Use loss=nt_xent"):
        load_data(make_config("task=contrastive").config)


def contrastive_module(make_config, *overrides: str):
    import pytorch_lightning as pl

    from dlcli.config.validate import validate

    pl.seed_everything(0, verbose=False)
    prepared, _, module = build_run(validate(make_config("experiment=digits_contrastive", *overrides).config))
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached
    x, y = (torch.from_numpy(a) for a in prepared.splits["train"])
    return module, x[:32], y[:32]


def test_training_never_reads_the_labels(make_config):
    module, x, y = contrastive_module(make_config)
    losses = []
    for labels in (y, y[torch.randperm(len(y))], None):  # true, shuffled, none at all
        torch.manual_seed(1)
        losses.append(module.training_step((x, labels), 0))
    assert losses[0].item() == losses[1].item() == losses[2].item()


def test_two_views_differ_from_each_other_and_from_the_input_also_in_evaluation(make_config):
    module, x, _ = contrastive_module(make_config)
    for training in (True, False):  # validation and test loss need views too
        module.train(training)
        (v1, _), (v2, _) = module.augment(x, None), module.augment(x, None)
        assert v1.shape == v2.shape == x.shape
        assert not torch.allclose(v1, v2) and not torch.allclose(v1, x) and not torch.allclose(v2, x)
    # evaluation views are seeded: the same each epoch, and the training random stream is left alone
    torch.manual_seed(2)
    first = module.spec.views_loss(module, x, seed=0)
    after = torch.rand(())
    torch.manual_seed(2)
    assert module.spec.views_loss(module, x, seed=0).item() == first.item() and torch.rand(()).item() == after.item()
    assert module.spec.views_loss(module, x, seed=1).item() != first.item()


def test_contrastive_needs_an_image_augmentation_without_mixing(make_config, tmp_path):
    from dlcli.cli import app

    result = CliRunner().invoke(app, ["train", "loss=nt_xent", "model=cnn", f"output_dir={tmp_path / 'o'}"])
    assert result.exit_code == 2, result.output
    assert "task=contrastive learns from two augmented views of each image: choose an augmentation, e.g. " \
           "augmentation=standard" in result.stderr.replace("\n", " ")
    assert not (tmp_path / "o").exists()  # refused before training (augmentation=none is the default)

    def pipeline(ops):
        return AUGMENTATIONS.get("pipeline").build({"ops": ops}, in_shape=(1, 8, 8), num_classes=10,
                                                   task="contrastive")

    with pytest.raises(DlcliError, match=r"augmentation.ops\[1\]: mixup blends two images into one"):
        pipeline(["affine", "mixup"])
    with pytest.raises(DlcliError, match="no image ops. task=contrastive learns from two augmented views"):
        pipeline([])


@pytest.mark.slow
def test_digits_contrastive_learns_an_embedding_without_labels(make_config):
    import csv

    import pytorch_lightning as pl

    from dlcli.config.validate import validate
    from dlcli.nets.metrics import RecallAtOne

    composed = make_config("experiment=digits_contrastive", "trainer.max_epochs=5")
    pl.seed_everything(composed.config["seed"], verbose=False)  # the same initial weights as the run's
    prepared, _, module = build_run(validate(composed.config))
    x, y = (torch.from_numpy(a) for a in prepared.splits["val"])
    untrained = RecallAtOne()
    with torch.no_grad():
        untrained.update(module.eval()(x), y)

    result = train(composed.config, composed.overrides)
    assert result.summary["task"] == "contrastive" and result.best["monitor"] == "val/loss"
    # measured after 5 epochs: 0.90 (seeds 42, 1), 0.91 (seed 0); untrained 0.84
    assert result.metrics["val/recall_at_1"] >= 0.87
    assert result.metrics["val/recall_at_1"] > untrained.compute().item() + 0.03
    val_losses = [float(r["val/loss"]) for r in csv.DictReader((result.run_dir / "metrics.csv").open())
                  if r.get("val/loss")]
    assert val_losses[-1] < val_losses[0] - 0.3


def run(make_config, *overrides: str):
    composed = make_config(*overrides)
    return train(composed.config, composed.overrides)


def test_fine_tuning_from_a_contrastive_run_reinitialises_the_projection_head(make_config):
    source = run(make_config, "experiment=digits_contrastive", "trainer.max_epochs=1",
              "trainer.limit_train_batches=2", "trainer.limit_val_batches=1")
    # the pretraining run's network (digits_contrastive: a gap head, no dropout), so every tensor but the last fits
    tuned = run(make_config, "model=cnn", "model.channels=[32,64,128]", "model.hidden=[128]", "model.head=gap",
                "model.head_dropout=0.0", "data.scaling=minmax", f"model.pretrained={source.run_dir}",
                "trainer.max_epochs=1", "trainer.limit_train_batches=2")
    assert tuned.summary["task"] == "multiclass" and tuned.summary["pretrained"]["loaded"] > 10
    skipped = tuned.summary["pretrained"]["skipped"]
    assert len(skipped) == 2 and all(name.endswith(("weight", "bias")) for name in skipped)  # the last layer only
