"""Readers for the real data sets of the detection study (layout: ../shared/data/README.md).

Every series family becomes a list of `SeriesTask`: an anomaly-free training part and a
labelled test part of the same series. ECG5000 becomes one `BeatTask` of independent beats.
numpy / pandas only.
"""
from __future__ import annotations

import ast
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SERIES_FAMILIES = ("msl", "nab", "keogh", "ucr")
# A UCR top-1 location counts as a hit within this many rows of the anomaly (Wu & Keogh 2021).
UCR_TOLERANCE = 100


@dataclass
class SeriesTask:
    """One series: train (T_train, F) is anomaly-free, test (T_test, F) has labels (T_test,) 0/1.

    anomaly: for UCR, the one anomaly as inclusive test-row indices (start, end); else None.
    """

    family: str
    name: str
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray
    anomaly: tuple[int, int] | None = None


@dataclass
class BeatTask:
    """Independent fixed-length beats: train (N_train, L) normals; test (N_test, L), labels (N_test,)."""

    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray


def load_ecg5000(data_dir: Path, seed: int, test_fraction: float = 0.2) -> BeatTask:
    """ECG5000: a seeded `test_fraction` of the normal beats plus every anomalous beat form the test set.

    The official UCR train/test split is ignored: only normals may be trained on, and the
    anomaly labels (class 1 = normal) are known for all 5000 beats.
    """
    frame = pd.read_csv(data_dir / "ecg5000" / "ecg5000_full.csv")
    beats = frame.filter(regex=r"^t\d+$").to_numpy(np.float32)
    is_anomaly = frame["is_anomaly"].to_numpy().astype(np.int8)
    normal = np.flatnonzero(is_anomaly == 0)
    normal = normal[np.random.default_rng(seed).permutation(len(normal))]
    n_test = int(round(test_fraction * len(normal)))
    test = np.concatenate([normal[:n_test], np.flatnonzero(is_anomaly == 1)])
    return BeatTask(train=beats[normal[n_test:]], test=beats[test], labels=is_anomaly[test])


def load_msl(data_dir: Path) -> list[SeriesTask]:
    """NASA MSL: 27 channels (T, 55); train arrays are normal, labels index the test arrays."""
    root = data_dir / "msl"
    catalogue = pd.read_csv(root / "labeled_anomalies.csv")
    tasks = []
    for row in catalogue.sort_values("chan_id").itertuples():
        train = _load_gz(root / "train" / f"{row.chan_id}.npy.gz")
        test = _load_gz(root / "test" / f"{row.chan_id}.npy.gz")
        labels = np.zeros(len(test), np.int8)
        for start, end in ast.literal_eval(row.anomaly_sequences):
            labels[start : end + 1] = 1
        tasks.append(SeriesTask("msl", row.chan_id, train, test, labels))
    return tasks


def load_nab(data_dir: Path, probation_fraction: float = 0.15) -> list[SeriesTask]:
    """NAB: train on the first 15% of each series (NAB's probationary period), test on the rest.

    A row is anomalous when its timestamp lies inside a labelled window (ends included).
    Series without anomalies are kept: their AUCs are undefined, their alarm rate is not.
    """
    root = data_dir / "nab"
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    tasks = []
    for path in sorted((root / "data").glob("*/*.csv")):
        key = f"{path.parent.name}/{path.name}"
        frame = pd.read_csv(path, parse_dates=["timestamp"])
        labels = np.zeros(len(frame), np.int8)
        for start, end in windows[key]:
            inside = frame["timestamp"].between(pd.Timestamp(start), pd.Timestamp(end))
            labels[inside.to_numpy()] = 1
        values = frame[["value"]].to_numpy(np.float32)
        n_train = int(probation_fraction * len(frame))
        tasks.append(SeriesTask("nab", path.stem, values[:n_train], values[n_train:], labels[n_train:]))
    return tasks


def load_keogh(data_dir: Path) -> list[SeriesTask]:
    """Keogh ECG: both leads (F = 2), the documented train/test slices; files without a split are skipped."""
    root = data_dir / "keogh_ecg"
    catalogue = json.loads((root / "labels_and_splits.json").read_text())["files"]
    tasks = []
    for file_name, info in sorted(catalogue.items()):
        if not info.get("split"):
            continue
        leads = np.loadtxt(root / file_name, dtype=np.float64)[:, 1:].astype(np.float32)
        row = np.arange(len(leads))
        labels = np.zeros(len(leads), np.int8)
        for start, end in info["anomaly_intervals_exclusive"]:
            labels[(row > start) & (row < end)] = 1
        train, test = (slice(*info["split"][part]) for part in ("train", "test"))
        tasks.append(SeriesTask("keogh", Path(file_name).stem, leads[train], leads[test], labels[test]))
    return tasks


UCR_NAME = re.compile(r"^(\d+)_UCR_Anomaly_(\w+?)_(\d+)_(\d+)_(\d+)$")


def load_ucr(data_dir: Path) -> list[SeriesTask]:
    """UCR anomaly archive: [0, trainEnd) is normal; one anomaly [anomStart, anomEnd] in the rest."""
    tasks = []
    for path in sorted((data_dir / "ucr_anomaly").glob("*.txt")):
        match = UCR_NAME.match(path.stem)
        if match is None:
            raise ValueError(f"{path.name}: expected <id>_UCR_Anomaly_<name>_<trainEnd>_<start>_<end>.txt")
        series_id, name, train_end, start, end = match.groups()
        train_end, start, end = int(train_end), int(start), int(end)
        values = np.loadtxt(path, dtype=np.float64).astype(np.float32).reshape(-1, 1)
        labels = np.zeros(len(values), np.int8)
        labels[start : end + 1] = 1
        tasks.append(SeriesTask("ucr", f"{series_id}_{name}", values[:train_end], values[train_end:],
                                labels[train_end:], anomaly=(start - train_end, end - train_end)))
    return tasks


LOADERS = {"msl": load_msl, "nab": load_nab, "keogh": load_keogh, "ucr": load_ucr}


def _load_gz(path: Path) -> np.ndarray:
    with gzip.open(path) as handle:
        return np.load(handle).astype(np.float32)
