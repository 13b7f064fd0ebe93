"""Datasets from a user's own files: CSV tables and NumPy .npz arrays."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

from dlcli.data.columns import NA_VALUES
from dlcli.data.table import Table
from dlcli.errors import DataError
from dlcli.registry import DATASETS, did_you_mean


def _existing(path: str, what: str, key: str) -> Path:
    """The data file at ``path``; a DataError naming it and ``data.<key>`` if it is missing, a folder or
    unreadable."""
    import os

    p = Path(path).expanduser()
    if p.is_dir():
        raise DataError(f"'{path}' (data.{key}) is a folder, not a {what} file. "
                        f"Give a file in it: data.{key}={Path(path) / ('<file>.' + what.lower())}")
    if not p.is_file():
        raise DataError(f"{what} file not found: '{path}' (data.{key}). "
                        f"Give an existing file: data.{key}=/path/to/file")
    if not os.access(p, os.R_OK):
        raise DataError(f"cannot read {what} file '{path}' (data.{key}): permission denied. "
                        "Make it readable (chmod +r), or copy it somewhere you can read")
    return p


def read_text(p: Path, path: str, key: str, encoding: str = "utf-8", named: str | None = None,
              recode: str = "Name the encoding it was saved in (data.encoding=latin-1, cp1252, utf-16, ...) or save "
                            "it as UTF-8") -> str:
    """A text file's content, decompressed when it is a gzip, bz2, xz or single-file zip archive (told by its
    first bytes, whatever its name), decoded with ``encoding`` (data.encoding; UTF-8 with or without a
    byte-order mark by default). DataError, naming the file (as ``named``, else as ``data.<key>``'s) and the
    fix (``recode``: how to read a file in another encoding), when it cannot be read as such."""
    import codecs

    named = named or f"'{path}' (data.{key})"

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"data.encoding={encoding!r} is not a text encoding Python knows: e.g. utf-8, latin-1, "
                        "cp1252, utf-16") from None
    try:
        raw = _decompressed(p.read_bytes(), named)
    except OSError as e:
        raise DataError(f"cannot read {named}: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        shown = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
        raise DataError(f"{named} is not {shown} text: byte {e.object[e.start]:#04x} on line {line}. {recode}; "
                        "if it is not a text file at all, give the right file") from None


def _decompressed(raw: bytes, named: str) -> bytes:
    """``raw`` itself, or its content when it is a compressed file: gzip, bz2, xz, or a zip holding one file."""
    import bz2
    import gzip
    import io
    import lzma

    try:
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        if raw[:3] == b"BZh":
            return bz2.decompress(raw)
        if raw[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(raw)
        if raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise DataError(f"{named} is an Excel 97-2003 workbook (.xls), not a CSV file. Save the sheet as CSV "
                            "(in Excel or LibreOffice: Save As, CSV UTF-8) and give that file")
        if raw[:4] == b"PAR1":
            raise DataError(f"{named} is a Parquet file, not a CSV file. Write it as CSV, e.g. "
                            "pandas.read_parquet(path).to_csv('data.csv', index=False), and give that file")
        if raw[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                if "xl/workbook.xml" in archive.namelist():
                    raise DataError(f"{named} is an Excel workbook (.xlsx), not a CSV file. Save the sheet as CSV "
                                    "(in Excel or LibreOffice: Save As, CSV UTF-8) and give that file")
                members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
                if len(members) != 1:
                    names = ", ".join(m.filename for m in members[:10]) + (" ..." if len(members) > 10 else "")
                    raise DataError(f"{named} is a zip archive of {len(members)} files ({names}): "
                                    "dlcli reads a zip that holds one file. Extract the one to read and give it")
                return archive.read(members[0])
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as e:
        raise DataError(f"{named} is a damaged compressed file: {e}. Download or compress it "
                        "again") from None
    return raw


DELIMITERS = (",", ";", "\t", "|")  # what data.delimiter=auto chooses from, in this order
SNIFF_ROWS = 100  # auto: the header and this many rows must split alike
SNIFF_CHARS = 1 << 22  # ... read from at most the file's first 4 Mi characters
_NAMED = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# a number written with a decimal comma: 2,5  -0,75  1.234,5 (points grouping thousands)  12  1,5e3
_COMMA_NUMBER = r"[+-]?(\d{1,3}(\.\d{3})+|\d*)(,\d+)?([eE][+-]?\d+)?"


class CsvRows(list):
    """:func:`csv_rows`' (line number, fields) pairs, and the ``delimiter`` they were split at."""

    delimiter: str = ","


def csv_rows(path: str, delimiter: str, key: str = "path", header: bool = True, decimal: str = ".",
             na_values: tuple[str, ...] | list[str] = (), notes: list[str] | None = None,
             encoding: str = "utf-8") -> CsvRows:
    """(line number, fields) of every non-blank row of a CSV file, the header first (unless ``header`` is False).

    ``delimiter``: one character, or ``auto`` (:func:`sniff_delimiter`'s choice; a comma when it finds none).
    ``decimal`` (``.``, ``,``, or ``auto``: ``,`` unless the delimiter is a comma) rewrites the columns written
    with decimal commas (:func:`decimal_commas`). Each choice that reads the file otherwise than as plain
    commas and points is appended to ``notes``. The file may be compressed, and in any ``encoding`` (see
    :func:`read_text`). DataError when the file is missing, unreadable, not text in that encoding, not
    parseable, or has no data row.
    """
    p = _existing(path, "CSV", key)
    rows = _split(read_text(p, path, key, encoding), delimiter, f"'{path}'", header, decimal, na_values, notes)
    if not rows:
        raise DataError(f"CSV file '{path}' (data.{key}) is empty: it needs a header row and at least one data row")
    if len(rows) < 2 and header:
        raise DataError(f"CSV file '{path}' (data.{key}) has a header row but no data rows")
    return rows


def split_csv(text: str, delimiter: str, source: str, *, header: bool = True, decimal: str = ".",
              na_values: tuple[str, ...] | list[str] = ()) -> list[list[str]]:
    """The fields of every non-blank row of CSV ``text`` (e.g. a file given to ``dlcli predict``), read as a
    run read its data: ``delimiter`` and ``decimal`` as in :func:`csv_rows`."""
    return [fields for _, fields in _split(text, delimiter, source, header, decimal, na_values, None)]


def _split(text: str, delimiter: str, source: str, header: bool, decimal: str,
           na_values: tuple[str, ...] | list[str], notes: list[str] | None) -> CsvRows:
    import csv as csvlib

    delimiter = resolve_delimiter(delimiter, text, source, notes)
    reader = _reader(text, delimiter)
    out = CsvRows()
    out.delimiter = delimiter
    try:
        # the reader's line_num after a row is where that row ends: a quoted field may span lines
        out.extend((reader.line_num, r) for r in reader if any(cell.strip() for cell in r))
    except csvlib.Error as e:
        raise DataError(f"malformed CSV {source} near line {reader.line_num}: {e}. {delimiter_hint(delimiter)}") \
            from None
    body = [r for _, r in (out[1:] if header else out)]
    converted = decimal_commas(body, decimal, delimiter, set(na_values))
    if converted and notes is not None:
        names = [h.strip() for h in out[0][1]] if header else [str(i) for i in range(len(out[0][1]))]
        shown = ", ".join(names[j] if j < len(names) else str(j) for j in converted[:10])
        notes.append(f"read {len(converted)} column(s) of {source} written with decimal commas (2,5 = 2.5): "
                     f"{shown}{' ...' if len(converted) > 10 else ''} (data.decimal={decimal}; "
                     "\"data.decimal='.'\" reads them as written)")
    return out


def _reader(text: str, delimiter: str):
    import csv as csvlib
    import io

    # skipinitialspace: `a, "b c"` is two fields, a and b c (not ` "b c"` with its quotes)
    return csvlib.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)


def sniff_delimiter(text: str) -> str | None:
    """The first of , ; tab | that splits the header and the first rows (up to SNIFF_ROWS) into the same
    number of fields, more than one; None when none does (a single column, or ragged rows)."""
    import csv as csvlib
    from itertools import islice

    sample = text[:SNIFF_CHARS]  # a big file: its head, whole rows only (the last may be cut short)
    cut = len(sample) < len(text)
    for delimiter in DELIMITERS:
        if delimiter not in sample:
            continue
        try:
            rows = list(islice((r for r in _reader(sample, delimiter) if any(c.strip() for c in r)),
                               SNIFF_ROWS + 1 + cut))
        except csvlib.Error:
            continue
        widths = {len(r) for r in (rows[:SNIFF_ROWS + 1] if len(rows) > SNIFF_ROWS + 1 or not cut else rows[:-1])}
        if len(widths) == 1 and widths.pop() > 1:
            return delimiter
    return None


def resolve_delimiter(delimiter: str, text: str, source: str, notes: list[str] | None = None) -> str:
    """data.delimiter as one character: ``\\t`` is a tab; ``auto`` is sniffed from ``text`` (a note says what
    it chose, when not a comma). DataError for anything else longer than one character."""
    delimiter = {"\\t": "\t"}.get(delimiter, delimiter)  # data.delimiter='\t' on a command line is a tab
    if delimiter == "auto":
        found = sniff_delimiter(text)
        if found and found != "," and notes is not None:
            notes.append(f"read {source} as {_NAMED[found]}-separated (data.delimiter=auto; to choose: "
                         f"{_shown(found)})")
        return found or ","
    if len(delimiter) != 1:
        raise DataError(f"data.delimiter must be one character or auto, got {delimiter!r}: e.g. "
                        f"{_shown(';')} (a tab: {_shown(chr(9))}), quoted so that the shell keeps the quotes")
    return delimiter


def _shown(delimiter: str) -> str:
    """An override choosing ``delimiter``, as typed in a shell: data.delimiter=; alone is not an override."""
    return "\"data.delimiter='\\t'\"" if delimiter == "\t" else f"\"data.delimiter='{delimiter}'\""


def delimiter_hint(delimiter: str) -> str:
    """The end of a malformed-CSV message: the delimiter it was read with, and how to give another."""
    return (f"It was read as {_NAMED.get(delimiter, repr(delimiter))}-separated: check the delimiter "
            f"(e.g. {_shown(';' if delimiter == ',' else ',')}, or data.delimiter=auto) and the quoting")


def decimal_commas(rows: list[list[str]], decimal: str, delimiter: str, na: set[str]) -> list[int]:
    """Rewrite, in place, the columns of ``rows`` written with decimal commas (``2,5``, ``-0,75``,
    ``1.234,5`` with points grouping thousands) as numbers with points; return their positions.

    A column is rewritten when ``decimal`` is ``,`` (or ``auto`` and ``delimiter`` is not a comma), every
    cell of it that is not missing (``na``) is such a number or an integer, and at least one has a comma.
    Any other column (text, or numbers written with points) is left as written."""
    import re

    if decimal == "." or (decimal == "auto" and delimiter == ","):
        return []
    number = re.compile(_COMMA_NUMBER)
    converted = []
    for j in range(max((len(r) for r in rows), default=0)):
        present = [c for c in (r[j].strip() for r in rows if j < len(r)) if c not in na]
        if not any("," in c for c in present) or not all(
                number.fullmatch(c) and any(ch.isdigit() for ch in c) for c in present):
            continue
        for r in rows:
            if j < len(r) and r[j].strip() not in na:
                r[j] = r[j].strip().replace(".", "").replace(",", ".")
        converted.append(j)
    return converted


@DATASETS.register()
def csv(seed: int, path: str, target: int | str, features: list[int | str] | None = None, delimiter: str = "auto",
        header: bool = True, categorical: list[int | str] | None = None, numeric: list[int | str] | None = None,
        na_values: list[str] = NA_VALUES, missing: Literal["error", "drop", "impute"] = "impute",
        max_categories: int = 50, group: str | None = None, decimal: Literal[".", ",", "auto"] = "auto",
        encoding: str = "utf-8", exclude: list[int | str] | None = None):
    """A CSV table: one target column; numeric, categorical and text columns, with missing values."""
    from dlcli.data.columns import read_table

    dialect: list[str] = []  # notes: a delimiter other than a comma found, decimal commas read
    numbered = csv_rows(path, delimiter, header=header, decimal=decimal, na_values=na_values, notes=dialect,
                        encoding=encoding)  # blank lines carry nothing and are left out
    lines, rows = [n for n, _ in numbered], [r for _, r in numbered]
    if header:
        names, lines, rows = [h.strip() for h in rows[0]], lines[1:], rows[1:]
    else:  # header-less: the columns are named by position, "0".."N-1" (data.target=0 works)
        names = [str(i) for i in range(len(rows[0]))]
    for lineno, row in zip(lines, rows, strict=True):
        if len(row) != len(names):
            raise DataError(f"malformed CSV '{path}': row {lineno} has {len(row)} fields, the "
                            f"{'header' if header else 'first row'} has {len(names)}. "
                            f"{delimiter_hint(numbered.delimiter)}")
    table = read_table(f"'{path}'", names, rows, lines, str(target), _named(features), _named(categorical),
                       _named(numeric), list(na_values), missing, max_categories, header, group, _named(exclude))
    table.columns["notes"][:0] = dialect
    return table


def _named(columns: list[int | str] | None) -> list[str] | None:
    """Column names as text: header-less files name their columns by position, given as numbers."""
    return None if columns is None else [str(n) for n in columns]


@DATASETS.register()
def npz(seed: int, path: str, x_key: str = "x", y_key: str = "y"):
    """A NumPy .npz file holding an input array and a target array."""
    import numpy as np

    p = _existing(path, "NPZ", "path")
    try:
        arrays = np.load(p, allow_pickle=False)  # never unpickle a data file
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cannot read '{path}' (data.path) as a .npz file: {e}. Save it with "
                        "np.savez(path, x=inputs, y=targets)") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise DataError(f"'{path}' (data.path) is a single .npy array, not a .npz archive of inputs and targets. "
                        "Save both with np.savez(path, x=inputs, y=targets)")
    with arrays:
        for key, role in ((x_key, "x_key"), (y_key, "y_key")):
            if key not in arrays.files:
                raise DataError(f"'{path}' has no array '{key}' (data.{role}).{did_you_mean(key, arrays.files)} "
                                f"Arrays: {', '.join(arrays.files)}")
        x, y = (_npz_array(arrays, key, role, path) for key, role in ((x_key, "x_key"), (y_key, "y_key")))
    if len(x) != len(y):
        raise DataError(f"'{path}': '{x_key}' has {len(x)} rows but '{y_key}' has {len(y)}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"'{path}': '{x_key}' must be numeric, got dtype {x.dtype}")
    return Table(x.astype(np.float32), y, None)


def _npz_array(arrays, key: str, role: str, path: str):
    try:
        return arrays[key]
    except ValueError as e:  # an object array: reading it would unpickle
        raise DataError(f"'{path}': array '{key}' (data.{role}) cannot be read: {e}. dlcli reads numeric and string "
                        "arrays only, never pickled Python objects: save it with a numeric dtype, e.g. "
                        "x.astype('float32')") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"'{path}' (data.path) is damaged: array '{key}' cannot be read ({e}). Save it again") from None
