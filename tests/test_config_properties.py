"""Property-based: whatever overrides a user types, composing and validating the config either succeeds or
refuses with a clean DlcliError (the CLI: exit 0 or 2 with a message) — never another exception."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from typer.testing import CliRunner

from dlcli.cli import app
from dlcli.config.compose import compose, shipped_config_dir
from dlcli.config.validate import validate
from dlcli.errors import DlcliError

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "dlcli-hypothesis")  # its caches: never in the repository


def _dotted(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _dotted(value, f"{prefix}{key}.")
    yield prefix.rstrip(".")


KEYS = sorted(k for k in _dotted(compose([]).config) if k)  # every key of the default config, groups too
GROUPS = {d.name: sorted(f.stem for f in d.glob("*.yaml")) for d in shipped_config_dir().iterdir() if d.is_dir()}
SPECIAL = ":{}[]'\",#&*!|>%@`=~+$\\ \t\n-?."  # YAML and override-grammar special characters

junk_key = st.text(st.sampled_from("abcxyz_.0123"), min_size=1, max_size=12)
key = st.one_of(st.sampled_from(KEYS), junk_key, st.builds(lambda k, j: f"{k}.{j}", st.sampled_from(KEYS), junk_key))
scalar = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "~", "nan", "inf", "-inf", "1e400", "0x1F", "0o7", "1_000", "''", '""',
                     "yes", "no", "on", "???", "'???'", "auto", "cpu", "gpu"]),
    st.text(st.sampled_from("ab01" + SPECIAL), max_size=10),
    st.text(max_size=6),
    st.sampled_from(["choice(1,2)", "range(3)", "interval(0,1)", "glob(*)", "tag(a,b)", "sort(3,1)", "str(1)",
                     "shuffle([1,2])", "int(2.5)", "float(1)", "bool(1)", "extend_list(1)", "json_str({a:1})"]),
)
interpolation = st.one_of(
    st.sampled_from(KEYS).map(lambda k: f"${{{k}}}"),
    junk_key.map(lambda k: f"${{{k}}}"),
    st.builds(lambda r, a: f"${{{r}:{a}}}", st.sampled_from(["oc.env", "oc.select", "oc.decode", "oc.create", "now",
                                                             "eval", "hydra", "oc.dict.keys", "nope"]),
              st.sampled_from(["", "HOME", "model", "a,b", "'x'", "[1]", "%Y"])),
    st.text(st.sampled_from("${}:ab."), min_size=2, max_size=10),
)


def _inline(values):
    return values.map(lambda vs: "[" + ",".join(vs) + "]")


value = st.recursive(
    st.one_of(scalar, interpolation),
    lambda inner: st.one_of(
        _inline(st.lists(inner, max_size=3)),
        st.lists(st.tuples(junk_key, inner), max_size=3).map(lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv)
                                                              + "}"),
        st.lists(inner, min_size=2, max_size=3).map(",".join),  # a sweep: one run is refused
    ),
    max_leaves=6,
)
plain_override = st.builds(lambda p, k, v: f"{p}{k}={v}", st.sampled_from(["", "", "", "+", "++"]), key, value)
group_override = st.one_of(
    st.sampled_from([f"{g}={o}" for g, options in GROUPS.items() for o in options]),
    st.builds(lambda g, o: f"{g}={o}", st.sampled_from(sorted(GROUPS)), st.text(st.sampled_from("abmlp_"),
                                                                                   max_size=6)),
    st.builds(lambda p, g, v: f"{p}{g}={v}", st.sampled_from(["", "+", "++", "~"]), st.sampled_from(sorted(GROUPS)),
              value),  # a group given anything at all
)
delete_override = key.map(lambda k: f"~{k}")
raw_override = st.text(max_size=15)  # anything at all
overrides = st.lists(st.one_of(plain_override, plain_override, group_override, delete_override, raw_override),
                     max_size=4)


# A few seconds by default; DLCLI_PROPERTY_EXAMPLES=1000 explores further (each example composes a config).
EXAMPLES = int(os.environ.get("DLCLI_PROPERTY_EXAMPLES", "40"))


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides)
def test_compose_either_succeeds_or_refuses_cleanly(lines):
    try:
        composed = compose(lines)
    except DlcliError as e:
        assert str(e).strip(), "a refusal says why"
        return
    # what was accepted is a plain config: it writes as YAML and JSON, and validates again unchanged
    from omegaconf import OmegaConf

    config = composed.config
    OmegaConf.to_yaml(OmegaConf.create(config))
    json.dumps(config)
    assert validate(config) == config


runner = CliRunner()


@pytest.mark.parametrize("check", ["--check", "--no-check"])
@settings(max_examples=max(5, EXAMPLES // 8), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(lines=overrides)
def test_config_show_exits_0_or_2_with_a_message_never_a_traceback(check, lines):
    result = runner.invoke(app, ["config", "show", check, "--", *lines])
    assert result.exit_code in (0, 2), (lines, result.output, result.exception)
    if result.exit_code == 2:
        assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    else:
        assert result.stdout.strip()
