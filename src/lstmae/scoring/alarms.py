"""Raw per-row flags -> alarms a person can act on: fewer, longer, one per incident.

A threshold flags rows; a person is paged by *alarms*. The rules are the ones alarm systems
use (ISA-18.2's on-delay, off-delay and re-alarm suppression), counted in rows:

- ``min_length`` (on-delay): an alarm is raised at the row where ``min_length`` consecutive
  rows have been flagged, not before (1 = at the first flag). Isolated one- or two-row
  excursions, the bulk of the flags on noisy scores, raise nothing.
- ``merge_gap`` (off-delay): an open alarm clears only after more than ``merge_gap``
  consecutive unflagged rows, so a run that flickers around the threshold stays one alarm.
  The unflagged rows while the alarm is still open belong to it (at that row nobody can know
  yet whether the flags resume), so each alarm carries a tail of up to ``merge_gap`` rows after
  its last flag; ``causal=False`` trims that tail in hindsight, for reports.
- ``cooldown`` (re-alarm suppression): after an alarm clears, no new alarm starts for
  ``cooldown`` rows; flags there are ignored (they do not count toward ``min_length``).

Everything is decided from the current and past rows only, so :class:`AlarmFilter` fed row by
row, chunk by chunk, or after a save/restore gives the same alarms as one
:func:`alarms_from_flags` call. Defaults (:data:`DEFAULT_ALARM`): ``min_length=10``,
``merge_gap=30``, ``cooldown=150`` rows: a flag must last 10 rows (9 rows of delay) to page
anybody, gaps of up to 30 rows do not split an incident, and an incident that clears and
comes back within 150 rows is not paged again. They are in rows, not time: scale them with the
sampling rate (at one row a minute: 10 minutes, 30 minutes, 150 minutes).

``focus`` (a quantile q in [0, 1], default 0.25, or None: off) is not a rule of the stream but a hindsight step for batch
scoring (`lstmae.series.score_values`): a row's score there is the mean of the windows that cover it, so an
anomaly raises the rows over a window's length before and after it too, and one window with a large error
raises a window's length of rows. A row has *window evidence* when the q-quantile of its covering windows'
scores is above the threshold (q = 0: every covering window; 0.25: three in four). :func:`focus_alarms`
narrows each alarm to its first-last row with evidence and drops an alarm without one. A stream raises
alarms as rows arrive and leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lstmae.config import ALARM_DEFAULTS
from lstmae.data.validation import check_integer, is_number
from lstmae.exceptions import DataError, ModelFileError
from lstmae.scoring.events import _check_flags, flag_runs

DEFAULT_ALARM = dict(ALARM_DEFAULTS)
RULES = ("min_length", "merge_gap", "cooldown")  # AlarmFilter's: decided row by row, as the rows arrive
_STATE_KEYS = ("min_length", "merge_gap", "cooldown", "streak", "open", "quiet", "cooldown_left")


class AlarmFilter:
    """Stateful alarm rules (module docstring) for flags that arrive in order.

    >>> alarms = AlarmFilter(min_length=2, merge_gap=1, cooldown=0)
    >>> alarms.update([0, 1, 1, 0, 1, 0, 0, 0]).tolist()
    [0, 0, 1, 1, 1, 1, 0, 0]
    """

    def __init__(
        self,
        min_length: int = DEFAULT_ALARM["min_length"],
        merge_gap: int = DEFAULT_ALARM["merge_gap"],
        cooldown: int = DEFAULT_ALARM["cooldown"],
    ):
        self.min_length = check_integer(min_length, "min_length")
        self.merge_gap = check_integer(merge_gap, "merge_gap", minimum=0)
        self.cooldown = check_integer(cooldown, "cooldown", minimum=0)
        self._streak = 0  # consecutive flagged rows, outside an alarm and its cool-down
        self._open = False  # is an alarm open?
        self._quiet = 0  # unflagged rows since the open alarm's last flag
        self._cooldown_left = 0  # rows of cool-down still to come

    def update(self, flags) -> np.ndarray:
        """Alarm state (n,) int8, 1 while an alarm is open, for the next `flags` (n,) 0/1.

        NaN flags (rows without a score) count as 0.
        """
        flagged = _check_flags(flags)
        alarms = np.zeros(flagged.size, np.int8)
        streak, is_open, quiet, cooldown_left = self._streak, self._open, self._quiet, self._cooldown_left
        min_length, merge_gap, cooldown = self.min_length, self.merge_gap, self.cooldown
        for row, flag in enumerate(flagged.tolist()):
            if is_open:
                if flag:
                    quiet = 0
                    alarms[row] = 1
                    continue
                quiet += 1
                if quiet <= merge_gap:
                    alarms[row] = 1
                    continue
                is_open, streak, cooldown_left = False, 0, cooldown  # cleared: this row is cool-down's first
            if cooldown_left > 0:
                cooldown_left -= 1
            elif flag:
                streak += 1
                if streak >= min_length:
                    is_open, quiet, streak = True, 0, 0
                    alarms[row] = 1
            else:
                streak = 0
        self._streak, self._open, self._quiet, self._cooldown_left = streak, is_open, quiet, cooldown_left
        return alarms

    @property
    def is_open(self) -> bool:
        """Whether an alarm is open after the rows taken so far."""
        return self._open

    def get_state(self) -> tuple[dict, dict]:
        """(config, arrays): a JSON-able dict of the rules and the position, and {} (no arrays)."""
        return (
            {
                "kind": "alarms",
                "min_length": self.min_length,
                "merge_gap": self.merge_gap,
                "cooldown": self.cooldown,
                "streak": self._streak,
                "open": self._open,
                "quiet": self._quiet,
                "cooldown_left": self._cooldown_left,
            },
            {},
        )

    @classmethod
    def from_state(cls, config: dict, arrays: dict | None = None) -> "AlarmFilter":
        """The filter `get_state` described, ready to continue where it stopped."""
        if not isinstance(config, dict) or config.get("kind") != "alarms":
            raise ModelFileError("saved alarm state is not an alarm filter's (kind != 'alarms'); save it again")
        missing = [key for key in _STATE_KEYS if key not in config]
        if missing:
            raise ModelFileError(f"saved alarm state lacks {', '.join(missing)}; save it again")
        try:
            alarms = cls(config["min_length"], config["merge_gap"], config["cooldown"])
            alarms._streak = check_integer(config["streak"], "streak", minimum=0)
            alarms._quiet = check_integer(config["quiet"], "quiet", minimum=0)
            alarms._cooldown_left = check_integer(config["cooldown_left"], "cooldown_left", minimum=0)
        except DataError as error:
            raise ModelFileError(f"saved alarm state is invalid: {error}") from None
        if not isinstance(config["open"], bool):
            raise ModelFileError(f"saved alarm state is invalid: open must be true or false, got {config['open']!r}")
        alarms._open = config["open"]
        return alarms


def check_alarm_options(alarms) -> dict:
    """`alarms` as a dict of the alarm options (min_length, merge_gap, cooldown, focus; any subset), checked."""
    if not isinstance(alarms, Mapping):
        raise DataError(f"alarms must be a dict of {', '.join(DEFAULT_ALARM)} (or None for no alarms); got {alarms!r}")
    unknown = [key for key in alarms if key not in DEFAULT_ALARM]
    if unknown:
        raise DataError(f"unknown alarm option {unknown[0]!r}; the options are {', '.join(DEFAULT_ALARM)}")
    AlarmFilter(**alarm_rules(alarms))
    focus = alarms.get("focus")
    if focus is not None and (isinstance(focus, bool) or not is_number(focus) or not 0 <= focus <= 1):
        raise DataError(f"alarm option focus must be a quantile between 0 and 1 (e.g. 0.25), or None for no "
                        f"narrowing; got {focus!r}")
    return dict(alarms)


def alarm_rules(alarms: Mapping) -> dict:
    """The options of `alarms` that AlarmFilter and `alarms_from_flags` take (all but focus)."""
    return {key: value for key, value in alarms.items() if key in RULES}


def focus_alarms(alarms, evidence) -> np.ndarray:
    """Alarms (T,) 0/1, each narrowed to its first-last row where `evidence` (T,) bool holds, and dropped when it
    has none (the module docstring's ``focus``); a new int8 array.

    >>> focus_alarms([0, 1, 1, 1, 0, 1, 1], [0, 0, 1, 0, 0, 0, 0]).tolist()
    [0, 0, 1, 0, 0, 0, 0]
    """
    alarms = _check_flags(alarms)
    evidence = np.asarray(evidence, bool)
    if evidence.shape != alarms.shape:
        raise DataError(f"evidence must have one value per row: {evidence.shape} for {alarms.shape} alarms")
    out = np.zeros(alarms.shape, np.int8)
    for start, end in zip(*flag_runs(alarms)):
        inside = np.flatnonzero(evidence[start: end + 1])
        if inside.size:
            out[start + inside[0]: start + inside[-1] + 1] = 1
    return out


def alarms_from_flags(
    flags,
    *,
    min_length: int = DEFAULT_ALARM["min_length"],
    merge_gap: int = DEFAULT_ALARM["merge_gap"],
    cooldown: int = DEFAULT_ALARM["cooldown"],
    causal: bool = True,
) -> np.ndarray:
    """Alarms (T,) int8 (1 while an alarm is open) from raw flags (T,) 0/1, by the module's rules.

    causal=True: each row's value is what was known at that row (what a stream shows).
    causal=False: the same alarms, each trimmed to end at its last flagged row (hindsight).
    Feed the result to `find_events` (merge_gap=0) for one table row per alarm.
    """
    alarms = AlarmFilter(min_length, merge_gap, cooldown).update(flags)
    if not causal:
        flagged = _check_flags(flags)
        for start, end in zip(*flag_runs(alarms)):
            last_flag = start + int(np.flatnonzero(flagged[start : end + 1])[-1])
            alarms[last_flag + 1 : end + 1] = 0
    return alarms


