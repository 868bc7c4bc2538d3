"""Helpers of benchmarks/detection_study.py: data set readers and baselines."""
