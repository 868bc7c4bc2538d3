"""What the kernels need to know about this CPU: its maker, its architecture and its instruction sets."""
from __future__ import annotations

import hashlib
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str, cpuinfo: Path) -> str | None:
    """The value of the first `name : value` line of cpuinfo, or None where there is none."""
    try:
        line = next(line for line in cpuinfo.read_text().splitlines() if line.startswith(name))
    except (OSError, StopIteration):
        return None
    return line.split(":", 1)[1].strip()


def vendor(cpuinfo: Path = CPUINFO) -> str:
    """vendor_id from /proc/cpuinfo ('GenuineIntel', 'AuthenticAMD'), or '' where there is none."""
    return _cpuinfo_field("vendor_id", cpuinfo) or ""


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def instruction_set_tag(cpuinfo: Path = CPUINFO) -> str:
    """A short hash of this CPU's instruction-set flags (/proc/cpuinfo), else of its architecture
    and processor name: a -march=native build must not be loaded on another CPU (a shared home
    directory), where it would die of an illegal instruction instead of raising."""
    flags = _cpuinfo_field("flags", cpuinfo)
    if flags is None:
        flags = platform.machine() + platform.processor()
    return hashlib.sha1(flags.encode()).hexdigest()[:8]
