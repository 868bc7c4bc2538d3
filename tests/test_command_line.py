"""benchmarks/command_line.py: the command a results file records, runnable when pasted into a shell."""
import shlex
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from command_line import command_line  # noqa: E402


def test_the_script_is_named_from_the_repository_and_the_arguments_are_quoted():
    script = BENCHMARKS / "detection" / "threshold_rules.py"
    argv = ["--rules", "mad:8;mad:12", "--set", "series.peers=[]"]
    line = command_line(str(script), argv)
    assert line == "python benchmarks/detection/threshold_rules.py --rules 'mad:8;mad:12' --set 'series.peers=[]'"
    assert shlex.split(line)[2:] == argv


def test_no_arguments_are_none_not_this_process_s():
    # an empty argv is a run without arguments; only None stands for the process's own (here pytest's) arguments
    assert command_line(str(BENCHMARKS / "perf.py"), []) == "python benchmarks/perf.py"
    assert shlex.split(command_line(str(BENCHMARKS / "perf.py")))[2:] == sys.argv[1:]
