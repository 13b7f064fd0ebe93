"""`dlcli serve`: request bodies read by the same code as `dlcli predict`'s files (fast), and a real server
process answering over HTTP as `dlcli predict` does (slow)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.errors import DataError
from dlcli.serve.inputs import json_inputs
from dlcli.training.predict import read_inputs
from dlcli.training.reload import LoadedRun

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1"]  # as in conftest.py


def _table_run(tmp_path: Path) -> LoadedRun:
    """A run's saved description without a model: enough to read inputs (nothing here runs a model)."""
    config = {"data": {"name": "iris", "target": "species"}, "model": {"name": "mlp"}}
    pre = {"task": "multiclass", "feature_names": ["a", "b", "c"], "classes": ["x", "y"], "input_shape": [3],
           "scaling": {"method": "none"}, "out_features": 2}
    return LoadedRun(tmp_path, config, pre)


# ------------------------------------------------------------------------------ fast: request bodies -> inputs

def test_json_records_read_as_the_csv_with_the_same_rows(tmp_path):
    run = _table_run(tmp_path)
    (tmp_path / "in.csv").write_text("c,species,a,b\n3,x,1.5,2\n-1e-3,y,0,7.25\n")
    from_csv = read_inputs(run, tmp_path / "in.csv")
    from_json = json_inputs(run, [{"a": 1.5, "b": 2, "c": 3}, {"c": -1e-3, "b": "7.25", "a": 0, "other": None}])
    assert from_json.ids == [0, 1]
    np.testing.assert_array_equal(from_json.raw, from_csv.raw)
    assert from_json.raw.tolist() == [[1.5, 2.0, 3.0], [0.0, 7.25, np.float32(-1e-3)]]
    # a flat array per input, in the run's feature order, is read as an NPZ row would be
    np.testing.assert_array_equal(json_inputs(run, [[1.5, 2, 3], [0, 7.25, -1e-3]]).raw, from_csv.raw)


def test_an_upload_to_a_run_that_takes_no_images_says_to_send_json(tmp_path):
    from dlcli.serve.inputs import image_uploads

    with pytest.raises(DataError) as refused:
        image_uploads(_table_run(tmp_path), [("iris.csv", b"a,b,c\n1,2,3\n")])
    message = str(refused.value)
    assert message.startswith(f"file: uploads are image files, and run {tmp_path.name} takes inputs of shape (3,), "
                              "not images. Send its inputs as JSON instead")
    assert "holds images" not in message


def test_json_records_of_a_csv_run_encoded_as_its_csv_cells(tmp_path):
    """Typed CSV columns: numbers, categories, missing values (null in JSON), encoded by the run's columns."""
    from dlcli.data.columns import encode_columns, fit_columns

    cells = np.array([["1.5", "red"], ["", "blue"], ["3", ""], ["0.5", "red"]], dtype=object)
    spec = {"types": {"size": "numeric", "colour": "categorical"}, "na_values": ["", "NA"], "missing": "impute"}
    enc = fit_columns(cells, ["size", "colour"], spec, np.arange(4))
    config = {"data": {"name": "csv", "target": "y"}, "model": {"name": "mlp"}}
    run = LoadedRun(tmp_path, config, {"task": "binary", "columns": enc, "input_shape": [len(enc["encoded_names"])],
                                       "classes": ["0", "1"], "scaling": {"method": "none"}, "out_features": 1})
    (tmp_path / "in.csv").write_text("y,colour,size\n0,blue,2\n1,NA,\n0,green,7\n")
    from_csv = encode_columns(read_inputs(run, tmp_path / "in.csv").raw, enc)
    items = [{"size": 2, "colour": "blue"}, {"size": None, "colour": None}, {"size": "7", "colour": "green"}]
    np.testing.assert_array_equal(encode_columns(json_inputs(run, items).raw, enc), from_csv)
    with pytest.raises(DataError, match=r"inputs, row 1, column 'size': 'big' is not a number"):
        json_inputs(run, [items[0], {"size": "big", "colour": "red"}])
    with pytest.raises(DataError, match=r"inputs\[0\]\.colour: expected a number or a string, got \[1\]"):
        json_inputs(run, [{"size": 1, "colour": [1]}])
    with pytest.raises(DataError, match=r"inputs\[1\] lacks 1 of the run's feature columns: colour"):
        json_inputs(run, [items[0], {"size": 1}])


@pytest.mark.parametrize(("items", "message"), [
    ([{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": "abc", "c": 3}], "inputs[1].b: 'abc' is not a number"),
    ([{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": True, "c": 3}], "inputs[1].b: True is not a number"),
    ([{"a": 1, "c": 3}], "inputs[0] lacks 1 of the run's feature columns: b"),
    ([{"a": 1, "b": 2, "c": 3}, [1, 2, 3]], "inputs[1]: an array, but inputs[0] is a record"),
    ([[1, 2, 3], [1, 2]], "inputs[1]: shape (2,) differs from inputs[0]'s (3,)"),
    ([[1, 2, 3], [[1, 2], [3]]], "inputs[1]: expected a nested array of numbers"),
    ([[1, 2, 3], [1, "x", 3]], "inputs[1]: expected a nested array of numbers"),
    ([[1, 2, 3, 4]], "inputs holds inputs of shape (4,); run"),
    (["a text"], "inputs holds texts, but run"),
    ([None], "inputs[0]: expected"),
    ([], "inputs: empty"),
])
def test_bad_json_inputs_are_refused_naming_the_item(tmp_path, items, message):
    with pytest.raises(DataError) as info:
        json_inputs(_table_run(tmp_path), items)
    assert message in str(info.value)


def test_json_sequences_of_a_variable_length_run_are_padded_as_an_npz_would_be(tmp_path):
    config = {"data": {"name": "npz"}, "model": {"name": "gru"}}
    pre = {"task": "binary", "input_shape": [5, 2], "variable_length": {"pad_value": None, "max_length": 5},
           "scaling": {"method": "none"}, "classes": ["0", "1"], "out_features": 1}
    run = LoadedRun(tmp_path, config, pre)
    inputs = json_inputs(run, [[[1, 2], [3, 4], [5, 6]], [[1, 1]] * 5, [[0, 0]]])
    assert inputs.raw.shape == (3, 5, 2)
    assert run.lengths(inputs.raw).tolist() == [3, 5, 1]
    np.testing.assert_array_equal(inputs.raw[0, :3], [[1, 2], [3, 4], [5, 6]])
    with pytest.raises(DataError, match="sample 0 holds a missing or infinite value at step 1"):
        json_inputs(run, [[[1, 2], [None, 4], [5, 6]]])


def test_results_carry_predicts_labels_probabilities_and_values(tmp_path):
    from dlcli.serve.inputs import results

    run = _table_run(tmp_path)
    out = np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32)
    assert results(run, [0, 1], out) == [
        {"id": 0, "label": "y", "probabilities": {"x": 0.25, "y": 0.75}},
        {"id": 1, "label": "x", "probabilities": {"x": pytest.approx(0.9), "y": pytest.approx(0.1)}}]
    run.preprocessing.update(task="regression", classes=None)
    assert results(run, ["a", "b"], np.array([1.5, -2.0])) == [{"id": "a", "value": 1.5}, {"id": "b", "value": -2.0}]
    assert results(run, [0], np.array([[1.0, 2.0]])) == [{"id": 0, "value": [1.0, 2.0]}]


def test_concurrent_requests_share_forward_passes_and_a_failing_one_fails_alone():
    import asyncio

    from dlcli.serve.batcher import Batcher
    from dlcli.training.predict import Inputs

    calls = []

    def run_batch(raw):
        calls.append(len(raw))
        if np.isnan(raw).any():
            raise ValueError("a NaN")
        return raw.sum(axis=1) * 2

    async def main():
        batcher = Batcher(run_batch, max_batch=8, max_wait=0.01)
        batcher.start()
        requests = [Inputs(list(range(n)), np.full((n, 3), float(i)), "x") for i, n in enumerate([1, 2, 3, 1, 4])]
        requests[3].raw[0, 0] = np.nan
        for _ in requests:
            batcher.arrive()
        tasks = [asyncio.ensure_future(batcher.predict(r)) for r in requests]
        for _ in requests:
            batcher.left()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return answers

    answers = asyncio.run(main())
    for i, answer in enumerate(answers):
        if i == 3:
            assert isinstance(answer, ValueError)
        else:
            np.testing.assert_array_equal(answer, np.full(len(answer), 6.0 * i))
    assert [len(a) for i, a in enumerate(answers) if i != 3] == [1, 2, 3, 4]
    # 1+2+3+1 inputs in one pass (the 4 would pass max_batch), which fails on the NaN; then each alone; then the 4
    assert calls == [7, 1, 2, 3, 1, 4]


def test_serve_without_the_extra_exits_2_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed: find_spec gives None
    result = runner.invoke(app, ["serve", "last", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert 'pip install "dlcli[serve]"' in result.output


def test_serve_a_missing_run_or_a_busy_port_exits_2(tmp_path):
    result = runner.invoke(app, ["serve", "nope", "--output-dir", str(tmp_path), "--port", str(_free_port())])
    assert result.exit_code == 2
    assert "RUN is a run folder, a run id" in result.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "nope", "--output-dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


@pytest.mark.slow
def test_help_does_not_import_fastapi():
    code = ("import sys; from dlcli.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['serve', '--help']); assert r.exit_code == 0 and '--max-batch' in r.output; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -------------------------------------------------------------------------------- slow: a real server process

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _post(url: str, payload) -> tuple[int, dict]:
    return _request(url + "/predict", json.dumps(payload).encode())


def _claims_a_large_body(url: str) -> tuple[int, dict]:
    """A request whose Content-Length says 20 MB: refused before the body is read."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(20_000_000))
        conn.endheaders(b'{"inputs": [')
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "dlcliboundary7MA4YWxkTrZu0gW"
    parts = []
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@contextlib.contextmanager
def serving(run_dir: Path, *args: str):
    """`python -m dlcli serve RUN` on a free port, killed on the way out; yields its base URL."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "dlcli", "serve", str(run_dir), "--port", str(port),
                                "--threads", "1", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode}: {process.stdout.read()}")
            with contextlib.suppress(OSError):
                if _request(url + "/health")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer /health within 180 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()  # uvicorn stops its worker processes on SIGTERM (SIGKILL would orphan them)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()


def _train(out: Path, *overrides: str) -> Path:
    from dlcli.config.compose import compose
    from dlcli.training.train import train

    return train(compose([f"output_dir={out}", *FAST, "trainer.max_epochs=3", *overrides]).config).run_dir


def _write_images(root: Path) -> None:
    """Two classes of 8x8 grey PNGs: horizontal and vertical stripes, with noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, axis in (("horizontal", 0), ("vertical", 1)):
        (root / label).mkdir(parents=True)
        for i in range(12):
            stripes = np.zeros((8, 8))
            stripes[::2] = 200
            img = (stripes if axis == 0 else stripes.T) + rng.integers(0, 50, (8, 8))
            Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="L").save(root / label / f"{label}_{i}.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("outputs")
    images = tmp_path_factory.mktemp("images")
    _write_images(images)
    return {
        "table": _train(out, "data=iris", "model.hidden=[16]"),
        "images": _train(out, "data=image_folder", f"data.root={images}", "data.size=[8,8]", "data.batch_size=8",
                         "data.val_fraction=0.25", "data.test_fraction=0.25", "model.hidden=[16]"),
        "text": _train(out, "experiment=text_gru", "data.n_samples=300", "data.max_length=8",
                       "model.layers=[{embedding:{dim:8}},{gru:{units:8}},{dense:{}}]"),
        "images_dir": images,
    }


def _predicted(run_dir: Path, path: Path) -> list[dict]:
    """`dlcli predict`'s rows for a file, through the library function the command calls."""
    from dlcli.training.predict import predict
    from dlcli.training.reload import load_run

    return predict(load_run(str(run_dir)), path).rows


def _assert_same(served: list[dict], rows: list[dict]) -> None:
    assert len(served) == len(rows)
    for got, row in zip(served, rows, strict=True):
        assert got["label"] == row["prediction"]
        probs = {k[len("prob_"):]: v for k, v in row.items() if k.startswith("prob_")}
        assert got["probabilities"].keys() == probs.keys()
        np.testing.assert_allclose(list(got["probabilities"].values()), list(probs.values()), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_table_run_served_as_predict_predicts_and_bad_bodies_get_422(runs, tmp_path):
    run_dir = runs["table"]
    from dlcli.training.reload import load_run

    features = load_run(str(run_dir)).preprocessing["feature_names"]
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 7.9, (25, len(features))).round(3)
    path = tmp_path / "new.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(features)
        writer.writerows(values.tolist())
    rows = _predicted(run_dir, path)
    records = [dict(zip(features, map(float, v), strict=True)) for v in values]
    with serving(run_dir) as url:
        status, health = _request(url + "/health")
        assert (status, health) == (200, {"status": "ok", "run": run_dir.name})
        status, body = _post(url, {"inputs": records})
        assert status == 200 and body["run"] == run_dir.name
        _assert_same(body["predictions"], rows)
        assert [p["id"] for p in body["predictions"]] == list(range(25))

        bad = [dict(r) for r in records[:5]]
        bad[3][features[1]] = "abc"
        status, body = _post(url, {"inputs": bad})
        assert status == 422 and body["detail"] == f"inputs[3].{features[1]}: 'abc' is not a number"
        status, body = _post(url, {"input": records})
        assert status == 422 and "inputs: Field required" in body["detail"] and "input: Extra inputs" in body["detail"]
        status, body = _request(url + "/predict", b"{not json")
        assert status == 422 and "JSON" in body["detail"]
        status, body = _post(url, {"inputs": [{k: v for k, v in records[0].items() if k != features[0]}]})
        assert status == 422 and body["detail"].startswith(f"inputs[0] lacks 1 of the run's feature columns: "
                                                           f"{features[0]}")
        status, body = _claims_a_large_body(url)
        assert status == 413 and "over 16,777,216 bytes" in body["detail"]
        status, body = _post(url, {"inputs": records[:1]})  # the server still serves
        assert status == 200
        _assert_same(body["predictions"], rows[:1])

        # 200 concurrent requests: all answered, each with its own inputs' predictions, in shared forward passes
        def one(i: int):
            return _post(url, {"inputs": records[i % 25:i % 25 + 1 + i % 3]})

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(one, range(200)))
        assert all(status == 200 for status, _ in answers)
        for i, (_, body) in enumerate(answers):
            _assert_same(body["predictions"], rows[i % 25:i % 25 + 1 + i % 3])
        status, meta = _request(url + "/metadata")
        assert status == 200
        serving_info = meta["serving"]
        assert serving_info["forward_passes"] < 200 + 7 < serving_info["inputs_predicted"]  # micro-batched
        assert meta["run"] == run_dir.name and meta["task"] == "multiclass"
        assert meta["classes"] == load_run(str(run_dir)).classes and len(meta["classes"]) == 3
        assert [c["name"] for c in meta["input"]["columns"]] == features
        assert meta["preprocessing"]["scaling"] == "standard"
        assert meta["metrics"]["test/acc"] == json.loads((run_dir / "summary.json").read_text())["metrics"]["test/acc"]
        with urllib.request.urlopen(url + "/docs", timeout=30) as docs:
            assert docs.status == 200 and b"swagger" in docs.read().lower()
        status, spec = _request(url + "/openapi.json")
        assert status == 200 and "/predict" in spec["paths"]


@pytest.mark.slow
def test_image_run_served_from_arrays_and_uploads_as_predict_predicts(runs):
    run_dir, images = runs["images"], runs["images_dir"]
    files = sorted(images.rglob("*.png"))[::3]
    folder = images.parent / f"{images.name}_some"
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    rows = _predicted(run_dir, folder)  # sorted by file name
    from PIL import Image

    by_name = {f.name: f for f in files}
    names = [row["id"] for row in rows]
    with serving(run_dir) as url:
        body, content_type = _multipart([(n, by_name[n].read_bytes()) for n in names])
        status, answer = _request(url + "/predict", body, content_type)
        assert status == 200, answer
        assert [p["id"] for p in answer["predictions"]] == names
        _assert_same(answer["predictions"], rows)
        # the same pixels as nested arrays (height, width), grey 0..255 as the PNGs hold them
        pixels = [np.asarray(Image.open(by_name[n])).astype(int).tolist() for n in names]
        status, answer = _post(url, {"inputs": pixels})
        assert status == 200, answer
        _assert_same(answer["predictions"], rows)
        flat = [np.ravel(p).tolist() for p in pixels]  # flat rows, as an NPZ of (N, 64) gives them
        _assert_same(_post(url, {"inputs": flat})[1]["predictions"], rows)

        body, content_type = _multipart([("broken.png", b"not an image at all")])
        status, answer = _request(url + "/predict", body, content_type)
        assert status == 422 and "cannot read image 'broken.png'" in answer["detail"]
        big = io.BytesIO()
        Image.new("L", (5000, 4000)).save(big, format="PNG")
        body, content_type = _multipart([("big.png", big.getvalue())])
        status, answer = _request(url + "/predict", body, content_type)
        assert status == 413 and "big.png" in answer["detail"] and "5000x4000" in answer["detail"]
        status, answer = _post(url, {"inputs": [[[1, 2], [3, 4]]]})
        assert status == 422 and "shape" in answer["detail"]
        status, meta = _request(url + "/metadata")
        assert meta["input"]["kind"] == "image" and meta["input"]["shape"] == [1, 8, 8]
        assert meta["classes"] == ["horizontal", "vertical"]


@pytest.mark.slow
def test_text_run_served_as_predict_predicts(runs, tmp_path):
    run_dir = runs["text"]
    texts = ["the movie was not good", "great acting but a dull plot", "zzz qqq unknown words", "loved it"]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n")
    rows = _predicted(run_dir, path)
    with serving(run_dir) as url:
        status, answer = _post(url, {"inputs": texts})
        assert status == 200, answer
        _assert_same(answer["predictions"], rows)
        status, answer = _post(url, {"inputs": texts[:1] + [3]})
        assert status == 422 and "inputs[1]" in answer["detail"]
        status, meta = _request(url + "/metadata")
        assert meta["input"]["kind"] == "text" and meta["input"]["max_length"] == 8


@pytest.mark.slow
def test_onnx_backend_serves_the_runs_export(runs):
    pytest.importorskip("onnxruntime")
    run_dir = runs["table"]
    from dlcli.training.reload import load_run

    features = load_run(str(run_dir)).preprocessing["feature_names"]
    records = [dict(zip(features, v, strict=True)) for v in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3])]
    with serving(run_dir) as url:
        expected = _post(url, {"inputs": records})[1]["predictions"]
    with serving(run_dir, "--backend", "onnx") as url:
        status, answer = _post(url, {"inputs": records})
    assert (run_dir / "export" / "model.onnx").is_file()  # exported where `dlcli export` puts it
    assert status == 200
    for got, want in zip(answer["predictions"], expected, strict=True):
        assert got["label"] == want["label"]
        np.testing.assert_allclose(list(got["probabilities"].values()), list(want["probabilities"].values()),
                                   atol=1e-5)


@pytest.mark.slow
def test_two_worker_processes_serve_the_same_predictions(runs, tmp_path):
    run_dir = runs["table"]
    from dlcli.training.reload import load_run

    features = load_run(str(run_dir)).preprocessing["feature_names"]
    path = tmp_path / "two.csv"
    path.write_text(",".join(features) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    rows = _predicted(run_dir, path)
    records = [dict(zip(features, v, strict=True)) for v in ([5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3])]
    with serving(run_dir, "--workers", "2") as url:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post(url, {"inputs": records}), range(40)))
    assert all(status == 200 for status, _ in answers)
    for _, body in answers:
        _assert_same(body["predictions"], rows)
