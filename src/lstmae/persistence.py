"""Save and load models as a directory: config.json + model.safetensors. Never a pickle.

Loading rebuilds the network from config.json and loads the weights strictly with
safetensors, which parses a JSON header and raw tensors only: a file that is not what it
claims (a pickle renamed model.safetensors, a truncated file) is refused and no code runs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import Architecture
from .data.scaling import FeatureScaler
from .data.io import staged_directory, umask
from .exceptions import DataError, ModelFileError
from .nn.model import LSTMAutoencoderModule

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_ERROR_MODEL_PREFIX = "error_model."


def save_model(model, path, *, overwrite: bool = False, extra: dict | None = None) -> Path:
    """Write `model` (a fitted LSTMAutoencoder) to the directory `path` atomically.

    Everything is written into a temporary sibling directory first, then renamed into place,
    so a crash never leaves half a model. `extra` (JSON-able) is stored under "data" (the CLI
    keeps window, stride, layout and column settings there).
    """
    error_config, error_arrays = model.error_model_.get_state()
    config = {
        "format_version": FORMAT_VERSION,
        "lstmae_version": __version__,
        "torch_version": torch.__version__,
        "params": _jsonable(model.get_params()),
        "architecture": model.architecture_.to_dict(),
        "n_timesteps": model.n_timesteps_,
        "feature_names": [str(f) for f in getattr(model, "feature_names_in_", [])] or None,
        "scaler": model.scaler_.to_dict(),
        "error_model": error_config,
        "threshold": {"rule": str(model.threshold_rule_), "value": model.threshold_},
        "random_state": model.random_state,
        "training": _jsonable(model.history_),
        "data": _jsonable(extra if extra is not None else getattr(model, "data_settings_", {})),
    }
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.module_.state_dict().items()}
    for name, array in error_arrays.items():
        tensors[_ERROR_MODEL_PREFIX + name] = torch.from_numpy(np.ascontiguousarray(array))

    with staged_directory(path, overwrite=overwrite) as staging:
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        save_file(tensors, str(staging / WEIGHTS_FILE))
        os.chmod(staging / WEIGHTS_FILE, 0o666 & ~umask())
    return Path(path)


def load(path, *, device: str = "cpu"):
    """Load a model directory written by `save`; the network is rebuilt from config.json and its
    weights loaded strictly. Raises ModelFileError with the reason for anything else."""
    from .estimator import LSTMAutoencoder
    from .scoring import parse_threshold
    from .scoring.error_models import error_model_from_state

    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path} is not a model directory (expected a directory with "
                             f"{CONFIG_FILE} and {WEIGHTS_FILE}, as written by `lstmae fit`)")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise ModelFileError(f"{path} is not a model directory: {name} is missing")
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path / CONFIG_FILE} is not valid JSON ({err}); the model is corrupt") from err
    if not isinstance(config, dict) or "format_version" not in config:
        raise ModelFileError(f"{path / CONFIG_FILE} is not an lstmae model config (no format_version)")
    if config["format_version"] > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer lstmae (format {config['format_version']}, "
                             f"this one reads {FORMAT_VERSION}); upgrade lstmae")
    try:
        tensors = load_file(str(path / WEIGHTS_FILE), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{path / WEIGHTS_FILE} is not a valid safetensors file ({err}); "
                             "refusing to load it") from err
    try:
        params = dict(config["params"])
        for key in ("encoder", "decoder"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        model = LSTMAutoencoder(**params)
        model.architecture_ = Architecture.from_dict(config["architecture"])
        module = LSTMAutoencoderModule(model.architecture_)
        weights = {k: v for k, v in tensors.items() if not k.startswith(_ERROR_MODEL_PREFIX)}
        module.load_state_dict(weights, strict=True)
        error_arrays = {k[len(_ERROR_MODEL_PREFIX):]: v.numpy() for k, v in tensors.items()
                        if k.startswith(_ERROR_MODEL_PREFIX)}
        model.error_model_ = error_model_from_state(config["error_model"], error_arrays)
        model.scaler_ = FeatureScaler.from_dict(config["scaler"])
        model.threshold_rule_ = parse_threshold(config["threshold"]["rule"])
        model.threshold_ = float(config["threshold"]["value"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path} is corrupt or incomplete: {str(err).splitlines()[0]}") from err
    model.module_ = module.to(device).eval()
    model.n_features_in_ = model.architecture_.n_features
    model.n_timesteps_ = int(config["n_timesteps"])
    if config.get("feature_names"):
        model.feature_names_in_ = np.asarray(config["feature_names"], dtype=object)
    model.history_ = config.get("training", {})
    model.data_settings_ = config.get("data", {})
    return model


def read_config(path) -> dict:
    """config.json of a model directory, without loading torch weights."""
    path = Path(path)
    try:
        return json.loads((path / CONFIG_FILE).read_text())
    except FileNotFoundError as err:
        raise ModelFileError(f"{path} is not a model directory: {CONFIG_FILE} is missing") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path / CONFIG_FILE} is not valid JSON ({err}); the model is corrupt") from err


def _jsonable(value):
    """Tuples -> lists, numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
