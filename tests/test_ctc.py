"""CTC: unaligned symbol strings read off frame sequences."""

from __future__ import annotations

import csv

import pytest
import torch

from dlcli.data.sequences import transcription
from dlcli.nets.losses import greedy_decode
from dlcli.training.train import train


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    steps = torch.tensor([[0, 1, 1, 0, 1, 2, 2, 0]])  # blank, a, a, blank, a, b, b, blank
    logits = torch.nn.functional.one_hot(steps, 3).float()
    assert greedy_decode(logits) == [[1, 1, 2]]  # "aab": a blank separates the two a's


def test_transcription_data_lines_up():
    table = transcription(seed=0, n_samples=20, alphabet="abc", noise=0.0)
    assert table.x.shape == (20, 4 * 5, 3) and table.class_names == ["a", "b", "c"]
    def runs(seq):  # consecutive repeats merged
        return [c for i, c in enumerate(seq) if i == 0 or c != seq[i - 1]]

    for x, y in zip(table.x, table.y, strict=True):
        symbols = [int(s) for s in y if s > 0]
        frames = [int(c) + 1 for c in x.argmax(1)[x.max(1) > 0.5]]  # the symbol held in each non-silent frame
        assert 2 <= len(symbols) <= 4 and 2 * len(symbols) <= len(frames) <= 4 * len(symbols)
        assert runs(frames) == runs(symbols)


@pytest.mark.slow
def test_ctc_trains_to_a_low_character_error_rate(make_config):
    composed = make_config("experiment=transcription_ctc", "trainer.max_epochs=12")
    result = train(composed.config, composed.overrides)
    rows = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
    losses = [float(r["train/loss"]) for r in rows]
    assert losses[-1] < losses[0] / 3  # the loss falls
    assert result.metrics["test/cer"] < 0.4  # chance is ~1: random symbols, wrong lengths
