"""CSV files as they come: the delimiter found (`data.delimiter=auto`), decimal commas read as numbers
(`data.decimal=auto`), a space after the delimiter before a quoted field; at training and at predict time."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.data.files import csv, decimal_commas, sniff_delimiter, split_csv
from dlcli.data.sequences import fill_gaps, timeseries_csv
from dlcli.data.text import text_csv
from dlcli.errors import DataError

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]


@pytest.mark.parametrize(("text", "expected"), [
    ("a,b,y\n1,2,0\n3,4,1\n", ","),
    ("a;b;y\n1,5;2,5;0\n3;4,25;1\n", ";"),  # decimal commas: a comma splits the rows unevenly
    ("a\tb\ty\n1\t2\t0\n", "\t"),
    ("a|b|y\n1|2|0\n", "|"),
    ('a,note,y\n1,"x; y",0\n2,"z",1\n', ","),  # a semicolon inside a quoted field
    ("a,note,y\n1,x; y,0\n2,z,1\n", ","),  # a comma file splits evenly first, whatever its text holds
    ("value\n1\n2\n", None),  # one column: nothing to find (read as commas)
    ("a,b\n1,2\n3\n", None),  # ragged: refused later, naming the rows
])
def test_the_delimiter_found_is_the_first_that_splits_every_row_alike(text, expected):
    assert sniff_delimiter(text) == expected


def test_a_big_file_is_sniffed_from_its_head_whole_rows_only(monkeypatch):
    from dlcli.data import files

    text = "a;b;y\n" + "".join(f"{i};{i},5;x\n" for i in range(300))
    for head in (20, 45, 1000, 1 << 22):  # cut inside a row, at a row's end, after the 101 rows, the whole file
        monkeypatch.setattr(files, "SNIFF_CHARS", head)
        assert sniff_delimiter(text) == ";"


def test_columns_written_with_decimal_commas_are_read_as_numbers_and_others_are_left_as_written():
    rows = [["2,5", "1.234,5", "red", "1.5", "3", "7,25"],
            ["-0,75", "12", "blue", "2.5", "4", "text"],
            ["NA", "1,5e3", "green", "0,5", "5", "1,0"]]
    assert decimal_commas(rows, "auto", ";", {"NA"}) == [0, 1]
    assert [r[:2] for r in rows] == [["2.5", "1234.5"], ["-0.75", "12"], ["NA", "1.5e3"]]
    # text, numbers written with points (a column mixing both ways), integers alone and text with a number
    assert [r[2:] for r in rows] == [["red", "1.5", "3", "7,25"], ["blue", "2.5", "4", "text"],
                                     ["green", "0,5", "5", "1,0"]]


def test_decimal_commas_are_read_only_where_asked_or_where_the_delimiter_is_not_a_comma():
    def fresh():
        return [["2,5"], ["3"]]
    assert decimal_commas(fresh(), "auto", ",", set()) == []  # a comma file: "2,5" is a quoted text cell
    assert decimal_commas(fresh(), ".", ";", set()) == []
    rows = fresh()
    assert decimal_commas(rows, ",", ",", set()) == [0] and rows == [["2.5"], ["3"]]


def test_a_space_after_the_delimiter_does_not_keep_a_quoted_fields_quotes():
    assert split_csv('a, "b c", y\n1, "x, y", 0\n', "auto", "test") == [["a", "b c", "y"], ["1", "x, y", "0"]]


def european(path, rng, n, header="alpha;beta;colour;target"):
    """A semicolon-separated file with decimal commas, as spreadsheets in many locales save it: the target is
    decided by the two number columns alone."""
    a, b = rng.normal(size=n), rng.normal(loc=5, scale=2, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    target = np.where(a + 0.5 * (b - 5) > 0, "yes", "no")
    lines = [f"{x:.3f};{z:.3f};{c};{t}".replace(".", ",") for x, z, c, t in zip(a, b, colour, target, strict=True)]
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8-sig")
    return a, b, colour, target


def test_a_semicolon_file_with_decimal_commas_trains_on_its_numbers_and_predicts_either_way_written(tmp_path):
    rng = np.random.default_rng(0)
    european(tmp_path / "euro.csv", rng, 400)
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["train", "data=csv", f"data.path={tmp_path / 'euro.csv'}", "data.target=target",
                                 "trainer.max_epochs=30", *FAST, f"output_dir={out}"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "note: read '" in said and "euro.csv' as semicolon-separated (data.delimiter=auto" in said
    assert "2 column(s) of" in said and "written with decimal commas (2,5 = 2.5): alpha, beta" in said
    (run,) = out.iterdir()
    pre = json.loads((run / "preprocessing.json").read_text())
    assert any("semicolon-separated" in n for n in pre["notes"])
    assert pre["columns"]["names"] == ["alpha", "beta", "colour"]
    assert pre["columns"]["types"] == ["numeric", "numeric", "categorical"]
    summary = json.loads((run / "summary.json").read_text())
    # a linear rule of the two number columns: data seeds 0-2 x run seeds 42, 1 gave test/acc 0.967-1.0
    assert summary["metrics"]["test/acc"] > 0.85

    # new rows, written the European way and the plain way: the same predictions
    a, b, colour, _ = european(tmp_path / "new_euro.csv", np.random.default_rng(1), 20, "alpha;beta;colour;target")
    plain = tmp_path / "new_plain.csv"
    plain.write_text("alpha,beta,colour\n" + "".join(f"{x:.3f},{z:.3f},{c}\n" for x, z, c in zip(a, b, colour,
                                                                                                strict=True)))
    import gzip

    (tmp_path / "new_euro.csv.gz").write_bytes(gzip.compress((tmp_path / "new_euro.csv").read_bytes()))
    predicted = {}
    for name in ("new_euro.csv", "new_plain.csv", "new_euro.csv.gz"):
        result = runner.invoke(app, ["predict", str(run), str(tmp_path / name), "--output",
                                     str(tmp_path / f"p_{name}.csv")])
        assert result.exit_code == 0, result.output
        predicted[name] = [line.split(",")[-3:] for line in (tmp_path / f"p_{name}.csv").read_text().splitlines()[1:]]
    (tmp_path / "latin.csv").write_bytes("alpha,beta,colour\n0.5,6.1,rouge é\n".encode("latin-1"))
    refused = runner.invoke(app, ["predict", str(run), str(tmp_path / "latin.csv")])
    assert refused.exit_code == 2
    assert ("is not UTF-8 text: byte 0xe9 on line 2. New inputs are read in the encoding the run read its data in "
            "(utf-8)") in " ".join(refused.stderr.split()) and "data.encoding" not in refused.stderr
    assert len(predicted["new_euro.csv"]) == 20
    assert predicted["new_euro.csv"] == predicted["new_plain.csv"] == predicted["new_euro.csv.gz"]


def test_decimal_point_leaves_decimal_comma_columns_as_text_and_says_so(tmp_path):
    european(tmp_path / "euro.csv", np.random.default_rng(0), 120)
    result = runner.invoke(app, ["config", "show", "data=csv", f"data.path={tmp_path / 'euro.csv'}",
                                 "data.target=target", "data.decimal=.", *FAST])
    assert result.exit_code == 0, result.output  # composes: '.' is one of the choices
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["train", "data=csv", f"data.path={tmp_path / 'euro.csv'}", "data.target=target",
                                 "data.decimal=.", "trainer.max_epochs=1", *FAST, f"output_dir={out}"])
    assert result.exit_code == 0, result.output
    assert "left out 2 text column(s)" in " ".join(result.output.split())


def test_a_ragged_file_names_the_delimiter_it_was_read_with_and_how_to_choose_one(tmp_path):
    (tmp_path / "r.csv").write_text("a,b,y\n1,2,0\n3,4\n")
    result = runner.invoke(app, ["train", "data=csv", f"data.path={tmp_path / 'r.csv'}", "data.target=y", *FAST,
                                 f"output_dir={tmp_path / 'out'}"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "row 3 has 2 fields, the header has 3. It was read as comma-separated" in message
    assert "\"data.delimiter=';'\"" in message and not (tmp_path / "out").exists()


def test_time_series_and_text_files_find_their_delimiter_too(tmp_path):
    series = tmp_path / "load.csv"
    series.write_text("t;demand\n" + "".join(f"{i};{10 + i % 7},5\n" for i in range(60)))
    table = timeseries_csv(0, str(series), "demand", window=5)
    assert table.x.shape == (55, 5, 1) and table.x[0, :, 0].tolist() == [10.5, 11.5, 12.5, 13.5, 14.5]
    assert any("semicolon-separated" in n for n in table.notes) and any("decimal commas" in n for n in table.notes)
    texts = tmp_path / "t.tsv"
    texts.write_text("text\tlabel\nthe film, was great\tpos\na dull plot\tneg\n")
    table = text_csv(0, str(texts))
    assert table.x.tolist() == ["the film, was great", "a dull plot"] and table.y.tolist() == ["pos", "neg"]
    assert table.notes == [f"read '{texts}' as tab-separated (data.delimiter=auto; to choose: "
                           "\"data.delimiter='\\t'\")"]


TABLE = "x,colour,y\n" + "".join(f"{i},{'rouge é' if i % 2 else 'bleu'},{i % 2}\n" for i in range(12))


@pytest.mark.parametrize("packed", ["gzip", "bz2", "xz", "zip"])
def test_a_compressed_csv_is_read_as_its_content_whatever_its_name(tmp_path, packed):
    import bz2
    import gzip
    import lzma
    import zipfile

    raw = TABLE.encode()
    path = tmp_path / "table.data"  # told by its first bytes, not its name
    if packed == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("table.csv", raw)
    else:
        path.write_bytes({"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[packed](raw))
    table = csv(0, str(path), "y")
    assert table.x[:, 0].tolist() == list(range(12)) and table.x[1, 1] == "rouge é"


def test_a_zip_of_several_files_or_a_damaged_archive_is_refused_naming_it(tmp_path):
    import gzip
    import zipfile

    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", TABLE)
        archive.writestr("b.csv", TABLE)
    with pytest.raises(DataError, match=r"'.*two.zip' \(data.path\) is a zip archive of 2 files \(a.csv, b.csv\): "
                                        "dlcli reads a zip that holds one file"):
        csv(0, str(path), "y")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(TABLE.encode())[:30])
    with pytest.raises(DataError, match=r"'.*cut.csv.gz' \(data.path\) is a damaged compressed file"):
        csv(0, str(tmp_path / "cut.csv.gz"), "y")


def test_a_file_in_another_encoding_is_read_when_named_and_refused_naming_the_option_when_not(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(TABLE.encode("latin-1"))
    with pytest.raises(DataError, match=r"is not UTF-8 text: byte 0xe9 on line 3. Name the encoding it was saved "
                                        r"in \(data.encoding=latin-1"):
        csv(0, str(path), "y")
    assert csv(0, str(path), "y", encoding="latin-1").x[1, 1] == "rouge é"
    with pytest.raises(DataError, match="data.encoding='klingon' is not a text encoding Python knows"):
        csv(0, str(path), "y", encoding="klingon")


def test_gaps_in_a_series_are_filled_with_the_value_before_or_a_straight_line():
    values = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [8.0, 7.0], [np.nan, 9.0]])
    assert fill_gaps(values, "previous").tolist() == [[2, 1], [2, 1], [2, 1], [8, 7], [8, 9]]
    assert fill_gaps(values, "interpolate").tolist() == [[2, 1], [2, 3], [5, 5], [8, 7], [8, 9]]


def test_a_series_with_missing_cells_is_refused_naming_the_cell_or_filled_with_a_note(tmp_path):
    """Sensor logs as they come (the UCI household power file: semicolons, '?' for a missing reading)."""
    path = tmp_path / "power.txt"
    readings = [f"{1 + (i % 5) * 0.5:.3f}" for i in range(40)]
    readings[7] = "?"
    readings[8] = ""
    path.write_text("Time;Global_active_power\n" + "".join(f"{i};{r}\n" for i, r in enumerate(readings)))
    with pytest.raises(DataError, match=r"row 9, column 'Global_active_power': '\?' is not a number. .* add it "
                                        "to data.na_values and set data.missing=previous or interpolate"):
        timeseries_csv(0, str(path), "Global_active_power", window=4)
    na = ["", "NA", "?"]
    with pytest.raises(DataError, match=r"row 9, column 'Global_active_power': '\?' is a missing value "
                                        r"\(data.na_values\). Fill it in, or fill every gap: data.missing=previous"):
        timeseries_csv(0, str(path), "Global_active_power", window=4, na_values=na)
    table = timeseries_csv(0, str(path), "Global_active_power", window=4, na_values=na, missing="interpolate")
    series = np.concatenate([table.x[0, :, 0], table.y[:36]])  # the rows, as filled (window 4, horizon 1)
    assert series[6:10].tolist() == [1.5, 2.0, 2.5, 3.0]  # rows 7 and 8 on the line from 1.5 to 3.0
    assert table.notes[-1] == ("filled 2 missing cells in 2 of 40 rows (columns Global_active_power) with a "
                               "straight line between the values around it (data.missing=interpolate; a gap at the "
                               "start takes the first value after it)")
    previous = timeseries_csv(0, str(path), "Global_active_power", window=4, na_values=na, missing="previous")
    assert np.concatenate([previous.x[0, :, 0], previous.y[:36]])[6:10].tolist() == [1.5, 1.5, 1.5, 3.0]


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "is an Excel 97-2003 workbook (.xls), not a CSV file"),
    (b"PAR1" + bytes(100), "is a Parquet file, not a CSV file"),
    ("xlsx", "is an Excel workbook (.xlsx), not a CSV file. Save the sheet as CSV"),
])
def test_a_spreadsheet_or_parquet_file_is_named_for_what_it_is(tmp_path, content, expected):
    import zipfile

    path = tmp_path / "sales.csv"  # named .csv by mistake: told by its bytes
    if content == "xlsx":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("xl/workbook.xml", "<workbook/>")
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(f"'{path}' (data.path) {expected}")):
        csv(0, str(path), "y")
