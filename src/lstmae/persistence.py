"""A model directory on disk: config.json + model.safetensors, read and written as a plain state.

The estimator gives and takes that state (`LSTMAutoencoder.get_state` / `from_state`); this module
knows no estimator. Weights are read with safetensors, which parses a JSON header and raw tensors
only: a file that is not what it claims (a pickle renamed model.safetensors, a truncated file) is
refused and no code runs. config.json records the SHA-256 of the weights file, so a config and
weights from two different saves are never combined.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as parse_safetensors, save as serialize_safetensors

from . import __version__
from .data.io import OutputKind, staged_directory
from .data.validation import is_integer
from .exceptions import ModelFileError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# What `write_model` may replace with overwrite=True (data.io.check_replaceable): an earlier model, or an empty folder.
MODEL_KIND = OutputKind("a saved model", CONFIG_FILE, (CONFIG_FILE, WEIGHTS_FILE), "format_version")
# A reader may meet a directory mid-swap (config from one save, weights from the next): it reads again.
_READ_ATTEMPTS = 5


def write_model(path, config: dict, tensors: dict[str, torch.Tensor], *, overwrite: bool = False) -> Path:
    """Write the model directory `path` from a state (config JSON-able, named tensors), atomically.

    Everything is written into a temporary sibling directory first, then swapped into place, so a
    crash never leaves half a model and a reader never sees a config without its weights.
    """
    weights = serialize_safetensors({name: t.detach().cpu().contiguous() for name, t in tensors.items()})
    config = {"format_version": FORMAT_VERSION, "lstmae_version": __version__, "torch_version": torch.__version__,
              **config, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    with staged_directory(path, overwrite=overwrite, replaces=MODEL_KIND) as staging:
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        (staging / WEIGHTS_FILE).write_bytes(weights)
    return Path(path)


def read_model(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, tensors) of a model directory; ModelFileError with the reason for anything else."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(f"{path} is not a model directory (expected a directory with "
                             f"{CONFIG_FILE} and {WEIGHTS_FILE}, as written by `lstmae fit`)")
    for attempt in range(_READ_ATTEMPTS):
        config = read_config(path)
        try:
            weights = _read_regular(path / WEIGHTS_FILE).read_bytes()
        except FileNotFoundError:
            if attempt + 1 < _READ_ATTEMPTS:
                continue
            raise ModelFileError(f"{path} is not a model directory: {WEIGHTS_FILE} is missing") from None
        except PermissionError as err:
            raise ModelFileError(f"{path / WEIGHTS_FILE} cannot be read ({err.strerror})") from err
        expected = config.get("weights_sha256")
        if expected is None or hashlib.sha256(weights).hexdigest() == expected:
            break
        time.sleep(0.01 * (attempt + 1))
    tensors = _parse_weights(weights, path / WEIGHTS_FILE)
    if expected is not None and hashlib.sha256(weights).hexdigest() != expected:
        raise ModelFileError(f"{path / WEIGHTS_FILE} does not match {CONFIG_FILE} (SHA-256 differs): the "
                             "directory mixes two saves or the weights were changed; save the model again")
    return config, tensors


def _read_regular(file: Path, fix: str = "the model is corrupt: save it again") -> Path:
    """`file`, or ModelFileError with `fix` when it exists but is not a regular file: reading a folder fails and
    reading a named pipe waits forever."""
    if file.exists() and not file.is_file():
        raise ModelFileError(f"{file} is not a regular file; {fix}")
    return file


def _parse_weights(weights: bytes, source: Path) -> dict[str, torch.Tensor]:
    try:
        return parse_safetensors(weights)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{source} is not a valid safetensors file ({str(err)[:120]}); "
                             "refusing to load it") from err


def read_config(path) -> dict:
    """config.json of a model directory, checked to be an lstmae config this version reads."""
    path = Path(path)
    try:
        config = json.loads(_read_regular(path / CONFIG_FILE).read_text())
    except FileNotFoundError as err:
        raise ModelFileError(f"{path} is not a model directory: {CONFIG_FILE} is missing") from err
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path / CONFIG_FILE} is not valid JSON ({str(err)[:80]}); the model is corrupt") from err
    except (IsADirectoryError, PermissionError) as err:
        raise ModelFileError(f"{path / CONFIG_FILE} cannot be read ({err.strerror})") from err
    if not isinstance(config, dict) or "format_version" not in config:
        raise ModelFileError(f"{path / CONFIG_FILE} is not an lstmae model config (no format_version)")
    version = config["format_version"]
    if not is_integer(version, 1):
        raise ModelFileError(f"{path / CONFIG_FILE}: format_version must be a whole number >= 1, got {version!r}; "
                             "the model is corrupt")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer lstmae (format {version}, this one reads "
                             f"{FORMAT_VERSION}); upgrade lstmae")
    return config


CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_TENSORS = "checkpoint-" + "[0-9a-f]" * 16 + ".safetensors"  # a glob; named by the tensors' digest
# everything a checkpoint folder holds: its files, and those of a write that was killed (data.io's atomic writes)
CHECKPOINT_NAMES = (CHECKPOINT_FILE, CHECKPOINT_TENSORS, ".checkpoint*.tmp")


def write_checkpoint(directory, config: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Write a training checkpoint into `directory` (created if needed): the tensors under a name made from
    their digest, then checkpoint.json naming them, each atomically, then the older tensor files are
    removed. A kill at any point leaves the previous checkpoint or the new one, never a mix."""
    from .data.io import write_bytes_atomic, write_text_atomic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = serialize_safetensors({name: t.detach().cpu().contiguous() for name, t in tensors.items()})
    name = f"checkpoint-{hashlib.sha256(weights).hexdigest()[:16]}.safetensors"
    write_bytes_atomic(directory / name, weights)
    write_text_atomic(directory / CHECKPOINT_FILE, json.dumps({**config, "tensors": name}))
    for old in directory.glob(CHECKPOINT_TENSORS):
        if old.name != name:
            old.unlink(missing_ok=True)


def read_checkpoint(directory) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """(config, tensors) of the checkpoint in `directory`, or None when there is none."""
    directory = Path(directory)
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
        tensors_path = _read_regular(directory / config["tensors"], "remove the checkpoint folder to start over")
        tensors = _parse_weights(tensors_path.read_bytes(), tensors_path)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, OSError) as err:
        raise ModelFileError(f"{path}: not a readable lstmae checkpoint ({str(err)[:80]}); remove the folder "
                             "to start over") from err
    return config, tensors
