"""benchmarks/perf.py's cases run against today's code (its lstmae training cases once broke silently
when `train`'s signature changed, and every lstmae row of a run read 'error')."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import perf  # noqa: E402

ECG = next(w for w in perf.WORKLOADS if w.key == "ecg")


@pytest.mark.parametrize("impl", ["lstmae-tanh", "lstmae-relu", "plain"])
def test_training_cases_run_and_report_a_rate(impl):
    result = perf.train_case(impl, ECG, seconds=0.01)  # below one round's time: one timed round
    assert result["rate"] > 0 and result["sequences_per_round"] == perf.TRAIN_BATCH


def test_gpu_runs_measure_only_the_gpu_cases_and_mark_their_report():
    assert set(perf.GPU_IMPLEMENTATIONS) <= set(perf.IMPLEMENTATIONS)
    assert perf.synchronized(len, "cpu") is len  # nothing to wait for on the CPU
    machine = {"cpu": "c", "cpu_count": 16, "threads": 2, "torch": "t", "python": "p", "date": "d",
               "load_avg_start": [0.0], "load_avg_end": [0.0], "gpu": "NVIDIA H200", "cuda": "13.0"}
    case = {"workload": "ecg", "impl": "plain", "task": "train", "throughput": 10.0, "vs_plain": 1.0,
            "percent_of_peak": 1.0, "max_rss_mb": 900.0, "max_gpu_mb": 123.0}
    results = {"machine": machine, "quick": False, "device": "cuda", "matmul": {"gflops": 5e4}, "cases": [case],
               "settings": {"ecg_passes": 1}, "total_seconds": 60.0,
               "series": {"error": "not run"}}
    text = perf.markdown(results)
    assert "on the GPU" in text and "NVIDIA H200 (CUDA 13.0)" in text and "| GPU MB |" in text
    assert "| 10.0 | 1.00 | 1.0 | 123 |" in text and "Goals (issue 5)" not in text
