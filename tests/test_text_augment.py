"""EDA text augmentation: each op edits token ids as declared, padding stays at the end, bad input is named."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from dlcli.errors import DlcliError
from dlcli.nets.text_augment import EDA
from dlcli.registry import AUGMENTATIONS, load_components

load_components()
VOCAB = ["<pad>", "<unk>", "good", "great", "fine", "bad", "awful", "film", "movie", "the", "was"]
ID = {t: i for i, t in enumerate(VOCAB)}
WORD = {"level": "word", "max_length": 8, "min_freq": 1, "max_vocab": None, "lowercase": True}
SYNONYMS = {"good": ["great", "fine"], "bad": ["awful", "dreadful"], "film": ["movie"]}  # dreadful: not in VOCAB
OFF = {"synonym_rate": 0.0, "insert_rate": 0.0, "swap_rate": 0.0, "delete_rate": 0.0}
ALLOWED = {ID["good"]: {ID["great"], ID["fine"]}, ID["bad"]: {ID["awful"]}, ID["film"]: {ID["movie"]}}


@pytest.fixture
def synonyms_file(tmp_path):
    path = tmp_path / "synonyms.yaml"
    path.write_text("good: [great, fine]\nbad: [awful, dreadful]\nfilm: [movie]\n")
    return str(path)


def eda(synonyms=None, vocab=VOCAB, text=WORD, **params):
    return AUGMENTATIONS.get("eda").build({"synonyms": synonyms, "p": 1.0, **OFF, **params}, in_shape=(8,),
                                          num_classes=2, task="multiclass", vocab=vocab, text=text)


def batch() -> torch.Tensor:
    """(B, 8) ids: texts of several lengths, padded with 0; row 3 is all padding."""
    texts = [["the", "film", "was", "good"], ["the", "movie", "was", "bad", "good", "film"],
             ["good", "bad", "film", "the", "was", "good", "bad", "film"], [], ["was"]]
    return torch.tensor([[ID[t] for t in text] + [0] * (8 - len(text)) for text in texts] * 4)


def rows(x: torch.Tensor) -> list[list[int]]:
    """Each row's ids, checking that padding is only at the end."""
    out = []
    for row in x.tolist():
        ids = [t for t in row if t != 0]
        assert row == ids + [0] * (len(row) - len(ids)), f"padding inside {row}"
        out.append(ids)
    return out


def run(aug, x=None):
    x = batch() if x is None else x
    y = torch.arange(len(x))
    torch.manual_seed(0)
    out, labels = aug(x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.equal(labels, y)
    assert not out[3::5].any()  # all-padding rows stay padding
    return rows(x), rows(out)


def test_synonym_replacement_puts_only_the_files_synonyms_in_the_vocabulary(synonyms_file):
    before, after = run(eda(synonyms_file, synonym_rate=1.0))
    assert before != after
    for old, new in zip(before, after, strict=True):
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            assert a == b or b in ALLOWED.get(a, ()), f"{VOCAB[a]} -> {VOCAB[b]}"
            if a in ALLOWED:  # rate 1: every word with a synonym is replaced
                assert b in ALLOWED[a]


def test_deletion_shortens_rows_but_never_empties_them():
    before, after = run(eda(delete_rate=0.5))
    assert any(len(new) < len(old) for old, new in zip(before, after, strict=True))
    for old, new in zip(before, after, strict=True):
        assert (len(new) >= 1) == (len(old) >= 1)
        it = iter(old)
        assert all(t in it for t in new)  # what is left keeps its order


def test_swap_keeps_the_tokens_and_moves_them():
    before, after = run(eda(swap_rate=0.5))
    assert before != after
    assert all(Counter(old) == Counter(new) for old, new in zip(before, after, strict=True))


def test_insertion_adds_synonyms_of_the_texts_words(synonyms_file):
    before, after = run(eda(synonyms_file, insert_rate=0.5))
    for old, new in zip(before, after, strict=True):
        if len(old) == 8:  # full rows: the insertions are cut off at max_length
            assert len(new) == 8
            continue
        added = Counter(new) - Counter(old)
        assert len(new) == min(8, len(old) + max(1, round(0.5 * len(old)))) or not set(old) & set(ALLOWED)
        assert all(any(t in ALLOWED.get(w, ()) for w in old) for t in added), f"{old} -> {new}"


def test_insertion_without_synonyms_repeats_words_of_the_text():
    before, after = run(eda(insert_rate=0.3))
    assert before != after
    for old, new in zip(before, after, strict=True):
        assert set(new) == set(old) and len(new) >= len(old)


def test_nothing_changes_with_p0_or_all_rates_0(synonyms_file):
    x = batch()
    rates = {"synonym_rate": 1.0, "insert_rate": 1.0, "swap_rate": 1.0, "delete_rate": 0.5}
    assert torch.equal(eda(synonyms_file, p=0.0, **rates)(x, x)[0], x)
    assert torch.equal(eda(synonyms_file)(x, x)[0], x)  # OFF: every rate 0


def test_all_ops_together_are_seeded(synonyms_file):
    aug = eda(synonyms_file, synonym_rate=0.2, insert_rate=0.2, swap_rate=0.2, delete_rate=0.2, p=0.5)
    first, second = run(aug)[1], run(aug)[1]
    assert first == second


def test_files_are_lowercased_and_json_works(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"Film": ["MOVIE"]}))
    aug = eda(str(path))
    assert aug.synonyms == {ID["film"]: [ID["movie"]]}
    assert eda(str(path), text={**WORD, "lowercase": False}, vocab=[*VOCAB, "Film", "MOVIE"]).synonyms == {11: [12]}


def test_the_shipped_reviews_file_fits_the_reviews_corpus():
    from dlcli.data.text import reviews
    from dlcli.data.tokenize import build_vocab

    table = reviews(seed=0, n_samples=300)
    vocab = build_vocab(list(table.x), table.text)
    aug = eda("reviews", vocab=vocab, text=table.text)
    assert len(aug.synonyms) >= 30 and vocab.index("movie") in aug.synonyms[vocab.index("film")]


@pytest.mark.parametrize(("content", "message"), [
    ("good: [great\n", r"cannot read '.*bad.yaml' as YAML: .*Fix the file: a mapping of word -> list"),
    ("- good\n- great\n", r"'.*bad.yaml' must hold a mapping of word -> list of synonym words.*got a list"),
    ("", "got an empty file"),
    ("good: great\n", r"'.*bad.yaml', entry 'good': must be a word with a list of words, got 'great'"),
    ("nice: [lovely]\n", r"none of the 1 entries of '.*bad.yaml' can be used: no word of the file has a synonym "
                         r"that is also in this run's vocabulary \(11 tokens\)"),
])
def test_bad_synonym_files_are_named(tmp_path, content, message):
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(DlcliError, match=message):
        eda(str(tmp_path / "bad.yaml"))


def test_missing_or_unknown_synonym_files_are_named(tmp_path):
    with pytest.raises(DlcliError, match=r"file not found: '.*nope.yaml'. Give an existing YAML or JSON file"):
        eda(str(tmp_path / "nope.yaml"))
    with pytest.raises(DlcliError, match=r"'s.txt' must be a .yaml, .yml or .json file"):
        eda("s.txt")
    with pytest.raises(DlcliError, match=r"no shipped synonym file 'review' \(shipped: reviews\)"):
        eda("review")
    (tmp_path / "s.json").write_text("{good: 1}")
    with pytest.raises(DlcliError, match="cannot read .* as JSON"):
        eda(str(tmp_path / "s.json"))


def test_rates_must_be_probabilities():
    with pytest.raises(DlcliError, match=r"augmentation.swap_rate must be in \[0, 1\], got 1.5"):
        eda(swap_rate=1.5)
    with pytest.raises(DlcliError, match=r"augmentation.p must be in \[0, 1\], got -0.1"):
        eda(p=-0.1)


def test_eda_needs_word_level_text():
    with pytest.raises(DlcliError, match="augmentation=eda needs word-level text data, got non-text data: "
                                         "use data=reviews or data=text_csv with data.level=word"):
        eda(vocab=None, text=None)
    with pytest.raises(DlcliError, match="got character-level text"):
        eda(text={**WORD, "level": "char"})


@pytest.mark.parametrize("data", [["data=digits"], ["data=reviews", "data.level=char"]])
def test_eda_on_image_or_char_data_is_refused_before_training(make_config, data):
    from dlcli.training.build import build_run

    composed = make_config(*data, "augmentation=eda")
    with pytest.raises(DlcliError, match="augmentation=eda needs word-level text data"):
        build_run(composed.config)


@pytest.mark.slow
def test_text_gru_trains_with_eda_on_training_batches_only(make_config, monkeypatch):
    from dlcli.training.train import train

    seen, changed = [], []
    call = EDA.__call__

    def spy(self, x, y):
        out = call(self, x, y)
        seen.append(len(x))
        changed.append(not torch.equal(out[0], x))
        return out

    monkeypatch.setattr(EDA, "__call__", spy)
    composed = make_config("experiment=text_gru", "augmentation=eda", "augmentation.synonyms=reviews",
                           "data.n_samples=800", "optimizer.lr=0.01", "trainer.max_epochs=6")
    result = train(composed.config, composed.overrides)
    # every training text once per epoch, and nothing else: validation and test batches are not augmented
    assert sum(seen) == result.summary["epochs"] * result.summary["split_sizes"]["train"]
    assert all(changed)
    assert result.metrics["test/acc"] >= 0.85
