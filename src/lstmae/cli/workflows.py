"""What the CLI commands do, as functions that return data (the CLI prints and exits).

Data settings used at training (layout, window, columns, ...) are stored in the model
directory, so scoring a new file needs only MODEL_DIR and DATA.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DEFAULTS
from ..data.io import read_sequences, read_series, staged_directory, table_columns, write_table
from ..data.validation import check_features, check_window
from ..data.windowing import temporalize, window_ends
from ..exceptions import DataError


# ------------------------------------------------------------------------- reading
def _read(model_settings: dict, path, *, label_column=None, nan_policy="error", for_model=None):
    """Read DATA in the layout a model was trained on; check its features against the model."""
    layout = model_settings.get("layout", "series")
    if layout == "sequences":
        data = read_sequences(path, columns=model_settings.get("columns"), label_column=label_column,
                              nan_policy=nan_policy)
    else:
        present = set(table_columns(path) or ())
        reserved = {key: model_settings.get(key) for key in ("time_column", "entity_column")}
        reserved = {key: name for key, name in reserved.items() if name in present}
        label = label_column or model_settings.get("label_column")
        data = read_series(path, columns=model_settings.get("columns"),
                           label_column=label if label in present else None,
                           nan_policy=nan_policy, **reserved)
    if for_model is not None:
        expected = [str(name) for name in getattr(for_model, "feature_names_in_", data.feature_names)]
        order = check_features(expected, data.feature_names, data.source)
        data.values = data.values[..., order]
        data.feature_names = expected
        if layout == "sequences" and data.values.shape[1] != for_model.n_timesteps_:
            raise DataError(f"{data.source}: sequences have {data.values.shape[1]} timesteps, the model was "
                            f"trained on {for_model.n_timesteps_}; resample them to that length")
        if layout == "series":
            check_window(for_model.n_timesteps_, len(data.values), data.source)
    return data


# ----------------------------------------------------------------------------- fit
def fit_model(path, params: dict, *, layout, window, stride, time_column, label_column, entity_column,
              columns, nan_policy):
    """Read DATA, cut it into windows (series) and train; windows with a labelled anomaly are left out."""
    from ..estimator import LSTMAutoencoder

    settings = {"layout": layout, "window": window, "stride": stride, "time_column": time_column,
                "label_column": label_column, "entity_column": entity_column, "columns": columns,
                "nan_policy": nan_policy}
    if layout == "sequences":
        data = read_sequences(path, columns=columns, label_column=label_column, nan_policy=nan_policy)
        X, labels = data.values, data.labels
        unit = "sequences"
    else:
        data = read_series(path, columns=columns, time_column=time_column, label_column=label_column,
                           entity_column=entity_column, nan_policy=nan_policy)
        X, labels = _series_windows(data, window, stride)
        unit = "windows"
    keep = np.ones(len(X), bool) if labels is None else labels == 0
    if not keep.any():
        raise DataError(f"{data.source}: every {unit[:-1]} contains a labelled anomaly; nothing normal to train on")
    model = LSTMAutoencoder(**params)
    model.fit(X if keep.all() else X[keep], feature_names=data.feature_names)
    if labels is not None and model.threshold.startswith("best-f"):
        held_out = np.arange(len(X))[-max(1, int(round(len(X) * model.validation_fraction))):]
        model.calibrate_threshold(X[held_out], labels[held_out])
    settings.update(window=model.n_timesteps_, n_train=int(keep.sum()), unit=unit, columns=columns)
    model.data_settings_ = settings
    return model


def _series_windows(data, window: int, stride: int):
    """Windows (N, L, F) over each entity (never across two) and 1 where a window holds an anomaly."""
    check_window(window, len(data.values), data.source)
    groups = [np.arange(len(data.values))] if data.entities is None else \
        [np.flatnonzero(data.entities == e) for e in pd.unique(data.entities)]
    windows, labels = [], []
    for rows in groups:
        if len(rows) < window:
            continue
        X, _ = temporalize(data.values[rows], window, stride)
        windows.append(X)
        if data.labels is not None:
            contains = np.lib.stride_tricks.sliding_window_view(data.labels[rows], window).max(axis=1)[::stride]
            labels.append(contains)
    X = windows[0] if len(windows) == 1 else np.concatenate(windows)
    return X, (np.concatenate(labels) if labels else None)


# ------------------------------------------------------------------------- scoring
def load_model(model_dir):
    from ..persistence import load

    return load(model_dir)


def score_data(model, path, *, how=DEFAULTS["how"], stride=1, threshold=None, feature_errors=False, with_events=False,
               min_event_length=1, merge_gap=0, nan_policy="error", label_column=None):
    """Scores for DATA: a table with one row per input row (series) or per sequence, and events."""
    settings = model.data_settings_
    data = _read(settings, path, label_column=label_column, nan_policy=nan_policy, for_model=model)
    if settings.get("layout") == "sequences":
        X = data.values
        if threshold:
            model.threshold_ = _override_threshold(model, threshold, X, data.labels)
        scores = model.anomaly_score(X)
        table = pd.DataFrame({"score": scores, "is_anomaly": (scores > model.threshold_).astype(np.int8)},
                             index=data.ids)
        if data.labels is not None:
            table["label"] = data.labels
        return table, None

    frame = pd.DataFrame(data.values, columns=data.feature_names)
    if data.entities is not None:
        frame["__entity__"] = data.entities
    if threshold:
        X, _ = temporalize(data.values, model.n_timesteps_, stride)
        model.threshold_ = _override_threshold(model, threshold, X, None)
    table = model.score_series(frame, stride=stride, how=how, feature_errors=feature_errors or with_events,
                               entity_column="__entity__" if data.entities is not None else None)
    table.index = data.index
    if data.labels is not None:
        table["label"] = data.labels
    events = None
    if with_events:
        from ..scoring import find_events

        error_columns = [f"error_{name}" for name in data.feature_names]
        events = find_events(table["is_anomaly"].to_numpy(), table["score"].to_numpy(),
                             feature_errors=np.nan_to_num(table[error_columns].to_numpy()),
                             feature_names=data.feature_names, index=table.index,
                             min_length=min_event_length, merge_gap=merge_gap)
        if not feature_errors:
            table = table.drop(columns=error_columns)
    return table, events


def _override_threshold(model, spec, X, labels) -> float:
    from ..scoring import parse_threshold

    rule = parse_threshold(spec)
    if rule.method == "value":
        return float(rule.param)
    return model.calibrate_threshold(X, labels, spec)


def encode_data(model, path, *, stride=1, encoding=None, nan_policy="error") -> pd.DataFrame:
    """Encodings of a data file: columns z_j (bottleneck) or mean_j (encoding="mean").

    `encoding` overrides the model's for this call only; the model passed in is left as it is."""
    if encoding is not None:
        model = copy.copy(model).set_params(encoding=encoding)  # shallow: shares the fitted network
    data = _read(model.data_settings_, path, nan_policy=nan_policy, for_model=model)
    if model.data_settings_.get("layout") == "sequences":
        X, index = data.values, data.ids
    else:
        X, _ = temporalize(data.values, model.n_timesteps_, stride)
        index = pd.Index(data.index[window_ends(len(data.values), model.n_timesteps_, stride)], name="end")
    codes = model.transform(X)
    prefix = "z" if model.encoding == "bottleneck" else model.encoding
    table = pd.DataFrame(codes, columns=[f"{prefix}_{j}" for j in range(codes.shape[1])], index=index)
    table.index.name = table.index.name or "sequence"
    return table


def reconstruct_data(model, path, *, nan_policy="error") -> pd.DataFrame:
    data = _read(model.data_settings_, path, nan_policy=nan_policy, for_model=model)
    if model.data_settings_.get("layout") == "sequences":
        X_hat = model.reconstruct(data.values)  # token models: (N, L) ids
        columns = [f"t{t:03d}_{name}" for t in range(X_hat.shape[1]) for name in data.feature_names] \
            if X_hat.ndim == 3 and X_hat.shape[2] > 1 else [f"t{t:03d}" for t in range(X_hat.shape[1])]
        return pd.DataFrame(X_hat.reshape(len(X_hat), -1), columns=columns, index=data.ids)
    length = model.n_timesteps_
    X, _ = temporalize(data.values, length, stride=length)
    stitched = np.full(data.values.shape, np.nan, np.float32)
    stitched[: len(X) * length] = model.reconstruct(X).reshape(-1, data.values.shape[1])
    return pd.DataFrame(stitched, columns=data.feature_names, index=data.index)


# ---------------------------------------------------------------------- evaluation
def evaluate_model(model, path, report_dir, *, label_column, how=DEFAULTS["how"], threshold=None, early_window=0,
                   point_adjust=False, nan_policy="error", overwrite=False, extra_summary=None) -> dict:
    """Score labelled DATA; write metrics.json, PNG plots and report.html into report_dir (atomically)."""
    from ..evaluation import (detection_metrics, plot_error_heatmap, plot_error_histogram, plot_pr_roc,
                              plot_reconstruction, plot_scores, plot_training_history, sequence_metrics,
                              write_report)

    table, events = score_data(model, path, how=how, threshold=threshold, with_events=True, feature_errors=True,
                               nan_policy=nan_policy, label_column=label_column)
    if "label" not in table:
        raise DataError(f"{path}: label column {label_column!r} not found; name the 0/1 column with --label-column")
    sequences = model.data_settings_.get("layout") == "sequences"
    labels, scores = table["label"].to_numpy(), table["score"].to_numpy()
    if sequences:
        metrics = sequence_metrics(labels, scores, model.threshold_)
    else:
        metrics = detection_metrics(labels, scores, model.threshold_, valid=table["valid"].to_numpy(),
                                    early_window=early_window, point_adjust=point_adjust)
    metrics["threshold_rule"] = str(model.threshold_rule_)

    with staged_directory(report_dir, overwrite=overwrite) as staging:
        images = []
        history = {k: v for k, v in model.history_.items() if k in ("loss", "val_loss")}
        if history.get("loss"):
            images.append(("Training curves", plot_training_history(history, staging / "training_history.png")))
        images.append(("Anomaly score over time with the threshold and true events",
                       plot_scores(scores, model.threshold_, staging / "scores.png",
                                   index=None if sequences else table.index, labels=labels,
                                   valid=None if sequences else table["valid"].to_numpy())))
        images.append(("Score distribution", plot_error_histogram(scores[np.isfinite(scores)], model.threshold_,
                                                                  staging / "score_histogram.png",
                                                                  labels=labels[np.isfinite(scores)])))
        images.append(("Precision-recall and ROC curves", plot_pr_roc(labels[np.isfinite(scores)],
                                                                       scores[np.isfinite(scores)],
                                                                       staging / "pr_roc.png")))
        tables = []
        if not sequences:
            names = [str(n) for n in model.feature_names_in_]
            errors = table[[f"error_{n}" for n in names]].to_numpy()
            images.append(("Reconstruction error per feature over time",
                           plot_error_heatmap(errors, staging / "error_heatmap.png", feature_names=names,
                                              index=table.index)))
            images += _top_event_reconstructions(model, path, table, events, staging, nan_policy)
            tables.append(("Detected events", events.head(50)))
            write_table(events, staging / "events.csv")
            metrics["n_detected_events"] = int(len(events))
        summary = {"data": str(path), "rows" if not sequences else "sequences": int(len(table)),
                   "model window": model.n_timesteps_, "threshold": f"{model.threshold_:.6g} ({model.threshold_rule_})",
                   **(extra_summary or {})}
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
        write_report(staging / "report.html", title="lstmae evaluation", summary=summary, metrics=metrics,
                     images=[(title, str(p)) for title, p in images], tables=tables,
                     notes=metrics.get("notes", []) + metrics.get("warnings", []))
    return metrics


def _top_event_reconstructions(model, path, table, events, out_dir, nan_policy, n=2):
    from ..evaluation import plot_reconstruction

    if events is None or events.empty:
        return []
    data = _read(model.data_settings_, path, nan_policy=nan_policy, for_model=model)
    images = []
    for _, event in events.sort_values("peak_score", ascending=False).head(n).iterrows():
        peak_row = int(table.index.get_loc(event["peak_at"])) if event["peak_at"] in table.index else int(event["end_row"])
        start = max(0, peak_row - model.n_timesteps_ + 1)
        window = data.values[start : start + model.n_timesteps_]
        if len(window) < model.n_timesteps_:
            continue
        x_hat = model.reconstruct(window[None])[0]
        # Ranked in the model's scaled units: in raw units the largest-valued sensor would win.
        scaled_errors = None if model._tokens else model.reconstruction_error(window[None], per="feature")[0]
        file = out_dir / f"event_{int(event['event'])}_reconstruction.png"
        images.append((f"Event {int(event['event'])}: input vs reconstruction of the window ending at its peak",
                       plot_reconstruction(window, x_hat, file, feature_names=data.feature_names,
                                           title=f"event {int(event['event'])} at {event['peak_at']}",
                                           feature_errors=scaled_errors)))
    return images


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ----------------------------------------------------------------------------- demo
DEMO_WINDOW = 30

def run_demo(out_dir, *, epochs=30, seed=0, overwrite=False) -> dict:
    """Synthetic sensors -> train on the clean first 40% -> evaluate the rest; everything in out_dir.

    Built in a temporary sibling directory and renamed into place, so a failure leaves nothing.
    """
    from ..data.synthetic import make_sensor_data

    with staged_directory(out_dir, overwrite=overwrite) as staging:
        frame = make_sensor_data(seed=seed)
        n_train = int(len(frame) * 0.4)
        frame.iloc[:n_train].to_csv(staging / "train.csv", index=False)
        frame.iloc[n_train:].to_csv(staging / "test.csv", index=False)
        # lstmae's defaults, with a small network and few epochs so the demo takes about a minute
        params = dict(encoder=(32, 16), epochs=epochs, patience=5, random_state=seed, device="cpu")
        model = fit_model(staging / "train.csv", params, layout="series", window=DEMO_WINDOW, stride=1,
                          time_column="timestamp", label_column="label", entity_column=None, columns=None,
                          nan_policy="error")
        model.save(staging / "model")
        scores, events = score_data(model, staging / "test.csv", with_events=True, label_column="label")
        write_table(scores, staging / "scores.csv")
        write_table(events, staging / "events.csv")
        metrics = evaluate_model(model, staging / "test.csv", staging / "report", label_column="label",
                                 extra_summary={"what": "built-in synthetic sensors (lstmae.data.synthetic), "
                                                        "trained on the first 40%, evaluated on the rest"})
    return metrics


# -------------------------------------------------------------------------- summary
def summary_table(model_dir, params: dict, features, timesteps) -> str:
    """The Keras-like layer table of a saved model or of architecture options."""
    from ..config import ARCHITECTURE_PARAMS, Architecture, make_architecture
    from ..nn.model import LSTMAutoencoderModule

    if model_dir is not None:
        from ..persistence import read_config

        config = read_config(model_dir)
        arch = Architecture.from_dict(config["architecture"])
        timesteps = timesteps or config["n_timesteps"]
    else:
        if params.get("vocab_size") == "auto":
            raise DataError("a token model's vocabulary comes from its data; summarise a saved model instead")
        arch = make_architecture(features, **{k: params[k] for k in ARCHITECTURE_PARAMS if k in params})
    rows = LSTMAutoencoderModule(arch).layer_table(timesteps)
    lines = [f"{'layer':<44} {'output shape (per sample)':<26} {'returns':<10} {'params':>10}"]
    lines.append("-" * len(lines[0]))
    for row in rows:
        returns = {True: "sequence", False: "last step", None: ""}[row["return_sequences"]]
        lines.append(f"{row['layer']:<44} {str(row['output_shape']):<26} {returns:<10} {row['params']:>10,}")
    lines.append("-" * len(lines[0]))
    lines.append(f"{'total parameters':<82} {sum(r['params'] for r in rows):>10,}")
    if arch.activation == "tanh":
        lines.append("note: nn.LSTM keeps two bias vectors per layer, so tanh layers have 4*units more "
                     "parameters than in Keras")
    return "\n".join(lines)
