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


def test_run_id_prefix_and_errors(make_config, out_dir):
    source = run(make_config, "trainer.max_epochs=1")
    composed = make_config(f"model.pretrained={source.run_dir.name[:15]}", "trainer.max_epochs=1")
    assert train(composed.config, composed.overrides).summary["pretrained"]["loaded"] == 4
    with pytest.raises(DlcliError, match="no such checkpoint file, run folder, or run id"):
        run(make_config, "model.pretrained=nope")
    with pytest.raises(DlcliError, match=r"finetune.freeze: pattern\(s\) 'backbone.\*' match no parameter"):
        run(make_config, "finetune.freeze=[backbone.*]")


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_checkpoint_carrying_code_is_refused_and_never_runs(make_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.1.weight": torch.zeros(256, 64)}, "x": Payload()}, evil)
    with pytest.raises(DlcliError, match="cannot load .*evil.ckpt safely"):
        run(make_config, f"model.pretrained={evil}")
    assert not (tmp_path / "pwned").exists()
