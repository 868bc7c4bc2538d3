"""Encodings -> classifier, measured (issue 4, item 5), and in the same run the variant
comparison of `variants_study.py` (item 6).

    python benchmarks/classification_study.py [--quick] [--out benchmarks/results] [--data-dir DIR]
                                              [--jobs 2] [--threads 1] [--no-variants]

Protocol (the autoencoder never sees a label):
- GunPoint, ItalyPowerDemand: the official TRAIN/TEST splits. Everything is fitted on TRAIN,
  accuracy is measured once on TEST.
- ECG5000 (5 classes): only the 500 official training beats have a class, so accuracy is the
  mean of a seeded, stratified 5-fold cross-validation on those 500 beats.
- Methods: 1-nearest-neighbour Euclidean on the raw series; logistic regression on the
  standardised raw series; and the pipeline
  make_pipeline(LSTMAutoencoder(...), StandardScaler(), logistic regression): the autoencoder
  is fitted unsupervised on the training part, the same classifier on its bottleneck
  encodings (N, Z). A second row gives the same fitted autoencoder's encoding="mean" features
  (each encoder layer's states averaged over time) to a fresh classifier.
  Every logistic regression chooses its regularisation C by 5-fold CV on the training part.
- Controls: both encodings of an untrained encoder (the first candidate, epochs=0: its seeded
  random weights), so the table shows what the autoencoder's training adds.
- The chosen autoencoder's reconstruction MSE on the test part (scaled units; 1.0 is what
  predicting each feature's training mean gives) shows that it learned to reconstruct.
- The encoder's architecture is chosen among `CANDIDATES` on the training part only, never on
  test data: GridSearchCV with one stratified validation split (a third of the training part;
  for ECG5000 inside every outer fold: nested). Every candidate's validation accuracy is reported.
  One split, not k folds, keeps the full run within 20 minutes on 2 cores.

Writes classification_study.{json,md} (classification_quick.* with --quick) to --out, then the
variant comparison's files. Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lstmae import LSTMAutoencoder
from lstmae.config import DEFAULTS
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
REFERENCES = ("Published references: 1-NN Euclidean in the UCR archive, GunPoint 0.913, ItalyPowerDemand 0.955, "
              "ECG5000 0.925 (official test split); supervised state of the art GunPoint 1.00, "
              "ItalyPowerDemand ~0.97, ECG5000 ~0.94-0.95.")
VALIDATION_FOLDS = 3  # the validation split is the first of 3 stratified folds: a third


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


def encoding_pipeline(training: dict, seed: int, **encoder) -> Pipeline:
    """LSTMAutoencoder -> StandardScaler -> logistic regression; X (N, L) in, classes out."""
    autoencoder = LSTMAutoencoder(**encoder, **training, patience=None, random_state=seed, progress=False)
    return make_pipeline(autoencoder, StandardScaler(), logistic_regression())


def encoding_search(training: dict, candidates: dict, seed: int, jobs: int | None = None) -> GridSearchCV:
    """The pipeline whose encoder is chosen among `candidates` on a stratified validation split."""
    grid = [{f"lstmautoencoder__{key}": [value] for key, value in params.items()} for params in candidates.values()]
    validation = ValidationSplit(VALIDATION_FOLDS, shuffle=True, random_state=seed)
    return GridSearchCV(encoding_pipeline(training, seed), grid, cv=validation, n_jobs=jobs)


def baselines(training: dict, candidates: dict, seed: int) -> dict:
    """The methods without an encoder search: raw-series classifiers and the untrained-encoder controls."""
    first = next(iter(candidates.values()))
    return {
        NEAREST: KNeighborsClassifier(n_neighbors=1),
        "logistic regression (raw)": make_pipeline(StandardScaler(), logistic_regression()),
        **{name: encoding_pipeline({**training, "epochs": 0}, seed, encoding=encoding, **first)
           for encoding, name in UNTRAINED.items()},
    }


def reconstruction_mse(search: GridSearchCV, X: np.ndarray) -> float:
    """Mean reconstruction MSE (scaled units) of the search's chosen autoencoder on X (N, L)."""
    return float(search.best_estimator_[0].reconstruction_error(X, kind="mse").mean())


def mean_states_accuracy(search: GridSearchCV, X_train, y_train, X_test, y_test) -> float:
    """Test accuracy of a fresh classifier on the chosen autoencoder's encoding="mean" features."""
    autoencoder = copy.deepcopy(search.best_estimator_[0]).set_params(encoding="mean")
    classifier = make_pipeline(StandardScaler(), logistic_regression())
    return float(classifier.fit(autoencoder.transform(X_train), y_train).score(autoencoder.transform(X_test), y_test))


def search_summary(search: GridSearchCV, candidates: dict) -> dict:
    """The chosen candidate's name and every candidate's validation accuracy."""
    names = list(candidates)
    return {"selected": names[search.best_index_],
            "validation_accuracy": dict(zip(names, map(float, search.cv_results_["mean_test_score"])))}


def run_train_test(name: str, data: dict, training: dict, candidates: dict, seed: int, jobs: int) -> dict:
    """Fit every method on TRAIN, accuracy on TEST."""
    X_train, y_train, X_test, y_test = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    result = {"dataset": name, "protocol": "official TRAIN/TEST split", "n_train": len(X_train),
              "n_test": len(X_test), "length": X_train.shape[1], "n_classes": len(np.unique(y_train)),
              "accuracy": {}, "seconds": {}}
    for method, estimator in baselines(training, candidates, seed).items():
        result["accuracy"][method] = float(estimator.fit(X_train, y_train).score(X_test, y_test))
    started = time.perf_counter()
    search = encoding_search(training, candidates, seed, jobs).fit(X_train, y_train)
    result["seconds"]["encodings"] = round(time.perf_counter() - started, 1)
    result["accuracy"][BOTTLENECK] = float(search.score(X_test, y_test))
    result["accuracy"][MEAN] = mean_states_accuracy(search, X_train, y_train, X_test, y_test)
    result["selection"] = search_summary(search, candidates)
    result["reconstruction_mse"] = reconstruction_mse(search, X_test)
    return result


def run_cross_validation(name: str, X: np.ndarray, y: np.ndarray, training: dict, candidates: dict,
                         seed: int, jobs: int) -> dict:
    """Stratified OUTER_FOLDS-fold CV accuracy of every method on (X, y); nested selection."""
    outer = StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=seed)
    result = {"dataset": name, "protocol": f"stratified {OUTER_FOLDS}-fold CV (seed {seed}) on the {len(X)} "
              "official training beats", "n_train": len(X), "length": X.shape[1],
              "class_counts": {str(c): int(n) for c, n in zip(*np.unique(y, return_counts=True))},
              "accuracy": {}, "fold_accuracy": {}, "seconds": {}}
    methods = {**baselines(training, candidates, seed), BOTTLENECK: encoding_search(training, candidates, seed)}
    for method, estimator in methods.items():
        started = time.perf_counter()
        with warnings.catch_warnings():  # ECG5000 class 5 has 2 of the 500 beats: some folds lack it
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            scores = cross_validate(estimator, X, y, cv=outer, n_jobs=None if method == NEAREST else jobs,
                                    return_estimator=method == BOTTLENECK, return_indices=method == BOTTLENECK)
        result["accuracy"][method] = float(scores["test_score"].mean())
        result["fold_accuracy"][method] = [float(s) for s in scores["test_score"]]
    # The searches of the last method (BOTTLENECK), one per outer fold, give the other encoding rows.
    result["seconds"]["encodings"] = round(time.perf_counter() - started, 1)
    searches, folds = scores["estimator"], list(zip(scores["indices"]["train"], scores["indices"]["test"]))
    result["fold_accuracy"][MEAN] = [mean_states_accuracy(search, X[train], y[train], X[test], y[test])
                                     for search, (train, test) in zip(searches, folds)]
    result["accuracy"][MEAN] = float(np.mean(result["fold_accuracy"][MEAN]))
    result["selection"] = [search_summary(search, candidates) for search in searches]
    result["reconstruction_mse"] = float(np.mean([reconstruction_mse(search, X[test])
                                                  for search, (_, test) in zip(searches, folds)]))
    return result


def run_classification(data_dir: Path, *, quick: bool = False, seed: int = 0, jobs: int = 1) -> dict:
    candidates = dict(list(CANDIDATES.items())[: QUICK["candidates"]]) if quick else CANDIDATES
    training = {name: {**settings, **({"epochs": QUICK["epochs"]} if quick else {})}
                for name, settings in TRAINING.items()}
    report = {"settings": {"seed": seed, "candidates": candidates, "training": training,
                           "autoencoder_defaults": {key: DEFAULTS[key] for key in
                                                    ("loss", "learning_rate", "validation_fraction")},
                           "outer_folds": OUTER_FOLDS, "validation_fraction": 1 / VALIDATION_FOLDS,
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
    lines = ["| data set | protocol | " + " | ".join(methods) + " | >= 1-NN? (bottleneck / mean) | autoencoder's test MSE |",
             "|---|---|" + "---|" * len(methods) + "---|---|"]
    for r in report["results"]:
        # Round before comparing: equal accuracies averaged over folds differ in the last bits.
        accuracies = [round(a, 9) for a in r["accuracy"].values()]
        cells = [f"**{a:.3f}**" if a == max(accuracies) else f"{a:.3f}" for a in accuracies]
        goal = " / ".join("yes" if round(r["accuracy"][m], 9) >= round(r["accuracy"][NEAREST], 9) else "no"
                          for m in (BOTTLENECK, MEAN))
        mse = f"{r['reconstruction_mse']:.3f}" if "reconstruction_mse" in r else "-"
        lines.append(f"| {r['dataset']} | {r['protocol']} | " + " | ".join(cells) + f" | {goal} | {mse} |")
    settings = report["settings"]
    lines += ["", REFERENCES, "",
              "Accuracy on TEST (ECG5000: mean over the outer folds). The encoder is chosen among the "
              "candidates below by accuracy on a stratified validation third of the training part "
              "(never the test part; ties go to the first). Training per data set: "
              + "; ".join(f"{name} {t['epochs']} epochs, batch {t['batch_size']}"
                          for name, t in settings["training"].items())
              + "; otherwise lstmae's defaults ("
              + ", ".join(f"{key} {value}" for key, value in settings["autoencoder_defaults"].items())
              + f"), seed {settings['seed']}. Logistic regression: C chosen by 5-fold CV on the training part. "
              f"The untrained controls are the first candidate with epochs=0 (its seeded random weights); the "
              "mean-states row reuses the chosen autoencoder with encoding='mean' (no retraining). The "
              "last column is the chosen autoencoder's reconstruction MSE on the test part in scaled units "
              "(1.0: predicting the training mean).", "",
              "| data set | validation accuracy per candidate (ECG5000: mean over folds) | chosen |", "|---|---|---|"]
    for r in report["results"]:
        selections = r["selection"] if isinstance(r["selection"], list) else [r["selection"]]
        means = {name: np.mean([s["validation_accuracy"][name] for s in selections])
                 for name in settings["candidates"]}
        chosen = ", ".join(f"{name} ({count}/{len(selections)} folds)" if len(selections) > 1 else name
                           for name, count in Counter(s["selected"] for s in selections).items())
        scores = "; ".join(f"{n} {a:.3f}" for n, a in means.items())
        lines.append(f"| {r['dataset']} | {scores} | {chosen} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--no-variants", action="store_true", help="skip the variant comparison (item 6)")
    args = parser.parse_args(argv)
    data_dir = check_data_dir(args.data_dir)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    report = run_classification(data_dir, quick=args.quick, seed=args.seed, jobs=args.jobs)
    report["runtime_seconds"] = round(time.perf_counter() - started, 1)
    report["machine"] = machine()
    stem = "classification_quick" if args.quick else "classification_study"
    write_outputs(args.out, stem, report, classification_markdown(report))

    if not args.no_variants:
        run_and_write(data_dir, args.out, quick=args.quick, seed=args.seed, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
