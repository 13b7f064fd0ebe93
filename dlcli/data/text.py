"""Text classification datasets: a user's CSV, and a review corpus dlcli generates offline.

A loader returns the raw texts; dlcli builds the vocabulary on the training split only
(see dlcli/data/tokenize.py) and turns each text into `max_length` token ids.
"""

from __future__ import annotations

from typing import Literal

from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import DATASETS, did_you_mean


def _text_options(level: str, max_length: int, min_freq: int, max_vocab: int | None, lowercase: bool) -> dict:
    if max_length < 1:
        raise DataError(f"data.max_length must be at least 1, got {max_length}")
    return {"level": level, "max_length": max_length, "min_freq": min_freq, "max_vocab": max_vocab,
            "lowercase": lowercase}


@DATASETS.register()
def text_csv(seed: int, path: str, text: str = "text", label: str = "label", level: Literal["word", "char"] = "word",
             max_length: int = 64, min_freq: int = 1, max_vocab: int | None = 20000, lowercase: bool = True,
             delimiter: str = "auto", encoding: str = "utf-8"):
    """A CSV with a text column and a label column (text classification)."""
    import numpy as np

    from dlcli.data.columns import column_positions, columns_list
    from dlcli.data.files import csv_rows

    notes: list[str] = []  # a delimiter other than a comma found
    numbered = csv_rows(path, delimiter, notes=notes, encoding=encoding)
    columns = [h.strip() for h in numbered[0][1]]
    position = column_positions(columns, f"'{path}'")  # refuses a name given twice
    for key, col in (("text", text), ("label", label)):
        if col not in position:
            raise DataError(f"CSV '{path}' has no column '{col}' (data.{key}).{did_you_mean(col, columns)} "
                            f"Columns: {columns_list(columns)}")
    t, lab = position[text], position[label]
    texts, labels = [], []
    for line, row in numbered[1:]:
        if len(row) <= lab or not row[lab].strip():
            raise DataError(f"CSV '{path}', row {line}: the label column '{label}' is empty")
        texts.append(row[t] if len(row) > t else "")
        labels.append(row[lab].strip())
    return Table(np.array(texts, dtype=object), np.array(labels), "classification",
                 text=_text_options(level, max_length, min_freq, max_vocab, lowercase), notes=notes or None)


_SUBJECTS = ["the film", "this movie", "the plot", "the acting", "the story", "the soundtrack", "the ending",
             "the cast", "the script", "the direction", "the pacing", "the dialogue"]
_GOOD = ["great", "wonderful", "excellent", "brilliant", "superb", "delightful", "moving", "charming", "gripping",
         "clever", "fun", "beautiful"]
_BAD = ["awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious", "bland", "messy", "painful", "flat",
        "forgettable"]
_ADVERBS = ["really", "truly", "quite", "rather", "very", "so"]
_OPENERS = ["", "", "honestly ,", "overall ,", "to be fair ,", "i think", "in the end ,"]


@DATASETS.register()
def reviews(seed: int, n_samples: int = 2000, level: Literal["word", "char"] = "word", max_length: int = 24,
            min_freq: int = 1, max_vocab: int | None = None, lowercase: bool = True):
    """Short movie reviews, positive or negative, generated offline; negation and 'but' need word order."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def clause(positive: bool) -> str:
        subject = rng.choice(_SUBJECTS)
        negated = rng.random() < 0.3  # "was not good" is negative: a bag of words cannot tell
        adj = rng.choice(_GOOD if positive != negated else _BAD)
        adv = rng.choice(_ADVERBS) + " " if rng.random() < 0.4 else ""
        return f"{subject} was {'not ' if negated else ''}{adv}{adj}"

    texts, labels = [], []
    for _ in range(n_samples):
        positive = bool(rng.random() < 0.5)
        text = clause(positive)
        if rng.random() < 0.25:  # "X but Y": the clause after "but" decides
            text = f"{clause(not positive)} but {text}"
        opener = rng.choice(_OPENERS)
        texts.append(f"{opener} {text} .".strip())
        labels.append("positive" if positive else "negative")
    return Table(np.array(texts, dtype=object), np.array(labels), "classification",
                 text=_text_options(level, max_length, min_freq, max_vocab, lowercase))
