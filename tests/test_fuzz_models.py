"""Property-based tests (hypothesis) for what a user or a file hands lstmae besides data: threshold
specs, config.json and weights files of a model directory, and the CLI's options. Every input either
works or raises lstmae's own error type (never a foreign exception, never a crash)."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmae import LSTMAutoencoder, load
from lstmae.cli.main import cli
from lstmae.exceptions import LstmaeError
from lstmae.scoring import parse_threshold

from conftest import sine_windows

FAST = settings(max_examples=50, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SPEC_PARTS = st.sampled_from(["quantile", "sigma", "pot", "dspot", "telemanom", "best-f1", "best-f", "fpr",
                              "value", "contamination", "", "nan", "inf", "depth", "window"])
SPECS = st.one_of(st.text(max_size=30),
                  st.builds(lambda m, p, o: f"{m}:{p}{o}", SPEC_PARTS,
                            st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=5)),
                            st.sampled_from(["", ",depth=3", ",window=-1", ",x=1", ",depth=1e9", ","])))


@FAST
@given(SPECS)
def test_any_threshold_spec_parses_or_is_one_clear_error(spec):
    try:
        rule = parse_threshold(spec)
    except LstmaeError as err:
        assert "\n" not in str(err)
        return
    assert parse_threshold(str(rule)) == rule  # what parses round-trips


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_models")
    LSTMAutoencoder(encoder=(4,), epochs=0, progress=False, random_state=0).fit(sine_windows(n=40)).save(root / "m")
    return root / "m"


def _mutations():
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=8))
    value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                         max_leaves=6)
    paths = st.sampled_from([("format_version",), ("n_timesteps",), ("threshold", "value"), ("threshold", "rule"),
                             ("threshold", "how"), ("architecture", "encoder"), ("architecture", "n_features"),
                             ("architecture", "activation"), ("scaler", "scale"), ("scaler", "method"),
                             ("error_model", "name"), ("params", "encoder"), ("params", "threshold"),
                             ("feature_names",), ("data",), ("params",), ("architecture",)])
    return st.lists(st.tuples(paths, value, st.booleans()), min_size=1, max_size=3)


@FAST
@given(_mutations())
def test_any_damaged_config_loads_or_is_refused_as_a_corrupt_model(saved, tmp_path_factory, mutations):
    target = tmp_path_factory.mktemp("case") / "m"
    shutil.copytree(saved, target)
    config = json.loads((target / "config.json").read_text())
    config.pop("weights_sha256")
    for path, value, delete in mutations:
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            if delete:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    (target / "config.json").write_text(json.dumps(config))
    try:
        model = load(target)
    except LstmaeError as err:
        assert "\n" not in str(err)
        return
    assert np.isfinite(model.threshold_)  # what loads scores
    model.anomaly_score(sine_windows(n=3))


@FAST
@given(st.binary(max_size=300), st.integers(0, 600))
def test_any_damaged_weights_file_is_refused_or_loads_whole(saved, tmp_path_factory, noise, offset):
    target = tmp_path_factory.mktemp("case") / "m"
    shutil.copytree(saved, target)
    weights = bytearray((target / "model.safetensors").read_bytes())
    weights[offset : offset + len(noise)] = noise
    (target / "model.safetensors").write_bytes(bytes(weights))
    try:
        load(target)
    except LstmaeError as err:
        assert "\n" not in str(err)


OPTIONS = st.lists(st.sampled_from(["--window", "--stride", "--epochs", "--batch-size", "--learning-rate",
                                    "--validation-fraction", "--dropout", "--encoder", "--threshold", "--patience",
                                    "--min-alarm-rows", "--merge-gap", "--cooldown", "--how", "--max-gap"]),
                   min_size=1, max_size=3, unique=True)
VALUES = st.one_of(st.integers(-5, 5).map(str), st.sampled_from(["0", "-1", "1e9", "nan", "inf", "abc", "", "4,x",
                                                                    "0,0", "sigma:-1", "dspot:2", "1min"]))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(OPTIONS, st.data())
def test_any_cli_options_work_or_exit_2_with_one_line(tmp_path_factory, options, data):
    root = tmp_path_factory.mktemp("cli_fuzz")
    rows = np.sin(np.arange(60) / 3)[:, None]
    np.savetxt(root / "s.csv", np.hstack([rows, rows ** 2]), delimiter=",", header="a,b", comments="")
    args = ["fit", str(root / "s.csv"), "-o", str(root / "m"), "--epochs", "1", "--encoder", "4"]
    if "--window" not in options:
        args += ["--window", "5"]
    for option in options:
        args += [option, data.draw(VALUES)]
    if "--how" in options or any(o in options for o in ("--min-alarm-rows", "--merge-gap", "--cooldown")):
        args = [a for a in args]  # fit ignores scoring options: click refuses them with exit 2
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 2), (args, result.output)
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("warning")]
        assert lines and "Traceback" not in result.output, (args, result.output)
