"""Encodings -> classifier, measured (issue 4, item 5), and in the same run the variant
comparison of `variants_study.py` (item 6).

    python benchmarks/classification_study.py [--quick] [--out benchmarks/results] [--data-dir DIR]
                                              [--jobs 2] [--threads 1] [--no-variants] [--defaults]
                                              [--set patience=10 ...]

Protocol (the autoencoder never sees a label):
- GunPoint, ItalyPowerDemand: the official TRAIN/TEST splits. Everything is fitted on TRAIN,
  accuracy is measured once on TEST.
- ECG5000 (5 classes): only the 500 official training beats have a class, so accuracy is the
  mean of a seeded, stratified 5-fold cross-validation on those 500 beats.
- Methods: 1-nearest-neighbour Euclidean on the raw series; logistic regression on the
  standardised raw series; and LSTM-AE encodings -> StandardScaler -> logistic regression
  (`EncoderSelection`): the autoencoder is fitted unsupervised on the training part, the
  classifier on its encodings, either the bottleneck (N, Z) or encoding="mean" (each encoder
  layer's states averaged over time). Every logistic regression chooses its regularisation C
  by 5-fold CV on the training part.
- The architecture (among `CANDIDATES`) and the encoding are chosen together on the training
  part only, never on test data: k-fold CV for GunPoint and ItalyPowerDemand, one stratified
  validation third inside every outer fold for ECG5000 (nested; `SELECTION_FOLDS`). Every
  (architecture, encoding)'s validation accuracy is reported. The headline row is the chosen
  one; two more rows give each encoding of the same refitted autoencoder.
- Controls: both encodings of an untrained encoder (the first candidate, epochs=0: its seeded
  random weights), so the table shows what the autoencoder's training adds.
- The chosen autoencoder's reconstruction MSE on the test part (scaled units; 1.0 is what
  predicting each feature's training mean gives) shows that it learned to reconstruct.

- At the defaults (issue 18): `LSTMAutoencoder(random_state=seed)` with nothing else set, fitted
  on each training part, every encoding -> StandardScaler -> logistic regression, beside 1-NN and
  the raw-series logistic regression on the same parts, with each fit's seconds. No selection:
  this is what `LSTMAutoencoder().fit(X).transform(X)` gives a user. `--defaults` runs only this
  part and keeps the selection rows of the report already in --out (they are expensive and do not
  depend on the defaults). `--set NAME=VALUE` changes one of the autoencoder's parameters in this
  part (VALUE is JSON or a string), to measure a change of a default before it is made; the
  report's settings record it.

Writes classification_study.{json,md} (classification_quick.* with --quick) to --out, then the
variant comparison's files. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lstmae import LSTMAutoencoder
from lstmae.config import DEFAULTS, ENCODINGS
from overrides import parse_assignments
from variants_study import (check_data_dir, common_arguments, ecg_beats, load_ecg5000, load_ucr, log, machine,
                            run_and_write, write_outputs)

# Encoder settings tried: a small code, a bigger one, and a bidirectional encoder. One is chosen
# per data set (per outer fold for ECG5000) on a validation split of the training part.
CANDIDATES: dict[str, dict] = {
    "tanh 32-16 (Z=16)": {"encoder": (32, 16)},
    "tanh 64-32 (Z=32)": {"encoder": (64, 32)},
    "bidirectional tanh 32-16 (Z=32)": {"encoder": (32, 16), "bidirectional": True},
}
# Training settings per data set, the same for every candidate. The small sets need many small
# batches: with the default L1 loss the reconstruction first sits at the median for hundreds of
# steps. At 200 epochs (GunPoint) and 40 (ECG5000) it had not left it: test MSE 0.97 and 0.52.
TRAINING = {
    "GunPoint": {"epochs": 600, "batch_size": 8},
    "ItalyPowerDemand": {"epochs": 200, "batch_size": 8},
    "ECG5000": {"epochs": 150, "batch_size": 16},
}
QUICK = {"epochs": 2, "ecg_beats": 100, "candidates": 1}
OUTER_FOLDS = 5
NEAREST = "1-NN Euclidean (raw)"
UNTRAINED = {"bottleneck": "untrained encoder (epochs=0), bottleneck + LR",
             "mean": "untrained encoder (epochs=0), mean states + LR"}
BOTTLENECK = "LSTM-AE bottleneck + logistic regression"
MEAN = "LSTM-AE mean states (encoding='mean') + logistic regression"
CHOSEN = "LSTM-AE, encoding chosen on the training part, + logistic regression"
FIXED = {BOTTLENECK: "bottleneck", MEAN: "mean"}  # rows that fix the encoding of the chosen autoencoder
METHOD_ORDER = (NEAREST, "logistic regression (raw)", *UNTRAINED.values(), BOTTLENECK, MEAN, CHOSEN)
# Selection folds per data set: k-fold on the small UCR training parts (a validation third of
# GunPoint's 50 or ItalyPowerDemand's 67 series decides by one or two series: on
# ItalyPowerDemand one split gave the chosen encoder 1.000, then 0.948 on TEST); one validation
# third inside each outer fold for ECG5000, where k folds would multiply the longest part of the run.
SELECTION_FOLDS = {"GunPoint": 3, "ItalyPowerDemand": 5, "ECG5000": 1}
REFERENCES = ("Published references: 1-NN Euclidean in the UCR archive, GunPoint 0.913, ItalyPowerDemand 0.955, "
              "ECG5000 0.925 (official test split); supervised state of the art GunPoint 1.00, "
              "ItalyPowerDemand ~0.97, ECG5000 ~0.94-0.95.")
VALIDATION_FOLDS = 3  # a single validation split is the first of 3 stratified folds: a third
RAW_LR = "logistic regression (raw)"


class ValidationSplit(StratifiedKFold):
    """One stratified train/validation split: the first fold of StratifiedKFold.

    (StratifiedShuffleSplit refuses a class with a single member, as ECG5000's class 5 has in
    some outer folds.)
    """

    def split(self, X, y=None, groups=None):
        yield next(super().split(X, y, groups))

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return 1


def logistic_regression() -> GridSearchCV:
    """The classifier on raw series and on encodings: LogisticRegression whose C (1e-2..1e2) is
    chosen by stratified 5-fold CV on the training part."""
    return GridSearchCV(LogisticRegression(max_iter=5000), {"C": np.logspace(-2, 2, 5)}, cv=5)


def autoencoder(training: dict, seed: int, **encoder) -> LSTMAutoencoder:
    return LSTMAutoencoder(**encoder, **training, patience=None, random_state=seed, progress=False)


def encoding_pipeline(training: dict, seed: int, **encoder) -> Pipeline:
    """LSTMAutoencoder -> StandardScaler -> logistic regression; X (N, L) in, classes out."""
    return make_pipeline(autoencoder(training, seed, **encoder), StandardScaler(), logistic_regression())


def encode(fitted: LSTMAutoencoder, encoding: str, X: np.ndarray) -> np.ndarray:
    """The fitted autoencoder's `encoding` of X (N, L), leaving the autoencoder as it was."""
    return copy.copy(fitted).set_params(encoding=encoding).transform(X)


def validation_accuracies(model: LSTMAutoencoder, X, y, train, validation) -> dict[str, float]:
    """Fit `model` on X[train]; per encoding, a classifier's accuracy on X[validation]."""
    model.fit(X[train])
    return {encoding: float(make_pipeline(StandardScaler(), logistic_regression())
                            .fit(encode(model, encoding, X[train]), y[train])
                            .score(encode(model, encoding, X[validation]), y[validation]))
            for encoding in ENCODINGS}


class EncoderSelection(ClassifierMixin, BaseEstimator):
    """LSTM-AE encodings + logistic regression, the encoder chosen on the training part only.

    fit(X (N, L), y): every candidate architecture is fitted (without labels) on each selection
    fold's training series; a classifier on each of its encodings (bottleneck, mean states) is
    scored on the fold's validation series. The (architecture, encoding) of best mean validation
    accuracy (ties: the first) is refitted on all of X, and a classifier on each of its
    encodings, so that `score(X, y, encoding=...)` also gives the fixed-encoding rows.
    folds: k-fold selection; 1 is one stratified validation third.
    """

    def __init__(self, training: dict | None = None, candidates: dict | None = None, folds: int = 1,
                 seed: int = 0, jobs: int | None = None):
        self.training, self.candidates, self.folds, self.seed, self.jobs = training, candidates, folds, seed, jobs

    def fit(self, X, y):
        splitter = (ValidationSplit(VALIDATION_FOLDS, shuffle=True, random_state=self.seed) if self.folds == 1
                    else StratifiedKFold(self.folds, shuffle=True, random_state=self.seed))
        splits = list(splitter.split(X, y))
        names = list(self.candidates)
        scores = Parallel(n_jobs=self.jobs)(
            delayed(validation_accuracies)(autoencoder(self.training, self.seed, **self.candidates[name]), X, y, *split)
            for name in names for split in splits)
        per_name = [scores[i * len(splits):(i + 1) * len(splits)] for i in range(len(names))]
        self.validation_accuracy_ = {(name, encoding): float(np.mean([fold[encoding] for fold in folds]))
                                     for name, folds in zip(names, per_name) for encoding in ENCODINGS}
        self.selected_ = max(self.validation_accuracy_, key=self.validation_accuracy_.get)  # first of the best
        name, self.encoding_ = self.selected_
        self.autoencoder_ = autoencoder(self.training, self.seed, **self.candidates[name]).fit(X)
        self.classifiers_ = {encoding: make_pipeline(StandardScaler(), logistic_regression())
                             .fit(encode(self.autoencoder_, encoding, X), y) for encoding in ENCODINGS}
        self.classes_ = self.classifiers_[self.encoding_].classes_
        return self

    def predict(self, X) -> np.ndarray:
        return self.classifiers_[self.encoding_].predict(encode(self.autoencoder_, self.encoding_, X))

    def score(self, X, y, sample_weight=None, encoding: str | None = None) -> float:
        """Accuracy with the chosen encoding, or with the given one (same autoencoder)."""
        encoding = encoding or self.encoding_
        return float(self.classifiers_[encoding].score(encode(self.autoencoder_, encoding, X), y, sample_weight))

    def summary(self) -> dict:
        """What was chosen, and every (architecture, encoding)'s mean validation accuracy."""
        return {"selected": list(self.selected_), "folds": self.folds,
                "validation_accuracy": {f"{name} / {encoding}": accuracy
                                        for (name, encoding), accuracy in self.validation_accuracy_.items()}}


def baselines(training: dict, candidates: dict, seed: int) -> dict:
    """The methods without an encoder selection: raw-series classifiers and the untrained-encoder controls."""
    first = next(iter(candidates.values()))
    return {
        NEAREST: KNeighborsClassifier(n_neighbors=1),
        RAW_LR: make_pipeline(StandardScaler(), logistic_regression()),
        **{name: encoding_pipeline({**training, "epochs": 0}, seed, encoding=encoding, **first)
           for encoding, name in UNTRAINED.items()},
    }


def reconstruction_mse(selection: EncoderSelection, X: np.ndarray) -> float:
    """Mean reconstruction MSE (scaled units) of the chosen autoencoder on X (N, L)."""
    return float(selection.autoencoder_.reconstruction_error(X, kind="mse").mean())


def run_train_test(name: str, data: dict, training: dict, candidates: dict, seed: int, jobs: int) -> dict:
    """Fit every method on TRAIN, accuracy on TEST."""
    X_train, y_train, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    result = {"dataset": name, "protocol": "official TRAIN/TEST split", "n_train": len(X_train),
              "n_test": len(X_test), "length": X_train.shape[1], "n_classes": len(np.unique(y_train)),
              "accuracy": {}, "seconds": {}}
    for method, estimator in baselines(training, candidates, seed).items():
        result["accuracy"][method] = float(estimator.fit(X_train, y_train).score(X_test, y_test))
    started = time.perf_counter()
    selection = EncoderSelection(training, candidates, SELECTION_FOLDS[name], seed, jobs).fit(X_train, y_train)
    result["seconds"]["encodings"] = round(time.perf_counter() - started, 1)
    for method, encoding in FIXED.items():
        result["accuracy"][method] = selection.score(X_test, y_test, encoding=encoding)
    result["accuracy"][CHOSEN] = selection.score(X_test, y_test)
    result["selection"] = selection.summary()
    result["reconstruction_mse"] = reconstruction_mse(selection, X_test)
    return result


def run_cross_validation(name: str, X: np.ndarray, y: np.ndarray, training: dict, candidates: dict,
                         seed: int, jobs: int) -> dict:
    """Stratified OUTER_FOLDS-fold CV accuracy of every method on (X, y); nested selection."""
    outer = StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=seed)
    result = {"dataset": name, "protocol": f"stratified {OUTER_FOLDS}-fold CV (seed {seed}) on the {len(X)} "
              "official training beats", "n_train": len(X), "length": X.shape[1],
              "class_counts": {str(c): int(n) for c, n in zip(*np.unique(y, return_counts=True))},
              "accuracy": {}, "fold_accuracy": {}, "seconds": {}}
    methods = {**baselines(training, candidates, seed),
               CHOSEN: EncoderSelection(training, candidates, SELECTION_FOLDS[name], seed)}
    for method, estimator in methods.items():
        started = time.perf_counter()
        with warnings.catch_warnings():  # ECG5000 class 5 has 2 of the 500 beats: some folds lack it
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            scores = cross_validate(estimator, X, y, cv=outer, n_jobs=None if method == NEAREST else jobs,
                                    return_estimator=method == CHOSEN, return_indices=method == CHOSEN)
        result["fold_accuracy"][method] = [float(s) for s in scores["test_score"]]
    result["seconds"]["encodings"] = round(time.perf_counter() - started, 1)
    # The selections of the last method (CHOSEN), one per outer fold, give the fixed-encoding rows.
    selections, folds = scores["estimator"], list(zip(scores["indices"]["train"], scores["indices"]["test"]))
    for method, encoding in FIXED.items():
        result["fold_accuracy"][method] = [selection.score(X[test], y[test], encoding=encoding)
                                           for selection, (_, test) in zip(selections, folds)]
    result["fold_accuracy"] = {method: result["fold_accuracy"][method] for method in METHOD_ORDER}
    result["accuracy"] = {method: float(np.mean(folds)) for method, folds in result["fold_accuracy"].items()}
    result["selection"] = [selection.summary() for selection in selections]
    result["reconstruction_mse"] = float(np.mean([reconstruction_mse(selection, X[test])
                                                  for selection, (_, test) in zip(selections, folds)]))
    return result


def run_classification(data_dir: Path, *, quick: bool = False, seed: int = 0, jobs: int = 1) -> dict:
    candidates = dict(list(CANDIDATES.items())[: QUICK["candidates"]]) if quick else CANDIDATES
    training = {name: {**settings, **({"epochs": QUICK["epochs"]} if quick else {})}
                for name, settings in TRAINING.items()}
    report = {"settings": {"seed": seed, "candidates": candidates, "training": training,
                           "autoencoder_defaults": {key: DEFAULTS[key] for key in
                                                    ("loss", "learning_rate", "validation_fraction")},
                           "outer_folds": OUTER_FOLDS, "selection_folds": SELECTION_FOLDS,
                           "classifier": "StandardScaler + LogisticRegression, C in logspace(-2, 2, 5) by 5-fold CV"},
              "results": []}
    for name in ("GunPoint", "ItalyPowerDemand"):
        log(f"classification: {name} ...")
        result = run_train_test(name, load_ucr(data_dir, name), training[name], candidates, seed, jobs)
        report["results"].append(result)
        log(f"classification: {summary_line(result)}")
    frame = load_ecg5000(data_dir)
    train = frame[frame["ucr_split"] == "train"]
    if quick:
        train = train.sample(QUICK["ecg_beats"], random_state=seed)
    log(f"classification: ECG5000 ({len(train)} beats) ...")
    result = run_cross_validation("ECG5000", ecg_beats(train), train["ucr_class"].astype(int).to_numpy(),
                                  training["ECG5000"], candidates, seed, jobs)
    report["results"].append(result)
    log(f"classification: {summary_line(result)}")
    return report


def summary_line(result: dict) -> str:
    return f"{result['dataset']}: " + ", ".join(f"{m} {a:.3f}" for m, a in result["accuracy"].items())


def classification_markdown(report: dict) -> str:
    methods = list(report["results"][0]["accuracy"])
    lines = ["| data set | protocol | " + " | ".join(methods) + " | chosen >= 1-NN? | autoencoder's test MSE |",
             "|---|---|" + "---|" * len(methods) + "---|---|"]
    for r in report["results"]:
        # Round before comparing: equal accuracies averaged over folds differ in the last bits.
        accuracies = [round(a, 9) for a in r["accuracy"].values()]
        cells = [f"**{a:.3f}**" if a == max(accuracies) else f"{a:.3f}" for a in accuracies]
        goal = "yes" if round(r["accuracy"][CHOSEN], 9) >= round(r["accuracy"][NEAREST], 9) else "no"
        mse = f"{r['reconstruction_mse']:.3f}" if "reconstruction_mse" in r else "-"
        lines.append(f"| {r['dataset']} | {r['protocol']} | " + " | ".join(cells) + f" | {goal} | {mse} |")
    settings = report["settings"]
    folds = "; ".join(f"{name} {k}-fold CV" if k > 1 else f"{name} one stratified validation third"
                      for name, k in settings["selection_folds"].items())
    lines += ["", REFERENCES, "",
              "Accuracy on TEST (ECG5000: mean over the outer folds). The architecture and the encoding "
              "(bottleneck or mean states) are chosen together among the candidates below by a classifier's "
              f"validation accuracy on the training part only ({folds}; ties go to the first), then refitted "
              "on the whole training part; the bottleneck and mean-states rows are the two encodings of that "
              "refitted autoencoder. Training per data set: "
              + "; ".join(f"{name} {t['epochs']} epochs, batch {t['batch_size']}"
                          for name, t in settings["training"].items())
              + "; otherwise lstmae's defaults ("
              + ", ".join(f"{key} {value}" for key, value in settings["autoencoder_defaults"].items())
              + f"), seed {settings['seed']}. Logistic regression: C chosen by 5-fold CV on the training part. "
              "The untrained controls are the first candidate with epochs=0 (its seeded random weights). The "
              "last column is the chosen autoencoder's reconstruction MSE on the test part in scaled units "
              "(1.0: predicting the training mean).", "",
              "| data set | validation accuracy per candidate / encoding (ECG5000: mean over folds) | chosen |",
              "|---|---|---|"]
    for r in report["results"]:
        selections = r["selection"] if isinstance(r["selection"], list) else [r["selection"]]
        keys = list(selections[0]["validation_accuracy"])
        means = {key: np.mean([s["validation_accuracy"][key] for s in selections]) for key in keys}
        chosen = ", ".join(f"{name} ({count}/{len(selections)} folds)" if len(selections) > 1 else name
                           for name, count in Counter(" / ".join(s["selected"]) for s in selections).items())
        scores = "; ".join(f"{key} {a:.3f}" for key, a in means.items())
        lines.append(f"| {r['dataset']} | {scores} | {chosen} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ at the defaults
def default_autoencoder(seed: int, quick: bool = False, changes: dict | None = None) -> LSTMAutoencoder:
    """What a user gets: every parameter at its default but the seed (when quick, the epochs; and
    `changes`, the --set overrides)."""
    return LSTMAutoencoder(random_state=seed, progress=False, **({"epochs": QUICK["epochs"]} if quick else {}),
                           **(changes or {}))


def parse_changes(items: list[str]) -> dict:
    """--set NAME=VALUE items as parameters; VALUE is JSON or a string. Unknown names are refused."""
    changes = {}
    for item, (name, value) in zip(items, parse_assignments(items)):
        if name not in DEFAULTS:
            raise SystemExit(f"--set {item!r}: {name!r} is not an LSTMAutoencoder parameter "
                             f"(one of: {', '.join(sorted(DEFAULTS))})")
        changes[name] = value
    return changes


def timed_accuracy(estimator, X_train, y_train, X_test, y_test) -> tuple[float, float]:
    """(test accuracy, seconds to fit) of estimator."""
    started = time.perf_counter()
    estimator.fit(X_train, y_train)
    return float(estimator.score(X_test, y_test)), time.perf_counter() - started


def defaults_split(X_train, y_train, X_test, y_test, seed: int, quick: bool = False,
                   changes: dict | None = None) -> dict:
    """One train/test split: the raw-series baselines, and the default autoencoder fitted once on
    X_train with a logistic regression on each of its encodings. Seconds per fit."""
    accuracy, seconds = {}, {}
    for method, estimator in ((NEAREST, KNeighborsClassifier(n_neighbors=1)),
                              (RAW_LR, make_pipeline(StandardScaler(), logistic_regression()))):
        accuracy[method], seconds[method] = timed_accuracy(estimator, X_train, y_train, X_test, y_test)
    model = default_autoencoder(seed, quick, changes)
    started = time.perf_counter()
    model.fit(X_train)
    seconds["autoencoder"] = time.perf_counter() - started
    for encoding in ENCODINGS:
        started = time.perf_counter()
        classifier = make_pipeline(StandardScaler(), logistic_regression())
        classifier.fit(encode(model, encoding, X_train), y_train)
        accuracy[encoding] = float(classifier.score(encode(model, encoding, X_test), y_test))
        seconds[encoding] = time.perf_counter() - started  # encoding + classifier; the autoencoder is shared
    return {"accuracy": accuracy, "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "epochs_run": int(model.history_["epochs_run"]),
            "reconstruction_mse": float(model.reconstruction_error(X_test, kind="mse").mean())}


def summarise_defaults(name: str, protocol: str, folds: list[dict]) -> dict:
    """One data set's defaults_split results (one per split): means over the splits, and every split's."""
    methods = list(folds[0]["accuracy"])
    return {"dataset": name, "protocol": protocol, "default_encoding": DEFAULTS["encoding"],
            "accuracy": {m: float(np.mean([f["accuracy"][m] for f in folds])) for m in methods},
            "fold_accuracy": {m: [f["accuracy"][m] for f in folds] for m in methods},
            "seconds": {k: [f["seconds"][k] for f in folds] for k in folds[0]["seconds"]},
            "epochs_run": [f["epochs_run"] for f in folds],
            "reconstruction_mse": float(np.mean([f["reconstruction_mse"] for f in folds]))}


def run_defaults(name: str, splits: list, protocol: str, seed: int, jobs: int, quick: bool = False) -> dict:
    """defaults_split on each (X_train, y_train, X_test, y_test) of `splits`, side by side; means over splits."""
    folds = Parallel(n_jobs=min(jobs, len(splits)))(delayed(defaults_split)(*split, seed, quick) for split in splits)
    return summarise_defaults(name, protocol, folds)


def run_defaults_study(data_dir: Path, *, quick: bool = False, seed: int = 0, jobs: int = 1,
                       on_result: Callable[[dict], None] | None = None, changes: dict | None = None) -> dict:
    """The defaults on GunPoint and ItalyPowerDemand (TRAIN/TEST) and ECG5000 (5-fold on the 500 beats).

    All seven fits run side by side (`jobs` at a time); `on_result(report so far)` after each data set.
    """
    tasks = []  # (name, protocol, splits)
    for name in ("GunPoint", "ItalyPowerDemand"):
        data = load_ucr(data_dir, name)
        tasks.append((name, "official TRAIN/TEST split",
                      [(data["X_train"], data["y_train"], data["X_test"], data["y_test"])]))
    frame = load_ecg5000(data_dir)
    train = frame[frame["ucr_split"] == "train"]
    if quick:
        train = train.sample(QUICK["ecg_beats"], random_state=seed)
    X, y = ecg_beats(train), train["ucr_class"].astype(int).to_numpy()
    outer = StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # ECG5000 class 5 has 2 of the 500 beats: some folds lack it
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = [(X[a], y[a], X[b], y[b]) for a, b in outer.split(X, y)]
    tasks.append(("ECG5000", f"stratified {OUTER_FOLDS}-fold CV (seed {seed}) on the {len(X)} official "
                  "training beats", splits))
    report = {"settings": {"seed": seed, "quick": quick,
                           "autoencoder": {k: v for k, v in {**DEFAULTS, **(changes or {})}.items()
                                           if k not in ("progress", "how")},
                           "changed": changes or {},
                           "classifier": "StandardScaler + LogisticRegression, C in logspace(-2, 2, 5) by 5-fold CV"},
              "results": []}
    log(f"defaults: {sum(len(t[2]) for t in tasks)} autoencoder fits, {jobs} at a time ...")
    results = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(defaults_split)(*split, seed, quick, changes) for _, _, splits in tasks for split in splits)
    for name, protocol, splits in tasks:
        report["results"].append(summarise_defaults(name, protocol, [next(results) for _ in splits]))
        log(f"defaults: {summary_line(report['results'][-1])}")
        if on_result is not None:
            on_result(report)
    return report


def defaults_markdown(report: dict) -> str:
    """The defaults table: accuracy per encoding beside the baselines, the goals, and the fit times."""
    default = report["settings"]["autoencoder"]["encoding"]
    encodings = [m for m in report["results"][0]["accuracy"] if m not in (NEAREST, RAW_LR)]
    names = [f"encoding={e}" + (" (default)" if e == default else "") for e in encodings]
    lines = ["| data set | protocol | 1-NN Euclidean (raw) | logistic regression (raw) | " + " | ".join(names)
             + " | default >= 1-NN? | default >= raw LR - 0.02? | autoencoder fit s | epochs run | test MSE |",
             "|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|---|"]
    for r in report["results"]:
        a = {m: round(v, 9) for m, v in r["accuracy"].items()}
        best = max(a.values())
        cells = [f"**{a[m]:.3f}**" if a[m] == best else f"{a[m]:.3f}" for m in (NEAREST, RAW_LR, *encodings)]
        near = "yes" if a[default] >= a[NEAREST] else "no"
        raw = "yes" if a[default] >= round(a[RAW_LR] - 0.02, 9) else "no"
        fits = ", ".join(f"{s:.0f}" for s in r["seconds"]["autoencoder"])
        epochs = ", ".join(str(e) for e in r["epochs_run"])
        lines.append(f"| {r['dataset']} | {r['protocol']} | " + " | ".join(cells)
                     + f" | {near} | {raw} | {fits} | {epochs} | {r['reconstruction_mse']:.3f} |")
    settings = report["settings"]["autoencoder"]
    changed = "".join(f", {k}={v!r}" for k, v in report["settings"].get("changed", {}).items())
    lines += ["", "At the defaults, no selection: `LSTMAutoencoder(random_state="
              f"{report['settings']['seed']}{changed})` "
              "fitted on the training part (ECG5000: each outer fold's), then StandardScaler + logistic "
              "regression (C by 5-fold CV on the training part) on each encoding of that one autoencoder. "
              "Defaults: " + ", ".join(f"{k} {settings[k]}" for k in ("encoder", "epochs", "batch_size",
                                                                       "learning_rate", "loss", "patience",
                                                                       "validation_fraction", "scaler"))
              + ". Fit seconds: wall time of each autoencoder fit (one per fold) on one torch thread, on a "
              "shared 2-core machine under heavy load (see the JSON's machine.load_average): slow and noisy. "
              "Test MSE: reconstruction MSE in scaled units (1.0: predicting the training mean)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--no-variants", action="store_true", help="skip the variant comparison (item 6)")
    parser.add_argument("--defaults", action="store_true", help="only the defaults part; keep the selection "
                        "rows of the report already in --out")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change an autoencoder parameter in the defaults part, e.g. patience=10")
    args = parser.parse_args(argv)
    changes = parse_changes(args.set)
    data_dir = check_data_dir(args.data_dir)
    torch.set_num_threads(args.threads)
    stem = "classification_quick" if args.quick else "classification_study"
    started = time.perf_counter()
    if args.defaults:
        previous = args.out / f"{stem}.json"
        report = json.loads(previous.read_text()) if previous.is_file() else {}
    else:
        report = run_classification(data_dir, quick=args.quick, seed=args.seed, jobs=args.jobs)
        report["runtime_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()

    def write(defaults: dict) -> None:  # after each data set, so that a long run leaves what it has
        report["defaults"] = {**defaults, "runtime_seconds": round(time.perf_counter() - started, 1),
                              "machine": machine()}
        write_outputs(args.out, stem, report, study_markdown(report))

    run_defaults_study(data_dir, quick=args.quick, seed=args.seed, jobs=args.jobs, on_result=write, changes=changes)
    if not args.no_variants and not args.defaults:
        run_and_write(data_dir, args.out, quick=args.quick, seed=args.seed, jobs=args.jobs)
    return 0


def study_markdown(report: dict) -> str:
    """The defaults table first (what a user gets), then the selection table when the report has one."""
    parts = ["## At the defaults (no selection)", "", defaults_markdown(report["defaults"])]
    if report.get("results"):
        parts += ["", "## Architecture and encoding chosen on the training part", "", classification_markdown(report)]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
