"""The command line a benchmark's results file records: quoted, so that it runs when pasted into a shell
(a rule list such as `--rules 'mad:8;mad:12'` or `--set 'series.peers=[]'` would otherwise split or fail)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent


def command_line(script: str, argv: list[str] | None = None) -> str:
    """`python benchmarks/.../SCRIPT.py ARGS` for the script at `script` (its `__file__`), ARGS being `argv`
    (None: this process's own arguments), quoted for a shell."""
    path = Path(script).resolve().relative_to(BENCHMARKS.parent).as_posix()
    return shlex.join(["python", path, *(sys.argv[1:] if argv is None else argv)])
