"""ONNX export of a fitted `LSTMAutoencoder`, checked against lstmae's own scores before it is kept.

The exported graph is the whole scoring path of one model, in raw units:

    x (B, L, F) float32, raw units
      -> scaled with the stored scaler        ((x - offset) / scale, in float64, as lstmae does)
      -> the network                          (each LSTM layer one ONNX LSTM node)
      -> error vectors -> error model score   (float64, as lstmae does)
    outputs: score (B,) float64, reconstruction (B, L, F) float32 in raw units

B (the batch) is dynamic; L (the window) and F (the features) are fixed to the model's.

How the network is exported: a copy of the module gets its LSTM layers (nn.LSTM for tanh,
KerasLSTM for relu, both directions of bidirectional encoders) replaced by `_OnnxLSTM`, which
calls one custom op translated to ONNX's own LSTM operator (with activations Sigmoid/Tanh/Tanh
or Sigmoid/Relu/Relu). The rest of the module's forward (repeat decoder, EncDec-AD decoder,
output layer) runs unchanged. lstmae's fused C++ kernels are therefore never traced, and
onnxruntime runs its native LSTM kernel instead of thousands of unrolled per-step nodes.

Exported with torch's dynamo exporter (`torch.onnx.export(dynamo=True)`). Its input signature
is checked afterwards (batch dynamic, L and F the model's): an exporter that specialised the
batch would otherwise give a file that fails on any other batch size.

Not exported (refused with one line): token models (their input is ids and their score a
cross-entropy), models whose layers this module does not know.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.validation import is_integer
from .exceptions import DataError, ModelFileError

PARITY_TOLERANCE = 1e-5  # max |onnxruntime score - lstmae score|, relative for scores above 1
MIN_OPSET = 18  # the dynamo exporter's lowest
DEFAULT_BATCH_EXAMPLE = 16

# Torch's gate blocks i, f, g, o -> ONNX's i, o, f, c.
_ONNX_GATE_ORDER = (0, 3, 1, 2)


@dataclass(frozen=True)
class ExportResult:
    """What `export_onnx` wrote and how close onnxruntime came to lstmae on the check batch."""

    path: Path
    max_score_difference: float
    max_reconstruction_difference: float
    opset: int


# ----------------------------------------------------------------------------- the LSTM op
@torch.library.custom_op("lstmae::onnx_lstm", mutates_args=())
def _onnx_lstm(x: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor, h0: torch.Tensor,
               c0: torch.Tensor, relu: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ONNX's LSTM operator (layout 0, no peepholes, no sequence lengths) in PyTorch.

    x (L, N, I); w (D, 4H, I), r (D, 4H, H), b (D, 8H) in ONNX's gate order i, o, f, c;
    h0, c0 (D, N, H). Returns Y (L, D, N, H), Y_h and Y_c (D, N, H); direction 1 runs backwards.
    """
    act = torch.relu if relu else torch.tanh
    hidden = r.shape[-1]
    outputs, last_h, last_c = [], [], []
    for d in range(w.shape[0]):
        h, c, steps = h0[d], c0[d], []
        bias = b[d, : 4 * hidden] + b[d, 4 * hidden :]
        order = range(x.shape[0] - 1, -1, -1) if d == 1 else range(x.shape[0])
        for t in order:
            i, o, f, g = (x[t] @ w[d].T + h @ r[d].T + bias).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * act(g)
            h = torch.sigmoid(o) * act(c)
            steps.append(h)
        if d == 1:
            steps.reverse()
        outputs.append(torch.stack(steps))
        last_h.append(h)
        last_c.append(c)
    return torch.stack(outputs, dim=1), torch.stack(last_h), torch.stack(last_c)


@_onnx_lstm.register_fake
def _(x, w, r, b, h0, c0, relu):
    shape = (w.shape[0], x.shape[1], r.shape[-1])
    return x.new_empty(x.shape[0], *shape), x.new_empty(shape), x.new_empty(shape)


def _onnx_lstm_translation(x, w, r, b, h0, c0, relu: bool):
    """The custom op as ONNX's LSTM node (for the dynamo exporter's custom_translation_table)."""
    from onnxscript import opset18 as op

    act = "Relu" if relu else "Tanh"
    return op.LSTM(x, w, r, b, None, h0, c0, activations=["Sigmoid", act, act] * _directions(w),
                   direction="bidirectional" if _directions(w) == 2 else "forward",
                   hidden_size=_static_dim(r, -1))


def _directions(w) -> int:
    return _static_dim(w, 0)


def _static_dim(value, axis: int) -> int:
    dim = value.shape[axis]
    return int(dim if isinstance(dim, int) else dim.value)


def _onnx_weights(input_weight, recurrent_weight, input_bias=None, recurrent_bias=None):
    """Torch-layout weights (4H, I), (4H, H), biases (4H,) -> ONNX's w (4H, I), r (4H, H), b (8H,)."""
    def reorder(tensor):
        return torch.cat([tensor.chunk(4, dim=0)[k] for k in _ONNX_GATE_ORDER]).detach().float().clone()

    hidden = recurrent_weight.shape[1]
    zeros = recurrent_weight.new_zeros(4 * hidden)
    biases = [zeros if bias is None else bias for bias in (input_bias, recurrent_bias)]
    return reorder(input_weight), reorder(recurrent_weight), torch.cat([reorder(bias) for bias in biases])


class _OnnxLSTM(nn.Module):
    """Drop-in for TanhLSTM / KerasLSTM (forward, forward_state) running `lstmae::onnx_lstm`."""

    def __init__(self, directions: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], relu: bool):
        super().__init__()
        self.relu = relu
        self.hidden_size = directions[0][1].shape[1]
        for name, k in (("w", 0), ("r", 1), ("b", 2)):
            self.register_buffer(name, torch.stack([direction[k] for direction in directions]))

    @classmethod
    def from_layer(cls, layer: nn.Module) -> "_OnnxLSTM":
        from .nn.model import KerasLSTM, TanhLSTM

        if isinstance(layer, TanhLSTM):
            suffixes = ["", "_reverse"] if layer.bidirectional else [""]
            return cls([_onnx_weights(*(getattr(layer, f"{name}_l0{suffix}")
                                        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
                        for suffix in suffixes], relu=False)
        if isinstance(layer, KerasLSTM):
            return cls([_onnx_weights(layer.input_proj.weight, layer.recurrent_proj.weight, layer.input_proj.bias)],
                       relu=layer.activation_name == "relu")
        raise ModelFileError(f"cannot export an LSTM layer of type {type(layer).__name__}: lstmae's ONNX export knows "
                             "TanhLSTM and KerasLSTM only")

    def forward(self, x, steps=None, lengths=None):
        return self.forward_state(x, steps, lengths)[0]

    def forward_state(self, x, steps=None, lengths=None, state=None):
        """x (N, L, I), or (N, I) repeated over `steps` -> outputs (N, L, H*D), final (h, c) (N, H*D)."""
        if lengths is not None:
            raise ModelFileError("the ONNX export has a fixed window: it cannot run variable-length batches")
        if x.dim() == 2:
            x = x.unsqueeze(1).expand(-1, steps, -1)
        directions = self.w.shape[0]
        if state is None:
            h0 = c0 = x.new_zeros(directions, x.shape[0], self.hidden_size)
        else:  # (N, H*D), forward direction first -> (D, N, H)
            h0, c0 = (s.reshape(s.shape[0], directions, self.hidden_size).transpose(0, 1) for s in state)
        y, y_h, y_c = _onnx_lstm(x.transpose(0, 1), self.w, self.r, self.b, h0, c0, self.relu)
        if directions == 1:  # squeeze, then a transpose that onnxruntime cancels against the next layer's
            outputs = y.squeeze(1).transpose(0, 1)
        else:  # (L, D, N, H) -> (N, L, D*H), forward direction first
            outputs = y.permute(2, 0, 1, 3).flatten(2)
        return outputs, tuple(s.transpose(0, 1).flatten(1) for s in (y_h, y_c))


def _swap_lstm_layers(module: nn.Module) -> nn.Module:
    """A CPU copy of `module` in eval mode with each TanhLSTM / KerasLSTM replaced by `_OnnxLSTM`."""
    from .nn.model import KerasLSTM, TanhLSTM

    module = copy.deepcopy(module).cpu().float().eval()
    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, (TanhLSTM, KerasLSTM)):
                parent._modules[name] = _OnnxLSTM.from_layer(child)
    return module


# ----------------------------------------------------------------------------- the scoring graph
class _ScoringGraph(nn.Module):
    """Raw windows (B, L, F) float32 -> score (B,) float64, reconstruction (B, L, F) float32.

    Follows lstmae's dtypes step by step: scaling in float64 cast to float32, the network in
    float32, differences and their squares/absolutes in float32, means and the error model in
    float64.
    """

    def __init__(self, model):
        super().__init__()
        from .scoring.error_models import MahalanobisError, MeanError, NormalizedError

        self.network = _swap_lstm_layers(model.module_)
        scaler, error_model = model.scaler_, model.error_model_
        self.register_buffer("offset", torch.as_tensor(np.asarray(scaler.offset, np.float64)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scaler.scale, np.float64)))
        self.window, self.n_features = int(model.n_timesteps_), int(model.n_features_in_)
        if isinstance(error_model, MeanError):
            self.error_kind = error_model.name
        elif isinstance(error_model, MahalanobisError):
            self.error_kind = "mahalanobis"
            self.flat = self.window * self.n_features <= error_model.max_dim
            self.register_buffer("mean", torch.as_tensor(np.asarray(error_model.mean_, np.float64)))
            self.register_buffer("precision", torch.as_tensor(np.asarray(error_model.precision_, np.float64)))
            self.register_buffer("groups", torch.as_tensor(_group_means(self.window, error_model.max_dim)))
            if self.mean.shape[0] != (self.window * self.n_features if self.flat else self.groups.shape[1]):
                raise ModelFileError(f"the mahalanobis error model has {self.mean.shape[0]} dimensions, which does not "
                                     f"match a window of {self.window} x {self.n_features}: the model is corrupt")
        elif isinstance(error_model, NormalizedError):
            self.error_kind = "normalized-" + error_model.reduce
            self.register_buffer("median", torch.as_tensor(np.asarray(error_model.median_, np.float64)))
            self.register_buffer("feature_scale", torch.as_tensor(np.asarray(error_model.scale_, np.float64)))
            scored = np.ones(len(error_model.median_), bool) if error_model.scored is None else error_model.scored
            self.register_buffer("scored", torch.as_tensor(np.flatnonzero(scored)))
        else:
            raise ModelFileError(f"cannot export error model {type(error_model).__name__}: the ONNX export knows "
                                 "mse, mae, mahalanobis and normalized")

    def forward(self, x: torch.Tensor):
        scaled = ((x.double() - self.offset) / self.scale).float()
        reconstructed = self.network(scaled)
        difference = scaled - reconstructed
        if self.error_kind == "mse":
            score = (difference * difference).double().mean(dim=(1, 2))
        elif self.error_kind == "mae":
            score = difference.abs().double().mean(dim=(1, 2))
        elif self.error_kind.startswith("normalized"):
            z = (difference.abs().double().mean(dim=1) - self.median) / self.feature_scale
            z = z.index_select(1, self.scored)
            score = z.mean(dim=1) if self.error_kind == "normalized-mean" else z.amax(dim=1)
        else:
            absolute = difference.abs()
            if self.flat:
                vectors = absolute.flatten(1).double()
            else:
                vectors = absolute.double().mean(dim=2) @ self.groups
            centred = vectors - self.mean
            score = ((centred @ self.precision) * centred).sum(dim=1)
        reconstruction = (reconstructed.double() * self.scale + self.offset).float()
        # lstmae refuses a window with NaN or inf; the graph scores it NaN, which onnxruntime's reductions
        # would otherwise turn into a finite score below the threshold
        nonfinite = ~torch.isfinite(x).flatten(1).all(dim=1)
        score = torch.where(nonfinite, torch.full_like(score, float("nan")), score)
        reconstruction = torch.where(nonfinite[:, None, None], torch.full_like(reconstruction, float("nan")),
                                     reconstruction)
        return score, reconstruction


def _group_means(length: int, max_dim: int) -> np.ndarray:
    """(L, D) matrix averaging adjacent steps as MahalanobisError does (np.array_split into D
    groups when L > max_dim; the identity otherwise)."""
    if length <= max_dim:
        return np.eye(length)
    matrix = np.zeros((length, max_dim))
    for column, rows in enumerate(np.array_split(np.arange(length), max_dim)):
        matrix[rows, column] = 1.0 / len(rows)
    return matrix


# ----------------------------------------------------------------------------- export
def check_exportable(model) -> None:
    """Raise ModelFileError (one line, naming the variant and why) for a model the export refuses."""
    for attribute in ("module_", "scaler_", "error_model_", "n_timesteps_", "n_features_in_"):
        if not hasattr(model, attribute):
            raise ModelFileError(f"the model is not fitted (no {attribute}): fit it or load a saved one first")
    arch = model.architecture_
    if arch.vocab_size is not None:
        raise ModelFileError("token models (vocab_size set) cannot be exported to ONNX: their input is token ids and "
                             "their score a cross-entropy, which the export does not build; export a real-valued model")


def export_onnx(model, path, *, batch_example: int = DEFAULT_BATCH_EXAMPLE, opset: int | None = None,
                overwrite: bool = False, check_data: np.ndarray | None = None) -> ExportResult:
    """Write `model` (a fitted LSTMAutoencoder) to `path` as one ONNX graph and check it.

    The graph takes `x` (B, L, F) float32 in raw units (B any size; L and F the model's window
    and features) and returns `score` (B,) float64 and `reconstruction` (B, L, F) float32, the
    values of `model.anomaly_score(x)` and `model.reconstruct(x)`. The file holds metadata
    (lstmae version, window, feature names, threshold, error model) in its metadata_props.

    batch_example: the batch size traced (>= 2: a batch of 1 would be fixed into the graph).
    opset: the ONNX opset (>= 18; default: the exporter's).
    check_data: windows (N, L, F) in raw units for the parity check; default: `batch_example`
        random windows with the scaler's mean and spread.
    Before anything is written, onnxruntime scores the check windows; the file is written
    (atomically: temp file + rename) only if its scores are within 1e-5 of lstmae's (relative
    for scores above 1). Raises DataError for bad arguments, ModelFileError for models it
    refuses or an export that fails the checks.
    """
    from .data.io import check_output_path

    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"path must be a file path such as 'model.onnx'; got {path!r}")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give the path of the .onnx file to write, e.g. {path / 'model.onnx'}")
    if not is_integer(batch_example, 2):
        raise DataError(f"batch_example must be an integer >= 2 (a batch of 1 would be fixed into the graph); "
                        f"got {batch_example!r}")
    if opset is not None and not is_integer(opset, MIN_OPSET):
        raise DataError(f"opset must be an integer >= {MIN_OPSET} (the exporter's lowest); got {opset!r}")
    check_output_path(path, overwrite)
    check_exportable(model)
    onnxruntime = _import_onnxruntime()
    import onnx

    if opset is not None and opset > onnx.defs.onnx_opset_version():
        raise DataError(f"opset {opset} is newer than this onnx package knows ({onnx.defs.onnx_opset_version()}); "
                        f"choose {MIN_OPSET} to {onnx.defs.onnx_opset_version()} or leave it out")

    window, n_features = int(model.n_timesteps_), int(model.n_features_in_)
    if check_data is None:
        rng = np.random.default_rng(0)
        check_data = (rng.standard_normal((int(batch_example), window, n_features)) * model.scaler_.scale
                      + model.scaler_.offset).astype(np.float32)
    try:
        check_data = np.ascontiguousarray(check_data, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"check_data must be numbers in (N, {window}, {n_features}) windows; got "
                        f"{type(check_data).__name__}") from None
    if check_data.ndim != 3 or check_data.shape[1:] != (window, n_features) or not len(check_data):
        raise DataError(f"check_data must be (N, {window}, {n_features}) windows with N >= 1; got shape "
                        f"{check_data.shape}")
    if not np.isfinite(check_data).all():
        raise DataError("check_data holds NaN or inf; give finite windows (or leave check_data out)")

    graph = _ScoringGraph(model)
    example = torch.zeros(int(batch_example), window, n_features)
    proto = _export(graph, example, opset)
    if opset is not None and _opset_of(proto) != opset:
        raise DataError(f"the exporter cannot write opset {opset} (it wrote {_opset_of(proto)}); choose another opset "
                        "or leave it out; nothing was written")
    _check_signature(proto, window, n_features)
    _add_metadata(proto, model)
    data = proto.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    onnx_scores, onnx_reconstruction = session.run(None, {"x": check_data})
    expected_scores = model.anomaly_score(check_data)
    score_difference = _max_difference(onnx_scores, expected_scores)
    reconstruction_difference = float(np.max(np.abs(onnx_reconstruction - model.reconstruct(check_data))))
    if not np.all(np.abs(onnx_scores - expected_scores) <= PARITY_TOLERANCE * np.maximum(1.0, np.abs(expected_scores))):
        raise ModelFileError(f"the exported graph's scores differ from lstmae's by up to {score_difference:.3g} "
                             f"(tolerance {PARITY_TOLERANCE}); nothing was written to {path}")
    _write_atomically(data, path, overwrite)
    return ExportResult(path, score_difference, reconstruction_difference, _opset_of(proto))


def _import_onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise DataError(f"ONNX export needs onnx, onnxscript and onnxruntime ({err}): "
                        "pip install 'lstmae[export]'") from err
    return onnxruntime


def _export(graph: nn.Module, example: torch.Tensor, opset: int | None):
    """The ONNX ModelProto of graph(example) with a dynamic batch axis; exporter chatter silenced."""
    batch = torch.export.Dim("batch", min=1)
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph, (example,), dynamo=True, input_names=["x"], output_names=["score", "reconstruction"],
                dynamic_shapes={"x": {0: batch}}, opset_version=opset, verbose=False,
                custom_translation_table={torch.ops.lstmae.onnx_lstm.default: _onnx_lstm_translation})
    except Exception as err:  # noqa: BLE001 - the exporter raises many kinds; one line for the user
        raise ModelFileError(f"torch could not export this model to ONNX: {str(err).strip().splitlines()[0]}") from err
    finally:
        logger.setLevel(level)
    return program.model_proto


def _dims(value_info) -> list:
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
            for d in value_info.type.tensor_type.shape.dim]


def _check_signature(proto, window: int, n_features: int) -> None:
    """Refuse a graph whose input is not (batch, L, F) with a symbolic batch, or whose outputs are
    not score (batch,) and reconstruction (batch, L, F)."""
    signature = {info.name: _dims(info) for info in [*proto.graph.input, *proto.graph.output]}
    x, score, reconstruction = (signature.get(name) for name in ("x", "score", "reconstruction"))
    if x is None or len(x) != 3 or not isinstance(x[0], str) or x[1:] != [window, n_features]:
        raise ModelFileError(f"the exporter gave input x {x}, expected [batch, {window}, {n_features}] with a "
                             "dynamic batch: the graph would fail on other inputs, so it is not written")
    expected = {"score": [x[0]], "reconstruction": [x[0], window, n_features]}
    for name, dims in (("score", score), ("reconstruction", reconstruction)):
        if dims != expected[name]:
            raise ModelFileError(f"the exporter gave output {name} {dims}, expected {expected[name]}: "
                                 "the graph would break on other batch sizes, so it is not written")


def _add_metadata(proto, model) -> None:
    from . import __version__

    names = ([str(name) for name in model.feature_names_in_] if hasattr(model, "feature_names_in_")
             else [f"f{j}" for j in range(model.n_features_in_)])
    arch = model.architecture_
    metadata = {
        "lstmae_version": __version__,
        "torch_version": torch.__version__,
        "window": str(int(model.n_timesteps_)),
        "n_features": str(int(model.n_features_in_)),
        "feature_names": json.dumps(names),
        "threshold": json.dumps(_window_threshold(model)),
        "error_model": model.error_model_.spec,
        "activation": arch.activation,
        "decoder_type": arch.decoder_type,
        "inputs": "x (batch, window, n_features) float32 in raw units",
        "outputs": "score (batch,) float64, higher = more anomalous; reconstruction (batch, window, n_features) "
                   "float32 in raw units; anomaly = score > threshold",
    }
    proto.producer_name = "lstmae"
    proto.producer_version = __version__
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _window_threshold(model) -> float | None:
    """The threshold for the graph's scores, one per window: the model's own when it was fitted on window scores,
    else its rule refitted on the model's held-out window scores (a series model's is fitted on row scores, the
    mean of the windows covering each row); an adaptive rule's starting level; None without a threshold."""
    from .series import end_threshold

    if not hasattr(model, "threshold_"):
        return None
    static, adaptive = end_threshold(model)
    return float(static if adaptive is None else adaptive.threshold)


def _opset_of(proto) -> int:
    return next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _write_atomically(data: bytes, path: Path, overwrite: bool) -> None:
    """Write bytes to path through lstmae.data.io's atomic writer: never a half-written file."""
    from .data.io import check_output_path, write_bytes_atomic

    check_output_path(path, overwrite)  # it may have appeared meanwhile
    write_bytes_atomic(path, data)
