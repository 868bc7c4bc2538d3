"""ONNX export (lstmae.export, `lstmae export`): onnxruntime gives lstmae's scores, or nothing is written."""
import json
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from lstmae import LSTMAutoencoder  # noqa: E402
from lstmae import export as export_module  # noqa: E402
from lstmae.exceptions import DataError, ModelFileError  # noqa: E402
from lstmae.export import export_onnx  # noqa: E402

FAST = dict(epochs=1, batch_size=8, progress=False, random_state=0)
LENGTH, FEATURES = 12, 2

VARIANTS = {
    "tanh": dict(encoder=(8, 4)),  # lstmae's default shape, smaller; error model auto: normalized-max
    "relu": dict(encoder=(10,), activation="relu", error_model="mse"),  # keras_minimal-like
    "normalized_mean": dict(encoder=(6,), error_model="normalized"),
    "encdec_ad": dict(encoder=(6,), decoder_type="encdec_ad", error_model="mahalanobis"),
    "bidirectional_tanh": dict(encoder=(6, 4), bidirectional=True),
    "bidirectional_relu": dict(encoder=(6, 4), bidirectional=True, activation="relu"),
}


def raw_windows(n, seed):
    """Windows (n, L, F) far from zero mean and unit scale, so that a missing scaler shows."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, LENGTH, FEATURES)) * [3.0, 0.5] + [10.0, -2.0]).astype(np.float32)


# The bidirectional encoders run other code (both directions in one node; relu's flipped twin):
# slow-marked to keep the default suite short.
@pytest.fixture(scope="module", params=[name if "bidirectional" not in name else
                                        pytest.param(name, marks=pytest.mark.slow) for name in VARIANTS])
def exported(request, tmp_path_factory):
    model = LSTMAutoencoder(**VARIANTS[request.param], **FAST).fit(raw_windows(48, 0), feature_names=["a", "b"])
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    result = export_onnx(model, path)
    return model, path, result


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 7])
def test_onnxruntime_gives_lstmae_scores_for_any_batch(exported, batch):
    model, path, _ = exported
    X = raw_windows(batch, seed=batch)
    scores, reconstruction = session(path).run(None, {"x": X})
    assert scores.shape == (batch,) and reconstruction.shape == (batch, LENGTH, FEATURES)
    assert np.max(np.abs(scores - model.anomaly_score(X))) <= 1e-5
    np.testing.assert_allclose(reconstruction, model.reconstruct(X), rtol=1e-5, atol=1e-5)


def test_anomalous_windows_score_higher_in_onnx_too(exported):
    model, path, _ = exported
    X = raw_windows(8, seed=3)
    spiked = X.copy()
    spiked[:, LENGTH // 2] += 40.0
    normal, anomalous = (session(path).run(["score"], {"x": data})[0] for data in (X, spiked))
    assert np.all(anomalous > normal)


def test_a_window_with_nan_or_inf_scores_nan_not_normal(exported):
    _, path, _ = exported
    X = raw_windows(3, seed=4)
    X[0, 3, 1], X[2, 0, 0] = np.nan, np.inf  # lstmae refuses these; onnxruntime gave the NaN window a low score
    scores, reconstruction = session(path).run(None, {"x": X})
    assert np.isnan(scores[[0, 2]]).all() and np.isfinite(scores[1])
    assert np.isnan(reconstruction[[0, 2]]).all() and np.isfinite(reconstruction[1]).all()


def test_signature_metadata_and_result(exported):
    model, path, result = exported
    proto = onnx.load(str(path))
    x = proto.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim]
    assert x.name == "x" and isinstance(dims[0], str) and dims[0] and dims[1:] == [LENGTH, FEATURES]
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert metadata["window"] == str(LENGTH)
    assert json.loads(metadata["feature_names"]) == ["a", "b"]
    assert json.loads(metadata["threshold"]) == pytest.approx(model.threshold_)
    assert metadata["error_model"] == model.error_model_.spec  # normalized-max, not normalized (its mean)
    assert result.path == path and result.max_score_difference <= 1e-5 and result.opset >= 18
    assert {node.op_type for node in proto.graph.node} >= {"LSTM"}  # the native op, not an unrolled loop


def test_a_series_model_exports_the_threshold_of_window_scores_not_of_row_scores(tmp_path):
    """A series model's threshold_ is fitted on row scores (the mean of the windows covering each row), while the
    graph scores windows: the metadata gave the row threshold, flagging more windows than lstmae does."""
    from lstmae.series import fit_series, score_values

    t = np.arange(400)[:, None]
    values = (np.sin(t / (4 + np.arange(FEATURES))) * [3.0, 0.5] + [10.0, -2.0]).astype(np.float32)
    model = fit_series(LSTMAutoencoder(encoder=(8, 4), **FAST), values, window=LENGTH)
    metadata = {e.key: e.value for e in onnx.load(str(export_onnx(model, tmp_path / "m.onnx").path)).metadata_props}
    assert model.threshold_how_ == "mean" and json.loads(metadata["threshold"]) != pytest.approx(model.threshold_)
    # the graph's window scores against it flag the windows that lstmae flags with how="end" (one window each)
    windows = np.lib.stride_tricks.sliding_window_view(values, LENGTH, axis=0).transpose(0, 2, 1)
    onnx_flags = session(tmp_path / "m.onnx").run(None, {"x": np.ascontiguousarray(windows)})[0] \
        > json.loads(metadata["threshold"])
    end = score_values(model, values, how="end", alarms=None)
    np.testing.assert_array_equal(onnx_flags, end["is_anomaly"].to_numpy()[LENGTH - 1:] == 1)


@pytest.fixture(scope="module")
def tanh_model():
    return LSTMAutoencoder(encoder=(6, 3), **FAST).fit(raw_windows(32, 0))


@pytest.fixture
def cached_export(tanh_model, monkeypatch):
    """Each export traces for seconds: the tests below that change its result reuse one."""
    proto = _tanh_proto(tanh_model)
    copy = lambda graph, example, opset: onnx.ModelProto.FromString(proto)  # noqa: E731
    monkeypatch.setattr(export_module, "_export", copy)
    return copy


_PROTOS = {}


def _tanh_proto(model) -> bytes:
    if id(model) not in _PROTOS:
        graph = export_module._ScoringGraph(model)
        example = export_module.torch.zeros(4, LENGTH, FEATURES)
        _PROTOS[id(model)] = export_module._export(graph, example, None).SerializeToString()
    return _PROTOS[id(model)]


def test_a_flag_feature_left_out_of_the_score_is_left_out_in_onnx_too(tmp_path):
    X = raw_windows(48, 0)
    X[:, :, 1] = np.random.default_rng(0).random((48, LENGTH)) < 0.1  # a 0/1 flag: context, not scored
    model = LSTMAutoencoder(encoder=(6,), binary_features="context", **FAST).fit(X)
    assert model.error_model_.scored.tolist() == [True, False]
    export_onnx(model, tmp_path / "model.onnx")
    held_on = X[:8].copy()
    held_on[:, :, 1] = 1.0  # scored, this flag would dominate the score
    scores = session(tmp_path / "model.onnx").run(["score"], {"x": held_on})[0]
    assert np.max(np.abs(scores - model.anomaly_score(held_on))) <= 1e-5


def test_token_models_are_refused(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 5, size=(16, 6))
    model = LSTMAutoencoder(vocab_size="auto", encoder=(4,), embedding_dim=2, **FAST).fit(tokens)
    with pytest.raises(ModelFileError, match="token models .* cannot be exported"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_unfitted_model_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match="not fitted"):
        export_onnx(LSTMAutoencoder(), tmp_path / "m.onnx")


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_example=1), "batch_example must be an integer >= 2"),
    (dict(opset=11), "opset must be an integer >= 18"),
    (dict(check_data=np.zeros((3, 5, FEATURES), np.float32)), r"check_data must be \(N, 12, 2\)"),
    # an empty batch made onnxruntime abort the whole process
    (dict(check_data=np.zeros((0, LENGTH, FEATURES), np.float32)), r"with N >= 1; got shape \(0, 12, 2\)"),
    (dict(check_data="windows"), r"check_data must be numbers in \(N, 12, 2\) windows; got str"),
    (dict(check_data=np.full((2, LENGTH, FEATURES), np.nan, np.float32)), "check_data holds NaN or inf"),
    (dict(opset=999), "opset 999 is newer than this onnx package knows"),
])
def test_bad_arguments_are_refused_in_one_line(tanh_model, tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message) as info:
        export_onnx(tanh_model, tmp_path / "m.onnx", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.onnx").exists()


def test_a_path_that_is_no_file_path_is_refused_before_the_export(tanh_model, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "_export", lambda *args: pytest.fail("exported before refusing the path"))
    with pytest.raises(DataError, match="path must be a file path such as 'model.onnx'; got None"):
        export_onnx(tanh_model, None)
    with pytest.raises(DataError, match="is a folder; give the path of the .onnx file"):
        export_onnx(tanh_model, tmp_path, overwrite=True)


def test_an_opset_the_exporter_did_not_write_is_refused(tanh_model, tmp_path, cached_export):
    written = export_module._opset_of(cached_export(None, None, None))
    with pytest.raises(DataError, match=f"cannot write opset {written + 1} \\(it wrote {written}\\)"):
        export_onnx(tanh_model, tmp_path / "m.onnx", opset=written + 1)
    assert not (tmp_path / "m.onnx").exists()


def test_existing_output_needs_overwrite(tanh_model, tmp_path, cached_export):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(DataError, match="exists; pass --overwrite"):
        export_onnx(tanh_model, path)
    assert path.read_bytes() == b"keep me"
    export_onnx(tanh_model, path, overwrite=True)
    assert onnx.load(str(path)).graph.input[0].name == "x"


def test_a_graph_that_fails_the_parity_check_is_not_written(tanh_model, tmp_path, monkeypatch, cached_export):
    monkeypatch.setattr(tanh_model, "anomaly_score", lambda X: np.full(len(X), 123.0))
    with pytest.raises(ModelFileError, match="differ from lstmae's by up to .*nothing was written"):
        export_onnx(tanh_model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())  # no temporary file either


def test_a_fixed_batch_signature_is_refused(tanh_model, tmp_path, monkeypatch, cached_export):
    """What the exporter does silently when it specialises an axis: the check must catch it."""
    original = cached_export

    def fixed_batch(graph, example, opset):
        proto = original(graph, example, opset)
        for info in [*proto.graph.input, *proto.graph.output]:
            info.type.tensor_type.shape.dim[0].dim_value = len(example)
        return proto

    monkeypatch.setattr(export_module, "_export", fixed_batch)
    with pytest.raises(ModelFileError, match=r"expected \[batch, 12, 2\] with a dynamic batch"):
        export_onnx(tanh_model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_a_fixed_window_signature_is_refused(tanh_model, tmp_path, monkeypatch, cached_export):
    original = cached_export

    def symbolic_window(graph, example, opset):
        proto = original(graph, example, opset)
        proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "time"
        return proto

    monkeypatch.setattr(export_module, "_export", symbolic_window)
    with pytest.raises(ModelFileError, match="gave input x"):
        export_onnx(tanh_model, tmp_path / "m.onnx")


def test_missing_onnxruntime_names_the_extra(tanh_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(DataError, match=r"pip install 'lstmae\[export\]'"):
        export_onnx(tanh_model, tmp_path / "m.onnx")


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli():
    from lstmae.cli.export import register
    from lstmae.cli.main import cli

    register(cli)  # the lead wires this into cli/main.py; a second call does nothing
    register(cli)
    return cli


@pytest.fixture(scope="module")
def model_dir(tanh_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "model"
    tanh_model.save(path)
    return path


def test_cli_export_writes_a_checked_file(cli, model_dir, tmp_path):
    output = tmp_path / "model.onnx"
    result = CliRunner().invoke(cli, ["export", str(model_dir), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert output.exists() and "wrote" in result.output
    X = raw_windows(5, seed=9)
    from lstmae import load

    scores = session(output).run(["score"], {"x": X})[0]
    assert np.max(np.abs(scores - load(model_dir).anomaly_score(X))) <= 1e-5


@pytest.mark.parametrize("case", ["missing model", "existing output", "low opset"])
def test_cli_export_errors_are_one_line_exit_2(cli, model_dir, tmp_path, case):
    output = tmp_path / "model.onnx"
    args = ["export", str(model_dir), "-o", str(output)]
    if case == "missing model":
        args[1] = str(tmp_path / "nowhere")
    elif case == "existing output":
        output.write_bytes(b"old")
    else:
        args += ["--opset", "9"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert output.exists() == (case == "existing output")


def test_cli_export_refuses_to_write_into_the_model_it_exports(cli, model_dir):
    weights = model_dir / "model.safetensors"
    before = weights.read_bytes()
    result = CliRunner().invoke(cli, ["export", str(model_dir), "-o", str(weights), "--overwrite"])
    assert result.exit_code == 2 and "is inside the model folder" in result.output, result.output
    assert weights.read_bytes() == before  # it replaced the weights with the ONNX file


def test_cli_export_help_has_an_example(cli):
    result = CliRunner().invoke(cli, ["export", "--help"])
    assert result.exit_code == 0 and "lstmae export model -o model.onnx" in result.output
