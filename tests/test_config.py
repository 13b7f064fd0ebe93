"""Composition, overrides, validation and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlcli.config.compose import compose, shipped_config_dir
from dlcli.config.validate import ConfigError, validate
from dlcli.errors import DlcliError


def problems_of(*overrides, config_dirs=()):
    with pytest.raises(ConfigError) as info:
        compose(list(overrides), list(config_dirs))
    return info.value.problems, str(info.value)


def test_defaults_compose_to_digits_mlp_adam():
    cfg = compose([]).config
    assert cfg["data"]["name"] == "digits"
    assert cfg["model"] == {"name": "mlp", "init": "default", "pretrained": None, "allow_changed_data": False,
                            "compile": False, "channels_last": False,
                            "max_epochs": 30, "min_steps": None, "patience": 10, "hidden": [256],
                            "activation": "relu", "dropout": 0.1, "norm": "none"}
    assert cfg["optimizer"]["name"] == "adam" and cfg["optimizer"]["lr"] == 0.001
    assert cfg["name"] == "digits-mlp"  # interpolated from data and model names
    assert cfg["output_dir"] == "outputs"
    assert list(cfg)[:4] == ["seed", "name", "output_dir", "task"]
    assert set(cfg["callbacks"]) == {"model_checkpoint", "early_stopping"}


def test_overrides_group_value_add_delete():
    cfg = compose(["model=perceptron", "optimizer=sgd", "optimizer.lr=0.05", "optimizer.momentum=0.9",
                   "~callbacks.early_stopping", "data.batch_size=64"]).config
    assert cfg["model"] == {"name": "perceptron", "init": "default", "pretrained": None,
                            "allow_changed_data": False, "compile": False,
                            "channels_last": False, "max_epochs": 30, "min_steps": None, "patience": 10, "bias": True}
    assert cfg["optimizer"]["lr"] == 0.05 and cfg["optimizer"]["momentum"] == 0.9
    assert "early_stopping" not in cfg["callbacks"]
    assert cfg["data"]["batch_size"] == 64


def test_null_trims_a_callback_and_int_becomes_float():
    cfg = compose(["callbacks.early_stopping=null", "optimizer.lr=1"]).config
    assert "early_stopping" not in cfg["callbacks"]
    assert cfg["optimizer"]["lr"] == 1.0 and isinstance(cfg["optimizer"]["lr"], float)


def test_unknown_override_key_suggests_the_closest_key():
    problems, message = problems_of("optimizer.lrr=0.1")
    assert [p.path for p in problems] == ["optimizer.lrr"]
    assert "Did you mean 'lr'?" in message
    assert "from override 'optimizer.lrr=0.1'" in message


def test_unknown_group_option_suggests_the_closest_option():
    problems, message = problems_of("model=mlpp")
    assert problems[0].path == "model"
    assert "Did you mean 'model=mlp'?" in message
    assert "perceptron" in message  # the available options are listed


def test_all_problems_are_reported_together():
    problems, message = problems_of("model=mlpp", "optimizer.lrr=0.1", "data.scaling=zscore",
                                    "trainer.max_epochs=abc", "+foo=1")
    assert {p.path for p in problems} == {"model", "optimizer.lrr", "data.scaling", "trainer.max_epochs", "foo"}
    assert message.startswith("5 problems in the config:")
    assert "expected an integer >= 1 or null, got 'abc' (string)" in message  # null: the model's max_epochs
    assert "expected one of 'none', 'minmax', 'symmetric', 'standard', 'channel', 'auto', got 'zscore'" in message


def test_wrong_type_for_a_component_param():
    _, message = problems_of("model.hidden=wide")
    assert "model.hidden: expected a list of integers, each >= 1, got 'wide' (string)" in message


def test_unknown_key_in_a_users_yaml_names_the_file(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "typo.yaml").write_text("name: mlp\nhiden: [32]\n")
    problems, message = problems_of("model=typo", config_dirs=[tmp_path])
    assert problems[0].path == "model.hiden"
    assert "Did you mean 'hidden'?" in message
    assert str(tmp_path / "model" / "typo.yaml") in message


def test_unknown_component_name_in_yaml(tmp_path):
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "mine.yaml").write_text("name: adamm\nlr: 0.1\n")
    _, message = problems_of("optimizer=mine", config_dirs=[tmp_path])
    assert "unknown optimizer 'adamm'. Did you mean 'adam'?" in message


def test_missing_required_params_are_named():
    problems, message = problems_of("data=csv")
    assert {p.path for p in problems} == {"data.path", "data.target"}
    assert "set it with data.path=" in message


def test_a_value_a_config_marks_required_must_be_given(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tuned.yaml").write_text("name: mlp\npretrained: ???\n")
    problems, message = problems_of("model=tuned", config_dirs=[tmp_path])
    assert [p.path for p in problems] == ["model.pretrained"]
    assert "this config needs a value" in message and "set it with model.pretrained=..." in message
    assert compose(["model=tuned", "model.pretrained=some_run"], [tmp_path]).config["model"]["pretrained"] == "some_run"


def test_bad_override_syntax_is_a_config_error():
    problems, message = problems_of("x=[")
    assert "cannot parse override 'x=['" in message


def test_fractions_must_leave_training_data():
    _, message = problems_of("data.val_fraction=0.6", "data.test_fraction=0.5")
    assert "leave data to train on" in message


def test_user_config_dir_adds_a_model(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_net.yaml").write_text("name: mlp\nhidden: [64, 32]\nactivation: gelu\n")
    composed = compose(["model=my_net"], [tmp_path])
    assert composed.config["model"]["hidden"] == [64, 32]
    assert composed.config["model"]["activation"] == "gelu"
    assert composed.config["model"]["dropout"] == 0.1  # left out: the builder's default is filled in
    assert composed.notes == []


def test_user_file_named_like_a_shipped_one_wins_and_is_reported(tmp_path):
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "adam.yaml").write_text("name: adam\nlr: 0.005\n")
    composed = compose([], [tmp_path])
    assert composed.config["optimizer"]["lr"] == 0.005
    assert composed.notes == [f"{tmp_path / 'optimizer' / 'adam.yaml'} takes precedence over "
                              f"{shipped_config_dir() / 'optimizer' / 'adam.yaml'}"]


def test_first_user_dir_wins_over_the_second(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, lr in ((a, 0.1), (b, 0.2)):
        (d / "optimizer").mkdir(parents=True)
        (d / "optimizer" / "fast.yaml").write_text(f"name: sgd\nlr: {lr}\n")
    assert compose(["optimizer=fast"], [a, b]).config["optimizer"]["lr"] == 0.1


def test_missing_config_dir_is_an_error(tmp_path):
    with pytest.raises(DlcliError, match="config dir .* does not exist"):
        compose([], [tmp_path / "nope"])


def test_validate_is_idempotent():
    cfg = compose([]).config
    assert validate(cfg) == cfg


def test_shipped_configs_never_name_import_paths():
    for f in Path(shipped_config_dir()).rglob("*.yaml"):
        assert "_target_" not in f.read_text(), f


def test_comma_sweep_in_train_is_explained():
    problems, message = problems_of("optimizer.lr=0.1,0.2")
    assert problems[0].path == "optimizer.lr"
    assert "for a list write key=[a,b]" in message
    assert "sweep with `dlcli train -m ...` or `dlcli sweep ...`" in message


def test_unknown_callback_from_override_names_the_override():
    problems, message = problems_of("callbacks.foo.x=1")
    assert problems[0].path == "callbacks.foo"
    assert "from override 'callbacks.foo.x=1'" in message and "Available: early_stopping" in message


def test_removing_a_group_is_reported_on_one_line_each():
    problems, message = problems_of("~model")
    assert {p.path for p in problems} == {"name", "model"}
    assert all("\n" not in p.message for p in problems)


def test_invalid_yaml_in_a_user_file_names_file_and_line(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "broken.yaml").write_text("name: mlp\nhidden: [64\n")
    _, message = problems_of("model=broken", config_dirs=[tmp_path])
    assert "invalid YAML" in message and str(tmp_path / "model" / "broken.yaml") in message and "line 2" in message


def test_import_paths_in_yaml_are_refused_as_unknown_keys(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "evil.yaml").write_text("name: mlp\n_target_: os.system\n")
    problems, _ = problems_of("model=evil", config_dirs=[tmp_path])
    assert [p.path for p in problems] == ["model._target_"]
