"""Self-supervised pretraining, then fine-tuning with few labels, from the command line."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from dlcli.cli import app

FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.slow
def test_autoencoder_pretraining_then_fine_tuning_with_a_tenth_of_the_labels(tmp_path):
    out = f"output_dir={tmp_path}"
    cli("train", "experiment=digits_ae_pretrain", "trainer.max_epochs=15", out, *FAST)
    (source,) = tmp_path.iterdir()
    result = cli("train", "experiment=digits_ae_finetune", "model.pretrained=last", out, *FAST,
                 "finetune.stages=[{epochs: 5, train: ['head.*']}, {epochs: 30}]")
    assert "re-applied" in result.output and "tensors loaded" in result.output
    (tuned,) = [p for p in tmp_path.iterdir() if p != source]
    info = summary(tuned)
    encoder = [k for k in torch.load(source / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
               if k.startswith("model.encoder.")]
    assert info["pretrained"]["loaded"] == len(encoder) == 6  # three Linear layers of the encoder
    assert info["pretrained"]["new"] == ["head.1.weight", "head.1.bias"] and not info["pretrained"]["skipped"]
    pre = json.loads((tuned / "preprocessing.json").read_text())
    assert pre["scaling"] == json.loads((source / "preprocessing.json").read_text())["scaling"]
    source_train = json.loads((source / "preprocessing.json").read_text())["split_sizes"]["train"]
    assert abs(pre["split_sizes"]["train"] - 0.1 * source_train) <= 1  # a tenth of the training images
    assert pre["split_sizes"]["test"] == info["split_sizes"]["test"] == summary(source)["split_sizes"]["test"]
    assert info["metrics"]["test/acc"] >= 0.75


@pytest.mark.slow  # ~10 s of training
def test_contrastive_pretraining_then_fine_tuning_from_the_presets(tmp_path):
    out = f"output_dir={tmp_path}"
    cli("train", "experiment=digits_contrastive", "trainer.max_epochs=4", out, *FAST)
    (source,) = tmp_path.iterdir()
    assert summary(source)["task"] == "contrastive"
    result = cli("train", "experiment=digits_contrastive_finetune", f"model.pretrained={source.name}", out, *FAST,
                 "finetune.stages=[{epochs: 5, train: ['13.*', '15.*']}, {epochs: 25}]")
    assert "re-applied" in result.output
    (tuned,) = [p for p in tmp_path.iterdir() if p != source]
    info = summary(tuned)
    assert info["pretrained"]["skipped"] == ["15.weight", "15.bias"]  # the projection's output: a new head
    assert info["pretrained"]["loaded"] == 20 and not info["pretrained"]["new"]
    assert info["task"] == "multiclass" and info["metrics"]["test/acc"] >= 0.8
