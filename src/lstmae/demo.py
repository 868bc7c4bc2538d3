"""`lstmae demo`: the whole pipeline on built-in synthetic sensors, into one output directory."""
from __future__ import annotations

from pathlib import Path

from .data.io import OutputKind

# Shorter than the 90-minute process cycle on purpose: each row's score is the mean over the windows
# covering it, so a longer window spreads an event's alarm further past its labelled rows.
DEMO_WINDOW = 20
# The synthetic events all lie in the second half: the first half is the clean history a user would train on.
DEMO_TRAIN_FRACTION = 0.5
# What the demo may replace with overwrite=True (data.io.check_replaceable): an earlier demo output.
DEMO_KIND = OutputKind("a demo output", "scores.csv", ("scores.csv", "events.csv", "train.csv", "test.csv", "model",
                                                      "report"))


def run_demo(out_dir, *, epochs: int = 30, seed: int = 0, overwrite: bool = False) -> dict:
    """Synthetic sensors -> train on the clean first half -> evaluate the rest; returns the metrics.

    Writes model/, train.csv, test.csv, scores.csv, events.csv and report/ into `out_dir`, built in a
    temporary sibling directory and renamed into place, so a failure leaves nothing.
    """
    from .data.io import read_series, staged_directory, write_bytes_atomic, write_table
    from .data.synthetic import make_sensor_data
    from .estimator import LSTMAutoencoder
    from .evaluation.evaluate import evaluate
    from .series import fit_data, read_for_model

    out_dir = Path(out_dir)
    with staged_directory(out_dir, overwrite=overwrite, replaces=DEMO_KIND) as staging:
        frame = make_sensor_data(seed=seed)
        n_train = int(len(frame) * DEMO_TRAIN_FRACTION)
        write_table(frame.iloc[:n_train].set_index("timestamp"), staging / "train.csv")
        write_table(frame.iloc[n_train:].set_index("timestamp"), staging / "test.csv")
        # lstmae's defaults, with a small network and few epochs so the demo takes about a minute
        model = LSTMAutoencoder(encoder=(32, 16), epochs=epochs, patience=5, random_state=seed, device="cpu")
        train = read_series(staging / "train.csv", time_column="timestamp", label_column="label")
        fit_data(model, train, window=DEMO_WINDOW, settings={"time_column": "timestamp", "label_column": "label"})
        model.save(staging / "model")
        test = read_for_model(model, staging / "test.csv", label_column="label")
        test.source = str(out_dir / "test.csv")  # the report names where the file ends up, not the staging copy
        result = evaluate(model, test, summary={
            "what": "built-in synthetic sensors (lstmae.data.synthetic), trained on the clean first half, "
                    "evaluated on the rest"})
        write_table(result.scores, staging / "scores.csv")
        write_table(result.events, staging / "events.csv")
        (staging / "report").mkdir()
        for name, content in result.files().items():
            write_bytes_atomic(staging / "report" / name, content)
    return result.metrics
