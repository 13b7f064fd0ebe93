"""Text data: tokenizing, a vocabulary from the training split only, and the text loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlcli.data.prepare import prepare
from dlcli.data.table import Table
from dlcli.data.text import reviews, text_csv
from dlcli.data.tokenize import build_vocab, encode, tokens
from dlcli.errors import DataError

WORD = {"level": "word", "max_length": 6, "min_freq": 1, "max_vocab": None, "lowercase": True}
DATA = {"name": "t", "batch_size": 8, "val_fraction": 0.25, "test_fraction": 0.25, "stratify": True,
        "scaling": "none", "target_scaling": "standard", "num_workers": 0}


def test_tokens_by_word_and_char():
    assert tokens("Not GOOD, really!", "word", lowercase=True) == ["not", "good", ",", "really", "!"]
    assert tokens("Ab c", "char", lowercase=False) == ["A", "b", " ", "c"]


def test_vocab_and_encoding():
    vocab = build_vocab(["a b b", "b c"], {**WORD, "min_freq": 2})
    assert vocab == ["<pad>", "<unk>", "b"]  # 'a' and 'c' appear once: below min_freq
    ids = encode(["b a b b b b b b", "c"], vocab, WORD)
    assert ids.tolist() == [[2, 1, 2, 2, 2, 2], [1, 0, 0, 0, 0, 0]]  # truncated to 6; padded with 0
    assert build_vocab(["a b c d"], {**WORD, "max_vocab": 4}) == ["<pad>", "<unk>", "a", "b"]


def test_vocabulary_comes_from_the_training_split_only():
    texts = np.array([f"common word{i}" for i in range(40)], dtype=object)
    table = Table(texts, np.array(["x", "y"] * 20), "classification", text=WORD)
    p = prepare(table, DATA, task="auto", loss_name="cross_entropy", loss_tasks=("multiclass",), seed=0)
    vocab = p.preprocessing["vocab"]
    train_words = {f"word{i}" for i in range(40)} & set(vocab)
    assert len(train_words) == p.preprocessing["split_sizes"]["train"]  # one unique word per training text
    x_test = p.splits["test"][0]
    assert (x_test[:, 1] == 1).all()  # test texts' own words are unknown to the vocabulary
    assert p.vocab_size == len(vocab) and p.in_shape == (6,) and x_test.dtype == np.int64
    json.dumps(p.preprocessing)  # saved with the run as plain JSON


def test_text_csv_reads_columns_and_names_problems(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('review,sentiment\n"great, fun film",pos\nboring,neg\n')
    table = text_csv(seed=0, path=str(path), text="review", label="sentiment")
    assert table.x.tolist() == ["great, fun film", "boring"] and table.y.tolist() == ["pos", "neg"]
    with pytest.raises(DataError, match="no column 'text' \\(data.text\\)"):
        text_csv(seed=0, path=str(path))
    with pytest.raises(DataError, match="CSV file not found"):
        text_csv(seed=0, path=str(tmp_path / "nope.csv"))
    path.write_text("text,label\nhello,\n")
    with pytest.raises(DataError, match="row 2: the label column 'label' is empty"):
        text_csv(seed=0, path=str(path))


def test_reviews_are_seeded_and_need_word_order():
    a, b = reviews(seed=3, n_samples=200), reviews(seed=3, n_samples=200)
    assert a.x.tolist() == b.x.tolist() and a.y.tolist() == b.y.tolist()
    assert set(a.y) == {"positive", "negative"}
    negated = [t for t, y in zip(a.x, a.y, strict=True) if " not " in t and " but " not in t]
    assert negated and any("great" in t or "brilliant" in t or "fun" in t for t in negated)
