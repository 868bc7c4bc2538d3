import json

import numpy as np
import pytest

from lstmae.exceptions import DataError, ModelFileError
from lstmae.scoring import DEFAULT_ALARM, AlarmFilter, alarms_from_flags, flag_runs


def reference_alarms(flags, min_length, merge_gap, cooldown):
    """The rules as prose, one row at a time, with explicit counters."""
    out, state, streak, quiet, cooling = [], "idle", 0, 0, 0
    for flag in flags:
        flag = flag == 1
        if state == "open":
            quiet = 0 if flag else quiet + 1
            if quiet <= merge_gap:
                out.append(1)
                continue
            state, cooling, streak = "idle", cooldown, 0
        if cooling:
            cooling -= 1
            out.append(0)
            continue
        streak = streak + 1 if flag else 0
        if streak >= min_length:
            state, quiet, streak = "open", 0, 0
            out.append(1)
        else:
            out.append(0)
    return out


def test_hand_example_on_delay_off_delay_cooldown():
    flags = [1, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    alarms = alarms_from_flags(flags, min_length=3, merge_gap=2, cooldown=3)
    # rows 2-4 flagged: raised at 4; gap of 2 (5, 6) merged; 7 flagged; clears at 10 (3 quiet rows);
    # cool-down 10-12 ignores the flags at 11, 12; 13, 14 are only 2 flags; 19-21 raise at 21.
    assert alarms.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    hindsight = alarms_from_flags(flags, min_length=3, merge_gap=2, cooldown=3, causal=False)
    assert hindsight.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert alarms.dtype == np.int8


@pytest.mark.parametrize("min_length, merge_gap, cooldown", [(1, 0, 0), (3, 10, 50), (2, 1, 0), (4, 0, 7)])
def test_matches_the_reference_and_is_the_same_in_chunks_and_after_restore(min_length, merge_gap, cooldown):
    rng = np.random.default_rng(min_length + merge_gap + cooldown)
    flags = (rng.random(2000) < np.repeat(rng.random(40) * 0.8, 50)).astype(int)
    batch = alarms_from_flags(flags, min_length=min_length, merge_gap=merge_gap, cooldown=cooldown)
    assert batch.tolist() == reference_alarms(flags, min_length, merge_gap, cooldown)
    alarm_filter, parts = AlarmFilter(min_length, merge_gap, cooldown), []
    for chunk in np.array_split(flags, [1, 2, 333, 1000, 1001, 1500]):
        parts.append(alarm_filter.update(chunk))
        config, arrays = alarm_filter.get_state()
        alarm_filter = AlarmFilter.from_state(json.loads(json.dumps(config)), arrays)
    assert np.array_equal(np.concatenate(parts), batch)
    # Fewer alarms than flagged runs; each alarm starts min_length - 1 rows into a run of flags.
    starts, ends = flag_runs(batch)
    assert len(starts) <= len(flag_runs(flags)[0])
    for start in starts:
        assert flags[start - min_length + 1 : start + 1].all()


def test_defaults_and_nan_flags():
    assert AlarmFilter().get_state()[0]["min_length"] == DEFAULT_ALARM["min_length"] == 10
    assert DEFAULT_ALARM == {"min_length": 10, "merge_gap": 30, "cooldown": 150, "focus": 0.25}
    # NaN counts as unflagged; the alarm starts at the 10th flagged row in a row
    assert alarms_from_flags([np.nan] + [1.0] * 10).tolist() == [0] * 10 + [1]
    assert alarms_from_flags(np.array([True] * 10 + [False])).tolist() == [0] * 9 + [1, 1]
    assert alarms_from_flags([1.0] * 9 + [np.nan] + [1.0] * 9).sum() == 0  # a NaN breaks the streak
    assert alarms_from_flags([]).tolist() == []
    # Flags that go on through the cool-down only raise an alarm after it, min_length rows later.
    flags = [1, 0, 0, 1, 1, 1, 1, 1]
    assert alarms_from_flags(flags, min_length=1, merge_gap=0, cooldown=2).tolist() == [1, 0, 0, 1, 1, 1, 1, 1]
    assert alarms_from_flags([1, 0, 1, 1, 1], min_length=1, merge_gap=0, cooldown=3).tolist() == [1, 0, 0, 0, 1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: AlarmFilter(min_length=0), r"min_length must be an integer >= 1, got 0"),
        (lambda: AlarmFilter(merge_gap=-1), r"merge_gap must be an integer >= 0, got -1"),
        (lambda: AlarmFilter(cooldown=1.5), r"cooldown must be an integer >= 0, got 1.5"),
        (lambda: AlarmFilter(cooldown=True), r"cooldown must be an integer >= 0, got True"),
        (lambda: alarms_from_flags([0, 2]), r"flags must be 0 \(normal\) or 1 \(anomaly\); got 2 at row 1"),
        (lambda: alarms_from_flags([[0, 1]]), r"flags must be 1-D"),
    ],
)
def test_bad_parameters(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_bad_saved_states():
    config, arrays = AlarmFilter().get_state()
    cases = [
        ({**config, "kind": "dspot"}, r"not an alarm filter's"),
        ({key: value for key, value in config.items() if key != "streak"}, r"lacks streak"),
        ({**config, "streak": -1}, r"invalid: streak must be an integer >= 0"),
        ({**config, "open": 1}, r"open must be true or false"),
        ({**config, "min_length": 0}, r"invalid: min_length must be an integer >= 1"),
    ]
    for bad, message in cases:
        with pytest.raises(ModelFileError, match=message):
            AlarmFilter.from_state(bad, arrays)
