"""No code from configuration: `_target_` keys, `!!python` YAML tags and unknown resolvers are refused before
anything runs, and the side effect they would have had never happens."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose
from dlcli.config.safety import code_problems, resolver_names
from dlcli.config.validate import ConfigError, validate

runner = CliRunner()
FAST = ["trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "threads=1", "trainer.max_epochs=1"]


def train(tmp_path, *args):
    return runner.invoke(app, ["train", *args, f"output_dir={tmp_path / 'out'}", *FAST])


def no_run_folder(tmp_path) -> bool:
    out = tmp_path / "out"
    return not out.exists() or not any(out.iterdir())


def config_dir(tmp_path, files: dict[str, str]):
    root = tmp_path / "conf"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("yaml", [
    "name: mlp\n_target_: os.system\n",
    "name: mlp\nhidden: {_target_: os.system, _args_: [touch pwned]}\n",
    "name: mlp\nhidden: [{_call_: true}]\n",
], ids=["top", "nested", "in-list"])
def test_target_in_a_config_file_is_refused_before_anything_runs(tmp_path, yaml):
    conf = config_dir(tmp_path, {"model/evil.yaml": yaml})
    for args in (["train", "-C", str(conf), "model=evil", f"output_dir={tmp_path / 'out'}", *FAST],
                 ["config", "show", "--no-check", "-C", str(conf), "model=evil"]):  # refused even unchecked
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        assert "is refused: it makes a config import and call Python code" in message
        assert f"in {conf / 'model' / 'evil.yaml'}" in message  # the file is named
        assert "--plugin MODULE" in message  # and the way to bring code in
        assert "Traceback" not in result.output
    assert no_run_folder(tmp_path)


@pytest.mark.parametrize("override", [
    "+_target_=os.system", "+model._target_=os.system", "model._target_=os.system",
    "+model._partial_=true", "finetune.stages=[{epochs:1,_target_:os.system}]",
])
def test_target_in_an_override_is_refused(tmp_path, override):
    result = train(tmp_path, override)
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "is refused: it makes a config import and call Python code" in message
    assert f"from override '{override}'" in message
    assert no_run_folder(tmp_path)


@pytest.mark.parametrize("tag", ["python/object/apply:os.system", "python/object/new:os.system"])
def test_python_yaml_tags_are_refused_and_never_run(tmp_path, tag):
    pwned = tmp_path / "pwned"
    conf = config_dir(tmp_path, {"model/evil.yaml": f'name: mlp\nhidden: !!{tag} ["touch {pwned}"]\n'})
    result = train(tmp_path, "-C", str(conf), "model=evil")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert f"{conf / 'model' / 'evil.yaml'}, line 2: the YAML tag '!!{tag}' is refused" in message
    assert not pwned.exists()
    assert no_run_folder(tmp_path)


def test_python_name_tag_in_the_primary_config_is_refused(tmp_path):
    conf = config_dir(tmp_path, {"train.yaml": "defaults:\n  - _self_\nseed: !!python/name:os.system\n"})
    with pytest.raises(ConfigError, match=r"train.yaml, line 3: the YAML tag '!!python/name:os.system' is refused"):
        compose([], [conf])


@pytest.fixture
def boom(tmp_path):
    """A resolver some library might register (some register `eval`): it leaves a file when called."""
    marker = tmp_path / "resolved"

    def resolve(*args):
        marker.write_text("ran")
        return 1

    OmegaConf.register_new_resolver("boom", resolve)
    yield marker
    OmegaConf.clear_resolver("boom")


def test_a_resolver_outside_the_safe_ones_is_refused_and_never_called(tmp_path, boom):
    conf = config_dir(tmp_path, {"model/res.yaml": "name: mlp\nhidden: ['${boom:}']\n"})
    result = train(tmp_path, "-C", str(conf), "model=res")
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "model.hidden[0]: '${boom:}': the resolver 'boom' is refused: a config may only use oc.env" in message
    assert f"in {conf / 'model' / 'res.yaml'}" in message
    for override in ("optimizer.lr=${boom:}", "optimizer.lr='${oc.select:${boom:},1}'",
                     "optimizer.lr=${oc.decode:'1'}"):  # oc.decode would resolve a string built at run time
        result = train(tmp_path, override)
        assert result.exit_code == 2 and "is refused" in result.stderr, result.output
    assert not boom.exists()
    assert no_run_folder(tmp_path)


def test_safe_resolvers_work(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCLI_DATA_DIR", str(tmp_path))
    composed = compose(["data=csv", "data.path=${oc.env:DLCLI_DATA_DIR}/my.csv", "data.target=y",
                        "name=${model.name}-${data.name}"])
    assert composed.config["data"]["path"] == f"{tmp_path}/my.csv"
    assert composed.config["name"] == "mlp-csv"


def test_resolver_names_are_parsed_as_omegaconf_parses_them():
    assert resolver_names("${a:${b.c:1}} ${x.y}") == ["a", "b.c"]
    assert resolver_names(r"\${eval:1}") == []  # escaped: plain text
    assert resolver_names("${${x}:1}") == ["${x}"]  # a name made at run time
    assert code_problems({"k": "${${x}:1}"})[0][1].startswith("'${${x}:1}': a resolver name made by an interpolation")


def test_validate_refuses_code_keys_on_its_own(make_config):
    """train(cfg) from Python (or a resumed run's config.yaml) goes through validate: refused there too."""
    cfg = make_config().config
    cfg["model"]["_target_"] = "os.system"
    with pytest.raises(ConfigError, match=r"^1 problem in the config:\n  - model._target_: '_target_' is refused"):
        validate(cfg)
