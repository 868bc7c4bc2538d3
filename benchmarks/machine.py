"""The machine a benchmark ran on, as its results file records it: the same seed trains other networks and
the same code runs at other speeds on another CPU, so every results file names the CPU's model."""
from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) ..."), from /proc/cpuinfo on Linux; elsewhere
    what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown CPU"
