"""The `lstmae` command line. The only place that prints or exits.

Heavy imports (torch, pandas) happen inside the commands, so `lstmae --help` is instant.
Exit codes: 0 success, 2 bad usage or bad data (one line, no traceback unless --debug),
1 anything else.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import time
from pathlib import Path

import click

from ..config import DEFAULTS, ENCODINGS, HOW_CHOICES, PARAMETERS

LAYOUTS = ("series", "sequences")
NAN_POLICIES = ("error", "ffill", "interpolate", "drop")
# Bounds that keep a number within what numpy and torch take (a larger one crashed with OverflowError).
STRIDE = click.IntRange(1, 2**31 - 1)
# The options that score, encode, reconstruct and evaluate share (click makes a new Option for each command).
NAN_POLICY_OPTION = click.option(
    "--nan-policy", type=click.Choice(NAN_POLICIES), default="error", show_default=True,
    help="What to do with missing values: refuse them, fill them forward, interpolate, or drop the rows.")
OVERWRITE_OPTION = click.option(
    "--overwrite", is_flag=True,
    help="Replace the output if it exists (a folder: only an earlier output of the same kind).")
SEED = click.IntRange(0, 2**32 - 1)


class UserError(click.ClickException):
    """Bad data or a bad model path: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"Error: {self.format_message()}", err=True)


class LstmaeGroup(click.Group):
    """Turns lstmae's own exceptions into one-line errors; --debug shows the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:  # noqa: BLE001 - the CLI boundary
            if ctx.params.get("debug") or ctx.obj and ctx.obj.get("debug"):
                raise
            from ..exceptions import LstmaeError

            if isinstance(err, LstmaeError):
                raise UserError(str(err)) from err
            if isinstance(err, ValueError):  # parameter checks in the estimator
                raise UserError(str(err)) from err
            if isinstance(err, OSError) and err.filename is not None:  # the file system refused a path
                raise UserError(_os_error_line(err)) from err
            if isinstance(err, RuntimeError) and str(err).startswith("Symlink loop from "):  # Path.resolve, < 3.13
                path = str(err).removeprefix("Symlink loop from ").strip("'\"")
                loop = OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                raise UserError(_os_error_line(loop)) from err
            click.echo(f"Error: unexpected {type(err).__name__}: {err} (run again with --debug for the traceback)",
                       err=True)
            sys.exit(1)


def _os_error_line(err: OSError) -> str:
    """One line for an OSError on a path: the path, the system's reason and what to do."""
    fixes = {errno.EACCES: "check its permissions (and those of the folders above it)",
             errno.EPERM: "check its permissions (and those of the folders above it)",
             errno.ELOOP: "a symbolic link there points back to itself; fix or remove the link",
             errno.ENOSPC: "free some space, or write elsewhere",
             errno.EROFS: "the file system is read-only; write elsewhere"}
    reason = err.strerror or type(err).__name__
    return f"{err.filename}: {reason}; " + fixes.get(err.errno, "check the path")


@click.group(cls=LstmaeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="lstmae")
@click.pass_context
def cli(ctx, debug):
    """LSTM autoencoders for time series: train, score, encode, evaluate.

    \b
    Typical use:
      lstmae demo -o demo_output                 # the whole pipeline on built-in data
      lstmae fit train.csv -o model --window 30 --time-column timestamp
      lstmae score model test.csv -o scores.csv  # one row per input row
      lstmae evaluate model test.csv --label-column label -o report

    DATA is CSV or Parquet (series: rows are time steps; sequences: one row per sequence) or
    .npy/.npz arrays. Outputs are CSV or Parquet by extension. Progress goes to stderr.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    import warnings

    # lstmae's warnings (skipped groups, sorted timestamps, ...) as one line each on stderr
    warnings.showwarning = lambda message, category, *args, **kwargs: click.echo(f"warning: {message}", err=True)


def _common_data_options(func):
    options = [
        click.option("--time-column", help="Column with timestamps; kept as the index of the output."),
        click.option("--label-column", help="Column with 0/1 anomaly labels (never used as a feature)."),
        click.option("--entity-column", help="Column naming separate series (machines, patients); "
                                             "windows never cross from one to the next."),
        click.option("--columns", help="Comma-separated feature columns, names or glob patterns such as 't*' "
                                       "(default: all numeric columns)."),
        click.option("--nan-policy", type=click.Choice(NAN_POLICIES), default="error", show_default=True,
                     help="What to do with missing values."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _split_columns(columns: str | None):
    """Names as given between the commas (a name may hold spaces: the reader matches it exactly)."""
    return [c for c in columns.split(",") if c.strip()] if columns else None


def _parse_units(text: str | None, name: str):
    if text is None:
        return None
    try:
        units = tuple(int(u) for u in text.split(","))  # "8,,4" is refused, not read as 8,4
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 128,64, got {text!r}", param_hint=name)
    if not units or min(units) < 1:
        raise click.BadParameter(f"expected layer sizes >= 1 such as 128,64, got {text!r}", param_hint=name)
    return units


def _parameter_options(architecture_only: bool = False):
    """Options for the estimator parameters in lstmae.config.PARAMETERS (their one source), plus --preset.

    Every option defaults to None, so that a --preset's values hold unless given; --help shows the
    estimator's default.
    """
    def decorate(func):
        for p in reversed([p for p in PARAMETERS if p.cli and (p.architecture or not architecture_only)]):
            if p.name in ("encoder", "decoder"):
                kind = {"type": str, "metavar": "UNITS"}
            elif isinstance(p.default, bool):
                func = click.option(f"{p.flag}/--no-{p.flag[2:]}", p.name, default=None,
                                    help=f"{p.help[0].upper()}{p.help[1:]} (default: {p.default}).")(func)
                continue
            elif p.choices:
                kind = {"type": click.Choice(p.choices)}
            elif p.type.startswith("int"):
                kind = {"type": int}
            elif p.type.startswith("float"):
                kind = {"type": float}
            else:
                kind = {"type": str}
            default = "mirror of the encoder" if p.name == "decoder" else p.default
            if isinstance(default, tuple):  # as typed: 128,64
                default = ",".join(map(str, default))
            # in the help text, as click shows a default: given as show_default it comes out as "(tanh)"
            func = click.option(p.flag, p.name, default=None,
                                help=f"{p.help[0].upper()}{p.help[1:]}.  [default: {default}]", **kind)(func)
        from ..config import PRESETS

        return click.option("--preset", type=click.Choice(list(PRESETS)),
                            help="Start from a preset (options given beside it override it): "
                                 + "; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items()))(func)
    return decorate


def _model_params(preset, **options) -> dict:
    from ..config import PRESETS

    params = dict(PRESETS[preset].params) if preset else {}
    options["encoder"] = _parse_units(options.get("encoder"), "--encoder")
    options["decoder"] = _parse_units(options.get("decoder"), "--decoder")
    params.update({k: v for k, v in options.items() if v is not None})
    return params


def _alarm_options(func):
    """--min-alarm-rows, --merge-gap and --cooldown: the alarm rules (lstmae.scoring.alarms), in rows."""
    from ..config import ALARM_DEFAULTS

    options = [
        click.option("--min-alarm-rows", type=click.IntRange(min=1), default=ALARM_DEFAULTS["min_length"],
                     show_default=True,
                     help="An alarm starts once this many consecutive rows are flagged, this many rows minus one "
                          "after the first flag (1: at every flag)."),
        click.option("--merge-gap", type=click.IntRange(min=0), default=ALARM_DEFAULTS["merge_gap"],
                     show_default=True,
                     help="Flagged runs separated by at most this many unflagged rows are one alarm."),
        click.option("--cooldown", type=click.IntRange(min=0), default=ALARM_DEFAULTS["cooldown"],
                     show_default=True,
                     help="Rows after an alarm ends during which no new alarm starts."),
        click.option("--alarm-focus", type=FOCUS, default=ALARM_DEFAULTS["focus"], show_default=True,
                     metavar="Q|off",
                     help="Narrow each alarm, in hindsight, to its rows where the Q-quantile of the scores of the "
                          "windows covering the row is above the threshold (0: every covering window; 0.25: three "
                          "in four), and drop an alarm without such a row. A row's score is the mean of those "
                          "windows, so an alarm otherwise spreads a window's length before and after its anomaly. "
                          "Not with --how point, whose rows are scored by their own steps; off: the alarms as "
                          "the rules raise them."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class _Focus(click.ParamType):
    """--alarm-focus: a quantile between 0 and 1, or off."""

    name = "focus"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        if str(value).strip().lower() in ("off", "none"):
            return None
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not 0 <= number <= 1:
            self.fail(f"{value!r} is not a quantile between 0 and 1, nor off", param, ctx)
        return number


FOCUS = _Focus()


def _alarms(min_alarm_rows, merge_gap, cooldown, alarm_focus) -> dict:
    return {"min_length": min_alarm_rows, "merge_gap": merge_gap, "cooldown": cooldown, "focus": alarm_focus}


def check_output(path, overwrite, table: bool = False, model_dir=None, data=None, replaces=None):
    """Fail before any work when the output cannot be written (exists, no folder, unknown table type, a folder of
    other files than the earlier output `replaces` names: see data.io.check_replaceable), or would destroy what
    the command reads: the model it is made from (`model_dir`) or the `data` file, by lying inside the model,
    being the data, or being a folder that holds either (--overwrite replaces it)."""
    from ..data.io import check_output_path, check_replaceable

    if model_dir is not None:  # before "exists; pass --overwrite", which --overwrite would only turn into this
        _check_outside_model(Path(path), Path(model_dir))
    for read, what in ((model_dir, "the model"), (data, "the data")):
        if read is not None and Path(read).exists():
            _check_not_holding(Path(path), Path(read), what)
    check_output_path(Path(path), overwrite, table=table)
    check_replaceable(path, replaces)


def _check_outside_model(path: Path, model_dir: Path) -> None:
    """UserError when `path` is the model folder `model_dir` or lies inside it: --overwrite would destroy the
    model read. A folder that is not a model is left to the model's loading to name."""
    from ..persistence import CONFIG_FILE

    target, model = path.resolve(), model_dir.resolve()
    if not (model / CONFIG_FILE).is_file():
        return
    if target == model:
        raise UserError(f"{path} is the model folder this command reads; write the output elsewhere (it would "
                        "replace the model)")
    if model in target.parents:
        raise UserError(f"{path} is inside the model folder {model_dir}; write it elsewhere (it would replace a "
                        "part of the model)")


def _check_not_holding(path: Path, read: Path, what: str) -> None:
    """UserError when the output `path` is the file `read` or a folder above it: writing would delete it."""
    target, source = path.resolve(), read.resolve()
    if target == source:
        raise UserError(f"{path} is {what} this command reads; write the output elsewhere")
    if target in source.parents:
        raise UserError(f"{path} holds {what} this command reads ({read}); write the output elsewhere "
                        "(the folder would be replaced, and that with it)")


# ---------------------------------------------------------------------------- fit
@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", "model_dir", required=True, type=click.Path(path_type=Path),
              help="Model directory to write (config.json + model.safetensors).")
@click.option("--window", type=int, help="Rows per window (series layout; required there).")
@click.option("--stride", type=STRIDE, default=1, show_default=True, help="Rows between window starts.")
@click.option("--how", type=click.Choice(HOW_CHOICES), default=DEFAULTS["how"], show_default=True,
              help="Series: the kind of row score the threshold is fitted on, and scoring's default (see "
                   "`lstmae score --help`).")
@click.option("--layout", type=click.Choice(LAYOUTS), default="series", show_default=True,
              help="series: one long table, cut into windows; sequences: one row per fixed-length sequence.")
@_common_data_options
@_parameter_options()
@click.option("--max-gap", help="With --time-column: the longest time step that is not a gap, e.g. 5min or 60 "
                                "(default: 10 times the median step). Windows never span a gap.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same seed, same model on CPU).")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path),
              help="Save a checkpoint here after every epoch; the same command resumes from it after a kill.")
@OVERWRITE_OPTION
def fit(data, model_dir, window, stride, how, layout, time_column, label_column, entity_column, columns, nan_policy,
        preset, max_gap, seed, checkpoint_dir, overwrite, **options):
    """Train an LSTM autoencoder on DATA (normal behaviour) and save it to the folder -o/--output.

    Series: windows of --window rows every --stride rows, never across entities. The last
    --validation-fraction of each entity's windows (of each of --validation-blocks blocks of
    them) is held out; the threshold is fitted on the scores of those held-out rows. With
    --label-column, windows/sequences that contain a labelled anomaly are left out of training,
    and label-based thresholds (best-f1) use the held-out labels. Ctrl-C stops training and
    saves the best epoch so far.

    \b
    Example:
      lstmae fit sensors.csv -o model --window 30 --time-column timestamp --epochs 50
    Data-parallel on 2 processes (DDP; gloo on CPU, nccl on GPUs):
      torchrun --nproc-per-node 2 -m lstmae.cli.main fit sensors.csv -o model --window 30
    """
    from ..data.io import read_sequences, read_series
    from ..estimator import LSTMAutoencoder
    from ..data.validation import check_integer, counted
    from ..persistence import MODEL_KIND
    from ..series import fit_data, threshold_source

    if layout == "series" and window is None:
        raise click.UsageError("--window is required for --layout series: the number of rows per window, the "
                               "stretch of the past each score looks at, e.g. --window 50 (the detection study's)")
    if layout == "series":
        check_integer(window, "--window")
    elif window is not None:
        raise UserError("--window applies to --layout series; sequences are windows of their own length already")
    else:  # the series' other options were stored and ignored without a word
        context = click.get_current_context()
        for name in ("stride", "how", "time_column", "entity_column", "max_gap"):
            if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} applies to --layout series; sequences are independent, one score each: drop "
                                f"{flag}")
    check_output(model_dir, overwrite, data=data, replaces=MODEL_KIND)
    if checkpoint_dir is not None:
        checkpoints, target = Path(checkpoint_dir).resolve(), Path(model_dir).resolve()
        if checkpoints == target or target in checkpoints.parents or checkpoints in target.parents:
            raise UserError(f"--checkpoint-dir {checkpoint_dir} and the model folder {model_dir} overlap; give the "
                            "checkpoints a folder of their own (the model is written where they are kept)")
    params = _model_params(preset, **options)
    params["random_state"] = seed
    model = LSTMAutoencoder(**params)
    model._check_params()  # bad settings fail before the data is read
    _check_fit_options(model, label_column, entity_column, time_column, max_gap)
    started = time.perf_counter()
    names = _split_columns(columns)
    if layout == "sequences":
        dataset = read_sequences(data, columns=names, label_column=label_column, nan_policy=nan_policy)
    else:
        dataset = read_series(data, columns=names, time_column=time_column, label_column=label_column,
                              entity_column=entity_column, nan_policy=nan_policy)
    settings = {"time_column": time_column, "label_column": label_column, "entity_column": entity_column,
                "columns": names, "nan_policy": nan_policy, "max_gap": _number_or_text(max_gap)}
    fit_data(model, dataset, window=window, stride=stride, how=how, settings=settings, checkpoint_dir=checkpoint_dir)
    from ..training.distributed import is_main_process

    if not is_main_process():  # torchrun: the other ranks trained the same model; rank 0 writes it
        return
    model.save(model_dir, overwrite=overwrite)
    history = model.history_
    interrupted = ("" if not history.get("interrupted") else " (interrupted: kept the best epoch so far)"
                   if history.get("epochs_run") else " (interrupted before the first epoch ended: kept the seeded "
                   "weights, as --epochs 0)")
    click.echo(f"features ({len(dataset.feature_names)}): {', '.join(dataset.feature_names)}", err=True)
    scored = model.error_model_.scored
    if scored is not None:
        context = [name for name, kept in zip(dataset.feature_names, scored) if not kept]
        click.echo(f"0/1 features, fed to the network but not scored ({len(context)}): {', '.join(context[:10])}"
                   f"{', ...' if len(context) > 10 else ''} (--binary-features scored to score them too)", err=True)
    if "run_losses" in history:
        losses = ", ".join(f"{loss:.4g}" for loss in history["run_losses"])
        click.echo(f"kept run {history['chosen_run']} of {len(history['run_losses'])} (--n-init), the lowest "
                   f"held-out loss: {losses}", err=True)
    epochs = counted(history["epochs_run"], "epoch")
    click.echo(f"trained on {model.data_settings_['n_train']} {model.data_settings_['unit']} in "
               f"{time.perf_counter() - started:.1f}s ({epochs}, best {history['best_epoch']})"
               f"{interrupted}; threshold {model.threshold_:.4g} ({model.threshold_rule_}, fitted on "
               f"{threshold_source(model)}); saved {model_dir}", err=True)


def _check_fit_options(model, label_column, entity_column, time_column, max_gap) -> None:
    """Option combinations fit would otherwise accept and quietly not honour."""
    from ..scoring import parse_threshold
    from ..scoring.thresholds import resolve_threshold
    from ..series import needs_labels

    if label_column is None and needs_labels(parse_threshold(resolve_threshold(model.threshold))):
        raise UserError(f"--threshold {model.threshold} is fitted on labels: add --label-column, or choose a "
                        "rule without labels (e.g. mad:8) and refit it later with evaluate --label-column")
    if entity_column is not None and entity_column in (label_column, time_column):
        raise UserError(f"--entity-column {entity_column} is also the label or time column; name another")
    if max_gap is not None and time_column is None:
        raise UserError("--max-gap needs --time-column (the gaps are measured in its units)")


def _number_or_text(value: str | None):
    """--max-gap as a number for numeric time columns, else as a duration such as '5min'."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


# -------------------------------------------------------------------------- score
@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Scores file (.csv or .parquet).")
@click.option("--how", type=click.Choice(HOW_CHOICES), default=None,
              help="Series: a row's score is the max/mean over the windows covering it, (point) the error of "
                   "the row itself averaged over those windows, so an alarm covers the anomalous rows and not "
                   "the window around them, or (end) the score of the window ending there: the causal choice "
                   "for live monitoring. Default: what the model's threshold was fitted on.")
@click.option("--stride", type=STRIDE, default=1, show_default=True, help="Series: rows between scored windows.")
@click.option("--threshold", help="Override the stored threshold for this run: value:V, or a rule such as "
                                  "quantile:0.995 or sigma:4, fitted on the model's held-out normal scores (never "
                                  "on the data being scored); dspot:RISK and other adaptive rules follow the "
                                  "scored rows, using only the past. On a series whose whole level moved after "
                                  "training (alarms on a third of the rows), telemanom:2,mad=8 ends those storms: "
                                  "it follows the new level.")
@click.option("--feature-errors", is_flag=True, help="Series: add error_<feature> columns (which feature is off).")
@click.option("--events", "events_path", type=click.Path(path_type=Path),
              help="Series: also write the table of events (the alarms, after the alarm rules) to this file.")
@_alarm_options
@click.option("--columns", help="Comma-separated feature columns of DATA (names or glob patterns), when it has "
                                "other numeric columns beside the model's features (default: the model's "
                                "selection); the names must be the features the model was trained on.")
@NAN_POLICY_OPTION
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def score(model_dir, data, output, how, stride, threshold, feature_errors, events_path, min_alarm_rows,
          merge_gap, cooldown, alarm_focus, columns, nan_policy, overwrite):
    """Anomaly scores for DATA: one row per input row (series) or per sequence.

    Series output: the input's time column or index, `score`, `is_anomaly` (0/1: above the
    threshold), `alarm` (0/1: in an alarm, after the alarm rules below) and `valid` (False for
    rows that no full window covers: their score is empty, never zero-padded), and `label`
    when DATA has the model's label column (for a model fitted without one: a 0/1 column
    named label, y, anomaly, is_anomaly, target or class).

    \b
    Example:
      lstmae score model test.csv -o scores.csv --events events.csv
    """
    from ..data.io import write_tables
    from ..series import read_for_model, score_data, scoring_how

    check_output(output, overwrite, table=True, model_dir=model_dir, data=data)
    if events_path is not None:
        check_output(events_path, overwrite, table=True, model_dir=model_dir, data=data)
        if Path(events_path).resolve() == Path(output).resolve():
            raise UserError(f"--events {events_path} is the scores' output too; give the events their own file")
    model = _load(model_dir, columns)
    _refuse_series_options(model, {"--events": events_path, "--how": how, "--feature-errors": feature_errors or None})
    how = how or scoring_how(model)
    dataset = read_for_model(model, data, nan_policy=nan_policy)
    scores, events = score_data(model, dataset, how=how, stride=stride, threshold=threshold,
                                feature_errors=feature_errors, events=events_path is not None,
                                alarms=_alarms(min_alarm_rows, merge_gap, cooldown, alarm_focus))
    # one command, one result: no scores without the events asked for, and no old scores replaced by a failed run
    write_tables([(scores, output)] + ([(events, events_path)] if events is not None else []), overwrite=overwrite)
    flagged = int(scores["is_anomaly"].sum())
    n_valid = max(1, int(scores.get("valid", scores["is_anomaly"] >= 0).sum()))
    if "alarm" in scores:  # a series: what a person is paged on is the alarm rows, after the alarm rules
        alarms = int(scores["alarm"].sum())
        message = (f"scored {len(scores)} rows: {alarms} in alarms ({alarms / n_valid:.1%}), {flagged} above the "
                   f"threshold before the alarm rules; wrote {output}")
    else:
        message = f"scored {len(scores)} rows: {flagged} flagged ({flagged / n_valid:.1%}); wrote {output}"
    if "overflow" in scores and scores["overflow"].any():
        message += f"; {int(scores['overflow'].sum())} rows overflowed (an extreme value: scored inf, see 'overflow')"
    if events is not None:
        message += f"; {len(events)} events to {events_path}"
    click.echo(message, err=True)


def _load(model_dir, columns=None):
    """The model of MODEL_DIR; --columns overrides the feature selection it reads DATA with."""
    from ..estimator import load

    model = load(model_dir)
    if columns is not None:  # they replace the timestep columns a sequences model was fitted on too
        model.data_settings_ = {**model.data_settings_, "columns": _split_columns(columns), "timestep_columns": None}
    return model


def _refuse_series_options(model, given: dict) -> None:
    """UserError for the first option in `given` (name: value, None when not given) that a model of
    sequences cannot honour."""
    if model.data_settings_.get("layout") != "sequences":
        return
    for name, value in given.items():
        if value is not None:
            raise UserError(f"{name} applies to a model of a series; this model scores sequences (one score per "
                            f"sequence, no rows or events): drop {name}")


# --------------------------------------------------------------- encode / reconstruct
@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help=".csv or .parquet")
@click.option("--stride", type=STRIDE, default=1, show_default=True, help="Series: rows between windows.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default=None,
              help="bottleneck: the vector z the decoder gets (columns z_j); mean / max: each encoder layer's "
                   "states averaged / maximised over time (mean_j / max_j); pooled: the means, then the last "
                   "layer's maxima (pooled_j). Default: the model's own setting.")
@click.option("--columns", help="Comma-separated feature columns (default: the model's selection).")
@NAN_POLICY_OPTION
@OVERWRITE_OPTION
def encode(model_dir, data, output, stride, encoding, columns, nan_policy, overwrite):
    """Encodings, one row per window (series) or sequence: features for a classifier.

    Series rows are keyed by the window's last row (`end`); sequences by their id.
    """
    from ..data.io import write_table
    from ..series import encode_data, read_for_model

    check_output(output, overwrite, table=True, model_dir=model_dir, data=data)
    model = _load(model_dir, columns)
    if encoding is not None:
        model.set_params(encoding=encoding)  # this process's copy only
    table = encode_data(model, read_for_model(model, data, nan_policy=nan_policy, labels=False), stride=stride)
    write_table(table, output, overwrite=overwrite)
    size = table.shape[1] - (model.data_settings_.get("entity_column") in table.columns)
    click.echo(f"wrote {len(table)} encodings of size {size} to {output}", err=True)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help=".csv or .parquet")
@NAN_POLICY_OPTION
@OVERWRITE_OPTION
def reconstruct(model_dir, data, output, nan_policy, overwrite):
    """Reconstructions in the original units.

    Series: windows of the trained length every `window` rows (non-overlapping), stitched
    back into one row per input row (rows after the last full window are left empty).
    Sequences: one row per sequence, one column per step: t000, t001, ... (t000_<feature>, ... with
    several features), whatever the input's columns were named.
    """
    from ..data.io import write_table
    from ..series import read_for_model, reconstruct_data

    check_output(output, overwrite, table=True, model_dir=model_dir, data=data)
    model = _load(model_dir)
    dataset = read_for_model(model, data, nan_policy=nan_policy, labels=False)
    table = reconstruct_data(model, dataset)
    write_table(table, output, overwrite=overwrite)
    if model.data_settings_.get("layout") == "sequences":
        click.echo(f"wrote {len(table)} reconstructed sequences to {output}", err=True)
    else:  # the rows after a group's last back-to-back window are left empty
        done = int(table[dataset.feature_names].notna().all(axis=1).sum())
        click.echo(f"wrote {len(table)} rows to {output}, {done} reconstructed"
                   + (f" ({len(table) - done} after the last full window left empty)" if done < len(table) else ""),
                   err=True)


# ------------------------------------------------------------------------- evaluate
@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--label-column", help="Column with 0/1 labels (1 = anomaly). Default: the model's label column, or "
                                     "one 0/1 column named label, y, anomaly, ...; an .npz file's labels are its 'y'.")
@click.option("-o", "--output", "report_dir", required=True, type=click.Path(path_type=Path),
              help="Directory for metrics.json, PNG plots and report.html.")
@click.option("--how", type=click.Choice(HOW_CHOICES), default=None,
              help="Series: max/mean over the windows covering a row, point (the row's own error, averaged "
                   "over those windows) or end (the window ending there). Default: what the model's threshold "
                   "was fitted on.")
@click.option("--threshold", help="Override the stored threshold rule for this evaluation.")
@click.option("--early-window", type=click.IntRange(min=0), default=0, show_default=True,
              help="Rows before an event in which a flag still counts as detecting it (lead time).")
@click.option("--point-adjust", is_flag=True,
              help="Also report point-adjusted F1. It inflates results: a single hit marks a whole event found.")
@_alarm_options
@NAN_POLICY_OPTION
@OVERWRITE_OPTION
def evaluate(model_dir, data, label_column, report_dir, how, threshold, early_window, point_adjust, min_alarm_rows,
             merge_gap, cooldown, alarm_focus, nan_policy, overwrite):
    """Score labelled DATA and write metrics.json, plots and a self-contained report.html."""
    from ..data.io import staged_directory, write_bytes_atomic
    from ..evaluation.evaluate import REPORT_KIND, evaluate as evaluate_data
    from ..series import read_for_model

    check_output(report_dir, overwrite, model_dir=model_dir, data=data, replaces=REPORT_KIND)
    if point_adjust:
        click.echo("warning: point-adjusted F1 inflates results (any hit in an event counts the whole event)",
                   err=True)
    model = _load(model_dir)
    _refuse_series_options(model, {"--how": how})
    dataset = read_for_model(model, data, label_column=label_column, nan_policy=nan_policy)
    result = evaluate_data(model, dataset, how=how, threshold=threshold, early_window=early_window,
                           point_adjust=point_adjust, alarms=_alarms(min_alarm_rows, merge_gap, cooldown, alarm_focus))
    with staged_directory(report_dir, overwrite=overwrite, replaces=REPORT_KIND) as staging:
        for name, content in result.files().items():
            write_bytes_atomic(staging / name, content)
    click.echo(_metrics_line(result.metrics) + f"; report in {report_dir / 'report.html'}", err=True)


def _metrics_line(metrics: dict) -> str:
    def fmt(key):
        value = metrics.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    return (f"ROC-AUC {fmt('roc_auc')}, PR-AUC {fmt('pr_auc')}, precision {fmt('precision')}, "
            f"recall {fmt('recall')}, F1 {fmt('f1')}, alarm rate {fmt('alarm_rate')}")


# ----------------------------------------------------------------------------- demo
@cli.command()
@click.option("-o", "--output", "out_dir", default="demo_output", show_default=True, type=click.Path(path_type=Path),
              help="Directory for the model, scores, metrics.json, plots and report.html.")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True,
              help="Training epochs of the demo's model (fewer: faster, less accurate).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (data and model).")
@OVERWRITE_OPTION
def demo(out_dir, epochs, seed, overwrite):
    """The whole pipeline on a built-in synthetic sensor data set with rare events.

    Generates 8 sensors over 6000 minutes, trains on the clean first half, scores the
    rest, and writes the model, scores, events, metrics.json, plots and report.html.
    """
    from ..demo import DEMO_KIND, run_demo

    check_output(out_dir, overwrite, replaces=DEMO_KIND)
    started = time.perf_counter()
    metrics = run_demo(out_dir, epochs=epochs, seed=seed, overwrite=overwrite)
    click.echo(f"demo done in {time.perf_counter() - started:.0f}s: {_metrics_line(metrics)}; "
               f"{metrics.get('n_events', 0)} true events, event recall {metrics.get('event_recall', 0):.2f}", err=True)
    click.echo(f"open {out_dir / 'report' / 'report.html'} for the plots", err=True)


# -------------------------------------------------------------------------- summary
@cli.command()
@click.argument("model_dir", required=False, type=click.Path(path_type=Path))
@click.option("--features", type=click.IntRange(min=1), help="F, features per timestep (without MODEL_DIR).")
@click.option("--timesteps", type=click.IntRange(min=1),
              help="L, timesteps per window (with MODEL_DIR: the model's window unless given; another L shows the "
                   "shapes at that length, with the same parameters).")
@_parameter_options(architecture_only=True)
def summary(model_dir, features, timesteps, preset, **options):
    """Layer-by-layer table: output shape per sample, return sequences, parameters.

    \b
    Examples:
      lstmae summary model
      lstmae summary --preset keras_tutorial --features 2 --timesteps 3
    """
    import torch

    from ..config import ARCHITECTURE_PARAMS, make_architecture
    from ..nn.model import LSTMAutoencoderModule

    if model_dir is None and (features is None or timesteps is None):
        raise click.UsageError("give a MODEL_DIR, or --features and --timesteps with architecture options")
    given = [name for name, value in {"features": features, "preset": preset, **options}.items() if value is not None]
    if model_dir is not None and given:  # they were ignored: the saved model's table printed as if they applied
        raise UserError(f"--{given[0].replace('_', '-')} describes a new architecture; with MODEL_DIR the saved "
                        "model's is shown: drop it, or drop MODEL_DIR")
    if model_dir is not None:
        model = _load(model_dir)  # checked as score checks it: a corrupt model is one line, not a KeyError
        arch, timesteps = model.architecture_, timesteps or model.n_timesteps_
    else:
        params = _model_params(preset, **options)
        if params.get("vocab_size") == "auto":
            raise UserError("a token model's vocabulary comes from its data; summarise a saved model instead")
        arch = make_architecture(features, **{k: params[k] for k in ARCHITECTURE_PARAMS if k in params})
    try:
        with torch.device("meta"):  # shapes and counts only: 10**8 units must not allocate their weights
            table = LSTMAutoencoderModule(arch).summary(timesteps)
    except RuntimeError as err:  # beyond 2**63 numbers in one weight matrix
        raise UserError(f"this network is too large to build ({str(err).splitlines()[0]}); use smaller layer "
                        "sizes") from None
    click.echo(table)


from .export import register as _register_export  # noqa: E402 - commands kept in their own files
from .serve import register as _register_serve  # noqa: E402

_register_export(cli)
_register_serve(cli)


def main():
    # SIGTERM (docker stop, systemd, kill) unwinds as an exit, so that half-written outputs are removed as on
    # Ctrl-C; by default it ended the process on the spot and left a hidden temporary file beside the output
    signal.signal(signal.SIGTERM, _terminated)
    cli(prog_name="lstmae")


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
