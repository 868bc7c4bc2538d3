"""benchmarks/detection/storms.py: the series a study run storms on, and how far their test parts leave training."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from detection import storms  # noqa: E402
from detection.datasets import SeriesTask  # noqa: E402


def test_out_of_range_share_counts_rows_with_any_value_past_the_widened_training_range():
    train = np.array([[0.0, 10.0], [1.0, 20.0]])
    test = np.array([[0.5, 15.0], [1.04, 15.0], [1.06, 15.0], [0.5, 9.0], [0.5, 25.0]])
    assert storms.out_of_range_share(train, test) == 3 / 5  # 1.06 > 1 + 5%, 9 < 10 - 0.5, 25 > 20 + 0.5


def test_a_run_is_reported_per_family_with_lstmae_s_storms_and_their_shares(tmp_path, monkeypatch, capsys):
    tasks = [SeriesTask("nab", name, np.zeros((10, 1)), np.full((4, 1), shift), np.zeros(4, np.int8))
             for name, shift in (("calm", 0.0), ("shifted", 5.0))]
    monkeypatch.setattr(storms, "LOADERS", {"nab": lambda data_dir: tasks})

    def result(name, lstmae, pca):
        rules = {"mad:8/mean/normalized-max": {"alarm_rate": lstmae, "event_recall": 1.0, "event_precision": 0.5},
                 "mad:8+floor/mean/normalized-max": {"alarm_rate": 0.05, "event_recall": 0.0, "event_precision": None},
                 "telemanom:2.5/mean/normalized-max": {"alarm_rate": None, "event_recall": None}}  # not fitted
        return {"name": name, "n_anomalous_rows": 2, "lstmae_thresholds": rules,
                "detectors": {"lstmae": {"alarm_rate": lstmae}, "pca": {"alarm_rate": pca}}}

    run = tmp_path / "run"
    run.mkdir()
    report = {"datasets": {"nab": {"series": [result("calm", 0.1, 0.5), result("shifted", 0.9, None)]}}}
    (run / "detection_results.json").write_text(json.dumps(report))
    assert storms.main(["--run", str(run), "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| lstmae | 1 |" in text and "| pca | 1 |" in text
    assert "| shifted | 90% | 100.0% |" in text and "| (the other 1 series: median) | | 0.0% |" in text
    assert "| (these 1 series: median) | | 100.0% |" in text  # the share the README quotes for lstmae's storms
    assert "| lstmae | 1 of 2 |" in text.split("### Every family")[1]
    # the rules on the one series lstmae storms on; one that could not be fitted finds nothing
    assert "| `mad:8` | 1 | 90% | 1.00 | 0.50 |" in text and "| `mad:8+floor` | 0 | 5% | 0.00 | n/a |" in text
    assert "| `telemanom:2.5` | 0 | 0% | 0.00 | n/a |" in text and "mad:12" not in text
    assert storms.main(["--run", str(tmp_path / "none"), "--data-dir", str(tmp_path)]) == 2
