"""Text augmentation: EDA (synonym replacement, random insertion, swap and deletion) on word-level token ids.

`augmentation=eda augmentation.synonyms=synonyms.yaml` reads a YAML or JSON mapping word -> list of
synonyms (`great: [wonderful, superb]`); a name without an extension is a file shipped with dlcli
(`augmentation.synonyms=reviews`, for `data=reviews`). Training batches only, like every augmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcli.config.types import Prob
from dlcli.errors import DlcliError
from dlcli.registry import AUGMENTATIONS

SHIPPED = Path(__file__).parent / "resources" / "synonyms"  # synonym files shipped with dlcli, by name
_EXAMPLE = "a mapping of word -> list of synonym words, e.g. `great: [wonderful, superb]`"


def shipped_synonyms() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def _synonym_path(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.suffix:  # a shipped file, by name
        path = SHIPPED / f"{value}.yaml"
        if not path.is_file():
            raise DlcliError(f"augmentation.synonyms: no shipped synonym file '{value}' "
                             f"(shipped: {', '.join(shipped_synonyms())}). "
                             f"Or give a file: augmentation.synonyms=my_synonyms.yaml")
        return path
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise DlcliError(f"augmentation.synonyms: '{value}' must be a .yaml, .yml or .json file ({_EXAMPLE})")
    if not path.is_file():
        raise DlcliError(f"augmentation.synonyms: file not found: '{value}'. Give an existing YAML or JSON file: "
                         f"augmentation.synonyms=/path/to/synonyms.yaml")
    return path


def load_synonyms(value: str, lowercase: bool) -> dict[str, list[str]]:
    """The synonym file ``value`` (a path, or a shipped name) as word -> synonyms, checked."""
    import json

    import yaml

    path = _synonym_path(value)
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        detail = " ".join(str(e).split())
        raise DlcliError(f"augmentation.synonyms: cannot read '{path}' as {kind}: {detail}. "
                         f"Fix the file: {_EXAMPLE}") from e
    if not isinstance(data, dict) or not data:
        got = "an empty file" if not data else f"a {type(data).__name__}"
        raise DlcliError(f"augmentation.synonyms: '{path}' must hold {_EXAMPLE}; got {got}")
    fold = str.lower if lowercase else str
    out: dict[str, list[str]] = {}
    for word, syns in data.items():
        if not isinstance(word, str) or not isinstance(syns, list) or not all(isinstance(s, str) for s in syns):
            raise DlcliError(f"augmentation.synonyms: '{path}', entry {word!r}: must be a word with a list of "
                             f"words, got {syns!r}. The file must hold {_EXAMPLE}")
        out.setdefault(fold(word), []).extend(fold(s) for s in syns)
    return out


def synonym_ids(synonyms: dict[str, list[str]], vocab: list[str]) -> dict[int, list[int]]:
    """Word -> synonyms as token id -> ids, keeping only words and synonyms in ``vocab`` (others would be <unk>)."""
    index = {t: i for i, t in enumerate(vocab) if i > 1}  # never <pad> or <unk>
    out = {}
    for word, syns in synonyms.items():
        ids = sorted({index[s] for s in syns if s in index and s != word})
        if word in index and ids:
            out[index[word]] = ids
    return out


@AUGMENTATIONS.register(inputs="tokens")
def eda(vocab: list[str] | None = None, text: dict | None = None, synonyms: str | None = None,
        synonym_rate: Prob = 0.1, insert_rate: Prob = 0.1, swap_rate: Prob = 0.1, delete_rate: Prob = 0.1,
        p: Prob = 0.5):
    """EDA for word-level text: synonym replacement, random insertion, swap and deletion of tokens.

    Without a synonym file, replacement is skipped and insertion inserts a copy of a random word of the text.
    """
    from dlcli.nets.text_augment import EDA

    if vocab is None or text is None or text.get("level") != "word":
        got = "character-level text" if text is not None else "non-text data"
        raise DlcliError(f"augmentation=eda needs word-level text data, got {got}: use data=reviews or "
                         f"data=text_csv with data.level=word")
    rates = {"synonym_rate": synonym_rate, "insert_rate": insert_rate, "swap_rate": swap_rate,
             "delete_rate": delete_rate, "p": p}
    for key, value in rates.items():
        if not 0 <= value <= 1:
            raise DlcliError(f"augmentation.{key} must be in [0, 1], got {value}")
    ids: dict[int, list[int]] = {}
    if synonyms is not None:
        words = load_synonyms(synonyms, bool(text.get("lowercase")))
        ids = synonym_ids(words, vocab)
        if not ids:
            raise DlcliError(f"augmentation.synonyms: none of the {len(words)} entries of '{synonyms}' can be used: "
                             f"no word of the file has a synonym that is also in this run's vocabulary "
                             f"({len(vocab)} tokens). Use synonyms of words that occur in the training texts")
    return EDA(ids, synonym_rate, insert_rate, swap_rate, delete_rate, p)
