"""Transfer learning: loading an earlier run's weights, a new head, frozen parameters, safe loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlcli.errors import DlcliError
from dlcli.training.train import train


@pytest.fixture
def three_digits(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = d.target < 3
    path = tmp_path / "three.npz"
    np.savez(path, x=d.data[keep].reshape(-1, 1, 8, 8).astype(np.float32), y=d.target[keep])
    return path


def run(make_config, *overrides):
    composed = make_config(*overrides)
    return train(composed.config, composed.overrides)


@pytest.mark.slow
def test_pretrained_weights_load_a_new_head_is_fresh_and_frozen_parts_stay(make_config, three_digits):
    source = run(make_config, "trainer.max_epochs=3")
    source_state = torch.load(source.run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    result = run(make_config, "data=npz", f"data.path={three_digits}", f"model.pretrained={source.run_dir}",
                 "finetune.freeze=[1.*]", "trainer.max_epochs=3")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["pretrained"]["loaded"] == 2 and summary["pretrained"]["skipped"] == ["4.weight", "4.bias"]
    assert summary["trainable_params"] == 256 * 3 + 3  # only the new head trains
    tuned = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(tuned["model.1.weight"], source_state["model.1.weight"])  # frozen: bit-identical
    assert torch.equal(tuned["model.1.bias"], source_state["model.1.bias"])
    assert tuned["model.4.weight"].shape == (3, 256)
    assert result.metrics["test/acc"] > 0.9


@pytest.mark.slow
def test_run_id_prefix_and_errors(make_config, out_dir):
    source = run(make_config, "trainer.max_epochs=1")
    composed = make_config(f"model.pretrained={source.run_dir.name[:15]}", "trainer.max_epochs=1")
    assert train(composed.config, composed.overrides).summary["pretrained"]["loaded"] == 4
    with pytest.raises(DlcliError, match="no such run folder, or run id"):
        run(make_config, "model.pretrained=nope")
    with pytest.raises(DlcliError, match=r"finetune.freeze: pattern\(s\) 'backbone.\*' match no parameter"):
        run(make_config, "finetune.freeze=[backbone.*]")


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_checkpoint_carrying_code_is_refused_and_never_runs(make_config, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dlcli.cli import app

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.1.weight": torch.zeros(256, 64)}, "x": Payload()}, evil)
    with pytest.raises(DlcliError, match=r"model.pretrained: .*evil.ckpt was refused: it holds more than tensors "
                                         r"and plain data \(unsupported GLOBAL posix.system\)"):
        run(make_config, f"model.pretrained={evil}")
    assert not (tmp_path / "pwned").exists()
    # the command line: exit 2, the message, no traceback, no run folder, and still no side effect
    result = CliRunner().invoke(app, ["train", "model.pretrained=evil.ckpt", "output_dir=out", "threads=1"])
    assert result.exit_code == 2, result.output
    assert "evil.ckpt was refused" in result.stderr and "weights_only=False" not in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.glob("out/*"))


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n"], ids=["empty", "text"])
def test_a_file_that_is_no_checkpoint_is_named(make_config, tmp_path, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(DlcliError, match=r"model.pretrained: .*bad.ckpt: cannot read it as a PyTorch checkpoint"):
        run(make_config, f"model.pretrained={bad}")


def test_stages_freeze_then_release_with_their_learning_rates(make_config, out_dir):
    import csv

    composed = make_config("optimizer.lr=0.01", "~callbacks.early_stopping",
                           "finetune.stages=[{epochs:2,train:[4.*],lr:0.02},{epochs:2,lr_multiplier:0.1}]")
    snapshots = []

    import pytorch_lightning as pl

    class Snap(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            snapshots.append({n: p.detach().clone() for n, p in pl_module.model.named_parameters()})

    from dlcli.training import train as train_mod

    original = train_mod.make_trainer

    def with_snap(*args, **kwargs):
        trainer, checkpoint, recorder = original(*args, **kwargs)
        trainer.callbacks.append(Snap())
        return trainer, checkpoint, recorder

    train_mod.make_trainer = with_snap
    try:
        result = train(composed.config, composed.overrides)
    finally:
        train_mod.make_trainer = original
    assert result.summary["epochs"] == 4  # the stages' epochs together
    # stage 1 (epochs 0, 1): only the head moves; stage 2 (epochs 2, 3): everything does
    assert torch.equal(snapshots[0]["1.weight"], snapshots[1]["1.weight"])
    assert not torch.equal(snapshots[0]["4.weight"], snapshots[1]["4.weight"])
    assert not torch.equal(snapshots[1]["1.weight"], snapshots[3]["1.weight"])
    lrs = [float(r["lr"]) for r in csv.DictReader((result.run_dir / "metrics.csv").open())]
    assert lrs == pytest.approx([0.02, 0.02, 0.001, 0.001])  # stage 2: the configured 0.01 x 0.1


def test_stages_need_a_constant_schedule(make_config):
    from dlcli.config.validate import ConfigError

    with pytest.raises(ConfigError, match="use scheduler=none"):
        make_config("scheduler=step", "finetune.stages=[{epochs:1}]")
    with pytest.raises(ConfigError, match="give lr or lr_multiplier, not both"):
        make_config("finetune.stages=[{epochs:1,lr:0.1,lr_multiplier:0.5}]")


def test_frozen_batch_norm_keeps_its_running_statistics(make_config):
    result = run(make_config, "model.norm=batch", "finetune.freeze=[1.*,2.*]", "trainer.max_epochs=2")
    state = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(state["model.2.running_mean"], torch.zeros(256))  # never updated from its initial values
    assert torch.equal(state["model.2.running_var"], torch.ones(256))
    assert result.summary["trainable_params"] == 256 * 10 + 10
