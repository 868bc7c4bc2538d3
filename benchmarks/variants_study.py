"""Reconstruction error of each lstmae variant on the same data (issue 4, item 6).

    python benchmarks/variants_study.py [--quick] [--out benchmarks/results] [--data-dir DIR]

Every variant in `VARIANTS` (a preset plus overrides) is trained with the same epochs, batch
size, loss (MSE), learning rate (Adam 1e-3) and seed on each data set:
- ECG5000 normal beats: a seeded draw of normal beats (class 1, both official splits) to train
  on; held out: other normal beats and as many anomalous beats (classes 2-5).
- ItalyPowerDemand: the official TRAIN split (labels unused); held out: the TEST split.
  (GunPoint, 150 steps, needs ~200 epochs to leave the mean curve: too slow for 9 variants.)

Reported per variant: held-out reconstruction MSE (in the model's standardised units, so data
sets and variants are comparable), parameter count, code size Z, training time, and on ECG5000
the MSE of the anomalous beats and the ROC-AUC of per-beat MSE for normal vs anomalous. The
last column is the tutorial's point about the no-bottleneck network: reconstructing well is not
the goal; reconstructing normal data better than anomalies is.

Also home of the data loaders that `classification_study.py` shares. Writes
variants_study.{json,md} (variants_quick.* with --quick) to --out; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score

import lstmae
from lstmae import LSTMAutoencoder
from lstmae.config import ARCHITECTURE_PARAMS, Architecture, make_architecture
from lstmae.exceptions import DataError, TrainingDiverged
from lstmae.nn.model import LSTMAutoencoderModule
from machine import cpu_name  # benchmarks/ is on sys.path when a script there runs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

# name -> (preset, overrides). Add a variant by adding a line; one the installed lstmae does not
# know (an unknown preset or parameter) is reported as skipped, not fatal.
VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("default", {}),
    "keras_tutorial": ("keras_tutorial", {}),
    "keras_minimal": ("keras_minimal", {}),
    "pytorch_tutorial": ("pytorch_tutorial", {}),
    "single_layer": ("single_layer", {}),
    "no_bottleneck": ("no_bottleneck", {}),
    "bidirectional": ("default", {"bidirectional": True}),
    "dropout 0.2": ("default", {"dropout": 0.2}),
    "EncDec-AD decoder": ("default", {"decoder_type": "encdec_ad"}),
}

# Per data set, the same training settings for every variant (presets' own loss and learning
# rate, e.g. the PyTorch tutorial's L1, give way to SAME_FOR_ALL; a variant's own overrides win).
SAME_FOR_ALL = {"loss": "mse", "learning_rate": 1e-3}
ECG, ITALY = "ECG5000 normal beats", "ItalyPowerDemand"
SETTINGS = {
    "full": {ECG: {"n_train": 200, "n_heldout": 400, "epochs": 20, "batch_size": 16},
             ITALY: {"epochs": 100, "batch_size": 8}},
    "quick": {ECG: {"n_train": 64, "n_heldout": 64, "epochs": 2, "batch_size": 16},
              ITALY: {"epochs": 2, "batch_size": 8}},
}


# ------------------------------------------------------------------------------ data loading
def check_data_dir(data_dir: Path) -> Path:
    """Exit with one clear line when the shared data folder is missing."""
    if not Path(data_dir).is_dir():
        raise SystemExit(f"error: data folder {data_dir} not found; pass --data-dir pointing at the shared "
                         "data sets (../shared/data beside the repository, see its README.md)")
    return Path(data_dir)


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A univariate, equal-length sktime/aeon `.ts` file -> series (N, L) float32, labels (N,) str.

    Lines starting with '#' are comments, '@' lines the header; after '@data' each line is
    `v1,v2,...,vL:label`.
    """
    series, labels = [], []
    in_data = False
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                in_data = in_data or line.lower().startswith("@data")
                continue
            if not in_data or ":" not in line:
                raise DataError(f"{path}: line {line_number}: expected 'v1,...,vL:label' after @data, "
                                f"got {line[:40]!r}; give a univariate .ts file with class labels")
            values, label = line.rsplit(":", 1)
            row = np.array(values.split(","), dtype=np.float32)
            if series and len(row) != len(series[0]):
                raise DataError(f"{path}: line {line_number}: expected {len(series[0])} values, got {len(row)}; "
                                "only equal-length series are supported")
            series.append(row)
            labels.append(label)
    if not series:
        raise DataError(f"{path}: no series found; expected lines 'v1,...,vL:label' after '@data'")
    return np.stack(series), np.array(labels)


def load_ucr(data_dir: Path, name: str) -> dict:
    """The official TRAIN and TEST splits of a UCR data set: X_train (N, L), y_train (N,), ..."""
    folder = Path(data_dir) / "ucr_classification" / name
    X_train, y_train = read_ts(folder / f"{name}_TRAIN.ts")
    X_test, y_test = read_ts(folder / f"{name}_TEST.ts")
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}


def load_ecg5000(data_dir: Path) -> pd.DataFrame:
    """ecg5000_full.csv: columns ucr_split, ucr_class (train rows only), is_anomaly, t000..t139."""
    return pd.read_csv(Path(data_dir) / "ecg5000" / "ecg5000_full.csv")


def ecg_beats(frame: pd.DataFrame) -> np.ndarray:
    """The beats of an ECG5000 frame as (N, 140) float32."""
    return frame.filter(regex=r"^t\d+$").to_numpy(dtype=np.float32)


def variant_data(data_dir: Path, settings: dict, seed: int) -> dict:
    """{data set: {"train": (N, L), "heldout": (M, L), "anomalous": (M, L) or None}}."""
    frame = load_ecg5000(data_dir)
    rng = np.random.default_rng(seed)
    normal = rng.permutation(ecg_beats(frame[frame["is_anomaly"] == 0]))
    anomalous = rng.permutation(ecg_beats(frame[frame["is_anomaly"] == 1]))
    n_train, n_heldout = settings[ECG]["n_train"], settings[ECG]["n_heldout"]
    italy = load_ucr(data_dir, ITALY)
    return {
        ECG: {"train": normal[:n_train], "heldout": normal[n_train : n_train + n_heldout],
              "anomalous": anomalous[:n_heldout]},
        ITALY: {"train": italy["X_train"], "heldout": italy["X_test"], "anomalous": None},
    }


# ------------------------------------------------------------------------------- the study
def describe(arch: Architecture) -> str:
    """A short architecture line such as 'tanh, encoder 128-64, decoder 64-128, dense'."""
    parts = [arch.activation, f"encoder {'-'.join(map(str, arch.encoder))}",
             f"decoder {'-'.join(map(str, arch.decoder))}"]
    if getattr(arch, "decoder_type", "repeat") != "repeat":
        parts[-1] = f"{arch.decoder_type} decoder {'-'.join(map(str, arch.decoder))}"
    if arch.output_layer:
        parts.append("dense")
    if arch.bidirectional:
        parts.append("bidirectional encoder")
    if arch.dropout:
        parts.append(f"dropout {arch.dropout:g}")
    if not arch.bottleneck:
        parts.append("no bottleneck")
    return ", ".join(parts)


def run_variant(name: str, data: dict, training: dict, seed: int) -> dict:
    """Train one variant on data["train"] (N, L) for training["epochs"] epochs of
    training["batch_size"], no early stopping; measure it on the held-out parts."""
    preset, overrides = VARIANTS[name]
    try:
        # One loss and learning rate for all, so that only the architecture differs.
        model = LSTMAutoencoder.from_preset(preset, **{**SAME_FOR_ALL, **overrides}, epochs=training["epochs"],
                                            batch_size=training["batch_size"], patience=None,
                                            random_state=seed, progress=False)
    except (TypeError, ValueError) as error:
        return {"variant": name, "skipped": f"not available in lstmae {lstmae.__version__}: {error}"}
    started = time.perf_counter()
    try:
        model.fit(data["train"])
        diverged = None
    except (FloatingPointError, TrainingDiverged) as error:  # relu LSTMs can blow up: a result to report
        diverged = str(error).split(";")[0]
    # a fit that fails leaves the model unfitted: its network is rebuilt from the parameters to describe it
    train = np.asarray(data["train"])
    arch = make_architecture(1 if train.ndim == 2 else train.shape[2],
                             **{key: getattr(model, key) for key in ARCHITECTURE_PARAMS if key != "vocab_size"})
    result = {
        "variant": name, "preset": preset, "overrides": overrides, "architecture": describe(arch),
        "params": int(sum(p.numel() for p in LSTMAutoencoderModule(arch).parameters())),
        "code_size": arch.code_size if arch.bottleneck else None,
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    if diverged:
        return {**result, "diverged": diverged}
    heldout = model.reconstruction_error(data["heldout"], per="sample", kind="mse")
    result.update(epochs_run=model.history_["epochs_run"], heldout_mse=float(heldout.mean()))
    if data["anomalous"] is not None:
        anomalous = model.reconstruction_error(data["anomalous"], per="sample", kind="mse")
        result["anomalous_mse"] = float(anomalous.mean())
        labels = np.r_[np.zeros(len(heldout)), np.ones(len(anomalous))]
        result["roc_auc"] = float(roc_auc_score(labels, np.r_[heldout, anomalous]))
    return result


def run_variants(data_dir: Path, *, quick: bool = False, seed: int = 0, jobs: int = 1) -> dict:
    """Every variant on every data set, `jobs` at a time; returns the JSON-ready report."""
    settings = SETTINGS["quick" if quick else "full"]
    datasets = variant_data(data_dir, settings, seed)
    report = {"settings": {"seed": seed, "jobs": jobs, **settings}, "datasets": {}}
    for dataset, data in datasets.items():
        log(f"variants: {dataset}: {len(VARIANTS)} variants, {jobs} at a time ...")
        runs = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(run_variant)(name, data, settings[dataset], seed) for name in VARIANTS)
        results = []
        for result in runs:
            log(f"variants: {dataset}: {summary_line(result)}")
            results.append(result)
        n_anomalous = 0 if data["anomalous"] is None else len(data["anomalous"])
        report["datasets"][dataset] = {"n_train": len(data["train"]), "n_heldout": len(data["heldout"]),
                                       "n_anomalous": n_anomalous, "length": data["train"].shape[1],
                                       **settings[dataset], "results": results}
    return report


def summary_line(result: dict) -> str:
    if "skipped" in result:
        return f"{result['variant']}: skipped ({result['skipped']})"
    if "diverged" in result:
        return f"{result['variant']}: {result['diverged']}"
    return (f"{result['variant']}: held-out MSE {result['heldout_mse']:.4f}, {result['params']} params, "
            f"{result['train_seconds']:.1f} s")


def variants_markdown(report: dict) -> str:
    """One Markdown table per data set, ready for the README."""
    settings = report["settings"]
    lines = [f"Per data set the same settings for every variant (Adam lr 1e-3, seed {settings['seed']}, "
             "no early stopping). MSE in standardised units (scaler fitted on the training part), lower "
             "is better. ROC-AUC: per-beat MSE as the score, held-out normal vs anomalous beats. train s: "
             f"wall time, 1 thread per model, {settings.get('jobs', 1)} models side by side.", ""]
    for dataset, block in report["datasets"].items():
        ecg = bool(block.get("n_anomalous"))
        lines.append(f"**{dataset}** (train {block['n_train']}, held out {block['n_heldout']}, length "
                     f"{block['length']}; {block['epochs']} epochs, batch {block['batch_size']})")
        lines.append("")
        header = ["variant", "architecture", "params", "Z", "held-out MSE"]
        header += ["anomalous MSE", "ROC-AUC normal vs anomalous"] if ecg else []
        header += ["train s"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in block["results"]:
            if "skipped" in r:
                lines.append(f"| {r['variant']} | skipped: not in this lstmae |" + " |" * (len(header) - 2))
                continue
            row = [r["variant"], r["architecture"], f"{r['params']:,}", str(r["code_size"] or "none")]
            if "diverged" in r:
                row += [r["diverged"]] + ["-"] * (2 if ecg else 0)
            else:
                row.append(f"{r['heldout_mse']:.4f}")
                row += [f"{r['anomalous_mse']:.4f}", f"{r['roc_auc']:.3f}"] if ecg else []
            row += [f"{r['train_seconds']:.0f}"]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ shared CLI bits
def machine() -> dict:
    """Versions, CPUs and the load average: timings on a shared machine need the last."""
    return {"python": platform.python_version(), "torch": torch.__version__, "lstmae": lstmae.__version__,
            "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_average_1_5_15min": list(os.getloadavg())}


def write_outputs(out: Path, stem: str, report: dict, markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown + "\n")
    log(f"wrote {out / stem}.{{json,md}}")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small data, a few epochs: a smoke run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=0)
    # One thread: these small LSTMs gain little from a second one, and on a shared machine
    # torch's spinning OpenMP threads slow down 10x and more when another process takes a core.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="processes training models side by side (default 2)")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_and_write(data_dir: Path, out: Path, *, quick: bool = False, seed: int = 0, jobs: int = 1) -> dict:
    """Run the comparison and write variants_study.{json,md} (variants_quick.* when quick)."""
    started = time.perf_counter()
    report = run_variants(data_dir, quick=quick, seed=seed, jobs=jobs)
    report["runtime_seconds"] = round(time.perf_counter() - started, 1)
    report["machine"] = machine()
    write_outputs(out, "variants_quick" if quick else "variants_study", report, variants_markdown(report))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    args = parser.parse_args(argv)
    data_dir = check_data_dir(args.data_dir)
    torch.set_num_threads(args.threads)
    run_and_write(data_dir, args.out, quick=args.quick, seed=args.seed, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
