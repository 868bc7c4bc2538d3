"""Architecture settings and presets (standard library only, so the CLI can read them fast)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .data.validation import is_flag, is_integer, is_number

ACTIVATIONS = ("tanh", "relu")
DECODER_TYPES = ("repeat", "encdec_ad")
# What LSTMAutoencoder.transform returns (its `encoding`): the bottleneck, each encoder layer's states averaged
# or maximised over time, or "pooled": each layer's mean, then the code layer's max (benchmarks/classification_study.py).
ENCODINGS = ("bottleneck", "mean", "max", "pooled")
LOSS_CHOICES = ("mse", "mae")
SCALER_CHOICES = ("standard", "minmax", "none")
ERROR_MODEL_CHOICES = ("auto", "mse", "mae", "mahalanobis", "normalized", "normalized-max")
HOW_CHOICES = ("max", "mean", "end", "point")
BINARY_FEATURE_CHOICES = ("scored", "context")


@dataclass(frozen=True)
class Parameter:
    """One estimator parameter: the ONE place its name, default, type, help and CLI flag are written.

    `LSTMAutoencoder`'s signature and docstring and `lstmae fit`'s options are made from these (a
    test checks that they agree), so a new parameter is one entry here plus its use.
    """

    name: str
    default: object
    type: str  # numpydoc type, e.g. "tuple of int"
    help: str
    choices: tuple | None = None
    cli: bool = True  # an option of `lstmae fit` (--name-with-dashes)
    architecture: bool = False  # shapes the network (else a training or scoring setting)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


# The defaults are what a user who changes nothing gets, chosen on benchmarks/detection_study.py (README,
# "Anomaly detection on real data"): the L1 loss, learning rate 3e-3 and batch 32 beat MSE / 1e-3 / 64 on
# ECG5000 and on the series means. The error model, the row mapping (DEFAULTS["how"]) and the threshold
# rules (DEFAULT_THRESHOLDS) are the study's first-ranked alarm setting on the series and its best rule on
# ECG5000's beats.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter("encoder", (128, 64), "tuple of int", "units of the encoder LSTMs; the last is the code size Z "
              "(x2 when bidirectional)", architecture=True),
    Parameter("decoder", None, "tuple of int or None", "units of the decoder LSTMs; None mirrors the encoder "
              "(without an output layer the last decoder LSTM gets F units)", architecture=True),
    Parameter("activation", "tanh", "str", "LSTM activation: tanh (nn.LSTM) or relu (Keras' equations, as in "
              "LSTM(..., activation='relu'))", ACTIVATIONS, architecture=True),
    Parameter("output_layer", True, "bool", "end with a per-timestep Linear (Keras' TimeDistributed(Dense(F)))",
              architecture=True),
    Parameter("bidirectional", False, "bool", "bidirectional encoder LSTMs", architecture=True),
    Parameter("dropout", 0.0, "float", "dropout between LSTM layers, in [0, 1)", architecture=True),
    Parameter("bottleneck", True, "bool", "False builds the 'regular LSTM' of the same layers, with no "
              "bottleneck and no repeat", architecture=True),
    Parameter("decoder_type", "repeat", "str", "repeat: the code repeated over L steps into the decoder LSTMs; "
              "encdec_ad: Malhotra et al. 2016, the encoder's final (h, c) starts one decoder LSTM that "
              "reconstructs in reverse order", DECODER_TYPES, architecture=True),
    Parameter("vocab_size", None, "int, 'auto' or None", "None for real values; V (or 'auto': the largest "
              "training id + 1) for integer token sequences (N, L), embedded and trained with cross-entropy",
              cli=False, architecture=True),
    Parameter("embedding_dim", 32, "int", "size of the token embedding (token models only)", cli=False,
              architecture=True),
    Parameter("epochs", 100, "int", "training epochs (0 keeps the seeded random weights; the scaler, error "
              "model and threshold are still fitted)"),
    Parameter("batch_size", 32, "int", "samples per training step"),
    Parameter("steps_per_epoch", 32, "int or None", "training steps per epoch: each epoch trains on a fresh random "
              "draw of steps_per_epoch x batch_size samples (all of them when there are fewer), so an epoch costs "
              "the same on a long series as on a short one; the early-stopping loss is taken on at most as many "
              "validation samples, the same ones every epoch (None: every sample, every epoch)"),
    Parameter("learning_rate", 3e-3, "float", "Adam's learning rate"),
    Parameter("input_noise", 0.0, "float", "standard deviation of Gaussian noise added to each training window's "
              "scaled values (a denoising autoencoder: the network reconstructs the clean window from the noisy "
              "one; held-out losses and scores use clean windows; 0: none)"),
    Parameter("loss", "mae", "str", "training loss and raw reconstruction error: mse or mae", LOSS_CHOICES),
    Parameter("validation_fraction", 0.1, "float", "the LAST fraction of the data (of each block, see "
              "validation_blocks), held out for early stopping, the error model and the threshold (as Keras' "
              "validation_split)"),
    Parameter("validation_blocks", 1, "int", "series (fit_series, lstmae fit on a table) only: hold out the last "
              "validation_fraction of each of this many equal, consecutive blocks of each entity's windows instead of "
              "one tail, so that early stopping, the error model and the threshold see more of the series' time "
              "(a daily cycle, not one stretch of it)"),
    Parameter("threshold_floor", None, "float or None", "series (fit_series, lstmae fit on a table) only: a "
              "quantile Q in (0, 1]; the threshold of every static rule is then never below the Q quantile of the "
              "training rows' scores (of each kind of score), so it flags at most 1 - Q of the rows the network "
              "learned as normal: for a held-out part that misses some of the series' normal behaviour, such as "
              "a stretch of a daily cycle (None: no floor)"),
    Parameter("smooth", 1, "int", "series (fit_series, lstmae fit on a table) only: each row's score becomes the "
              "mean of the smooth rows centred on it (fewer at the ends), the held-out rows' alike before the "
              "threshold is fitted on them, with how mean, max or point (not the causal how=end that streaming "
              "scores); it ranks the rows of anomalies that last (a labelled stretch of hours, an ECG beat) above "
              "lone spikes and blurs short anomalies, so it is off by default (1: no smoothing; what it won and "
              "lost in the detection study: the README's \"When the alarms are not what you need\")"),
    Parameter("patience", 20, "int or None", "epochs without a better validation loss before stopping "
              "(None: never)"),
    Parameter("n_init", 1, "int", "networks trained, from seeds random_state, random_state + 1, ... (the CLI's "
              "--seed); the one with the lowest loss on the whole held-out part (on the training windows when nothing "
              "is held out) is kept, as scikit-learn's KMeans keeps its best of n_init runs (n_init times the "
              "training time)"),
    Parameter("max_grad_norm", 1.0, "float or None", "gradient clipping norm (None: no clipping)"),
    Parameter("scaler", "standard", "str", "per-feature scaling fitted on the training part only",
              SCALER_CHOICES),
    Parameter("error_model", "auto", "str", "how reconstruction errors become one score per sample: auto "
              "(normalized-max, or mae for token models, sequences of different lengths and a single held-out "
              "sample, which it cannot score or fit), mse, mae, "
              "mahalanobis (EncDec-AD), normalized (each feature's error as a robust z-score on validation "
              "data, its scale at least 0.1 scaled units, averaged) or normalized-max (the largest of those "
              "z-scores: one feature out of line is enough)", ERROR_MODEL_CHOICES),
    Parameter("binary_features", "context", "str", "features whose training values are all 0 or 1 (flags, one-hot "
              "commands, as MSL's): context, they are fed to the network but left out of the normalized error "
              "models' score (as Telemanom scores a channel, not the commands beside it; every feature counts when "
              "all are 0/1); or scored, their errors count like any other's", BINARY_FEATURE_CHOICES),
    Parameter("threshold", "auto", "str", "rule for threshold_ from the held-out scores: auto (sigma:2 on "
              "sequence scores as fit fits them, mad:8,quantile=1 on a series' row scores as fit_series fits them: its "
              "thousands of overlapping, correlated rows need a stricter rule, and one robust to their heavy "
              "tail), or e.g. sigma:3, mad:5, quantile:0.99, "
              "pot:1e-3, dspot:1e-3, fpr:0.01, best-f1 (needs labels), value:0.3 (see lstmae.scoring.thresholds)"),
    Parameter("encoding", "pooled", "str", "what transform returns: pooled, each encoder layer's states "
              "averaged over the steps, then the code layer's maximised (N, sum(encoder) + Z), features for a "
              "classifier; bottleneck, the code z, the last state (N, Z); mean or "
              "max, each encoder layer's states averaged or maximised (N, sum(encoder))", ENCODINGS),
    Parameter("random_state", None, "int or None", "the seed of the weights, shuffling and noise (the caller's global "
              "random and numpy.random are left alone); same seed, same model on the CPU", cli=False),
    Parameter("device", "auto", "str", "auto (cuda, then mps, then cpu; relu models: cpu, faster there), cpu, "
              "cuda, cuda:N or mps"),
    Parameter("progress", True, "bool", "tqdm progress bars on stderr (shown only on a terminal)", cli=False),
)
PARAMETER = {p.name: p for p in PARAMETERS}
# The estimator parameters that shape the network (all others are training settings).
ARCHITECTURE_PARAMS = tuple(p.name for p in PARAMETERS if p.architecture)
# The alarm rules' defaults (lstmae.scoring.alarms), in rows; here so that `lstmae --help` needs no numpy.
# focus (a quantile, or None: off): each alarm run narrowed, in hindsight, to the rows its covering windows agree on.
ALARM_DEFAULTS = {"min_length": 10, "merge_gap": 30, "cooldown": 150, "focus": 0.25}
# Scoring a series: a row's score is the mean of the windows covering it.
DEFAULTS = {**{p.name: p.default for p in PARAMETERS}, "how": "mean"}
# error_model="auto" where it can fit and score the data (else mae: see LSTMAutoencoder._resolved_error_model).
AUTO_ERROR_MODEL = "normalized-max"
# threshold="auto"'s rule by the kind of held-out score it is fitted on: "window" (one score per
# sequence) or "rows" (a series' row scores, any `how`).
DEFAULT_THRESHOLDS = {"window": "sigma:2", "rows": "mad:8,quantile=1"}


def parameters_docstring() -> str:
    """The numpydoc "Parameters" entries of `LSTMAutoencoder`, made from `PARAMETERS`."""
    lines = []
    for p in PARAMETERS:
        lines.append(f"{p.name} : {p.type}, default={p.default!r}")
        lines.append(f"    {p.help[0].upper()}{p.help[1:]}.")
    return "\n".join(lines)


@dataclass(frozen=True)
class Architecture:
    """The shape of an LSTM autoencoder, independent of any data but its feature count.

    encoder: units of the stacked encoder LSTMs; the last one's final hidden state is the
        bottleneck vector (Z = encoder[-1], doubled when bidirectional).
    decoder: units of the decoder LSTMs, already resolved (see `resolve_decoder`).
    output_layer: a per-timestep Linear (Keras' TimeDistributed(Dense(F))) after the decoder.
    bottleneck: False gives the "regular LSTM" network of the same layers with no bottleneck:
        every layer returns sequences and nothing is repeated.
    decoder_type: "repeat" (the bottleneck repeated over L steps into the decoder LSTMs) or
        "encdec_ad" (Malhotra et al. 2016: one LSTM of Z units starts from the encoder's final
        (h, c) and reconstructs in reverse order, fed its previous value).
    vocab_size: V for token models (input (N, L) integer ids through an Embedding of
        `embedding_dim`, output (N, L, V) logits); None for real-valued input. n_features is
        1 for token models (one id per step).
    """

    n_features: int
    encoder: tuple[int, ...]
    decoder: tuple[int, ...]
    activation: str = "tanh"
    output_layer: bool = True
    bidirectional: bool = False
    dropout: float = 0.0
    bottleneck: bool = True
    decoder_type: str = "repeat"
    vocab_size: int | None = None
    embedding_dim: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        data = dict(data)
        data["encoder"] = tuple(data["encoder"])
        data["decoder"] = tuple(data["decoder"])
        for key, choices in (("activation", ACTIVATIONS), ("decoder_type", DECODER_TYPES)):
            if data.get(key, getattr(cls, key)) not in choices:
                raise ValueError(f"architecture {key} must be one of {', '.join(choices)}, got {data[key]!r}")
        return cls(**data)

    @property
    def code_size(self) -> int:
        """Z, the length of the bottleneck vector."""
        return self.encoder[-1] * (2 if self.bidirectional else 1)


def resolve_decoder(encoder, decoder, n_features: int, output_layer: bool) -> tuple[int, ...]:
    """Decoder units: the mirror of the encoder unless given.

    Without an output layer the decoder's last LSTM must emit F values per step, so its size
    becomes `n_features` (a single-layer encoder (64,) gives the decoder (F,)).
    """
    units = tuple(int(u) for u in (reversed(encoder) if decoder is None else decoder))
    if not output_layer:
        units = units[:-1] + (n_features,)
    return units


def check_architecture(encoder, decoder, activation, dropout, *, output_layer=True, bottleneck=True,
                       decoder_type="repeat", vocab_size=None, embedding_dim=32) -> None:
    """Raise ValueError with the fix for settings no model can be built from."""
    for name, units in (("encoder", encoder), ("decoder", decoder)):
        if units is None and name == "decoder":
            continue
        if not isinstance(units, (tuple, list, np.ndarray)) or np.ndim(units) != 1 or not len(units):
            raise ValueError(f"{name} must be a non-empty tuple of layer sizes such as (128, 64), got {units!r}")
        if not all(is_integer(u, 1) for u in units):
            raise ValueError(f"{name} layer sizes must be integers >= 1, got {tuple(units)!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    for name, flag in (("output_layer", output_layer), ("bottleneck", bottleneck)):
        if not is_flag(flag):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    if not is_number(dropout) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if decoder_type not in DECODER_TYPES:
        raise ValueError(f"decoder_type must be one of {DECODER_TYPES}, got {decoder_type!r}")
    if decoder_type == "encdec_ad" and (decoder is not None or not output_layer or not bottleneck):
        raise ValueError("decoder_type='encdec_ad' builds its own decoder (one LSTM of the code size, then the "
                         "output layer): leave decoder=None, output_layer=True and bottleneck=True")
    if vocab_size is not None:
        if vocab_size != "auto" and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2):
            raise ValueError(f"vocab_size must be None, 'auto' or an integer >= 2, got {vocab_size!r}")
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be an integer >= 1, got {embedding_dim!r}")
        if not output_layer:
            raise ValueError("token models (vocab_size set) need output_layer=True: it maps each step to V logits")


def make_architecture(n_features: int, encoder=(128, 64), decoder=None, activation="tanh", output_layer=True,
                      bidirectional=False, dropout=0.0, bottleneck=True, decoder_type="repeat", vocab_size=None,
                      embedding_dim=32) -> Architecture:
    """Check the estimator's architecture parameters and resolve them into an `Architecture`.

    vocab_size must be an int here ("auto" is resolved from the training data by `fit`).
    """
    check_architecture(encoder, decoder, activation, dropout, output_layer=output_layer, bottleneck=bottleneck,
                       decoder_type=decoder_type, vocab_size=vocab_size, embedding_dim=embedding_dim)
    if vocab_size == "auto":
        raise ValueError("vocab_size='auto' is resolved from the training data; give the vocabulary size V")
    encoder = tuple(int(u) for u in encoder)
    if vocab_size is not None:
        n_features = 1
    if decoder_type == "encdec_ad":
        decoder_units = (encoder[-1] * (2 if bidirectional else 1),)
    else:
        decoder_units = resolve_decoder(encoder, decoder, n_features, output_layer)
    return Architecture(n_features=int(n_features), encoder=encoder, decoder=decoder_units, activation=activation,
                        output_layer=bool(output_layer), bidirectional=bool(bidirectional), dropout=float(dropout),
                        bottleneck=bool(bottleneck), decoder_type=decoder_type, vocab_size=vocab_size,
                        embedding_dim=int(embedding_dim))


@dataclass(frozen=True)
class Preset:
    description: str
    params: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "default": Preset("lstmae's defaults: tanh LSTMs 128 -> 64 -> repeat -> 64 -> 128 + per-timestep Dense.", {}),
    "keras_tutorial": Preset(
        "The step-by-step Keras tutorial: LSTM(128, relu) -> LSTM(64, relu) -> RepeatVector -> "
        "LSTM(64, relu) -> LSTM(128, relu) -> TimeDistributed(Dense(F)).",
        {"encoder": (128, 64), "activation": "relu", "loss": "mse", "learning_rate": 1e-3},
    ),
    "keras_minimal": Preset(
        "The minimal Keras model: LSTM(100, relu) -> RepeatVector -> LSTM(100, relu) -> "
        "TimeDistributed(Dense(F)).",
        {"encoder": (100,), "activation": "relu", "loss": "mse", "learning_rate": 1e-3},
    ),
    "pytorch_tutorial": Preset(
        "The PyTorch tutorial RecurrentAutoencoder (embedding 64, hidden 128): LSTM(128) -> "
        "LSTM(64) -> repeat -> LSTM(64) -> LSTM(128) -> Linear(F), trained with an L1 loss.",
        {"encoder": (128, 64), "activation": "tanh", "loss": "mae", "learning_rate": 1e-3},
    ),
    "single_layer": Preset(
        "One LSTM each way and no dense layer: LSTM(64) -> repeat -> LSTM(F).",
        {"encoder": (64,), "output_layer": False},
    ),
    "no_bottleneck": Preset(
        "The 'regular LSTM' for comparison: the default layers, every one returning sequences, "
        "no bottleneck and no RepeatVector.",
        {"bottleneck": False},
    ),
    "encdec_ad": Preset(
        "EncDec-AD (Malhotra et al. 2016): LSTM(64) -> its final (h, c) starts a decoder LSTM(64) that "
        "reconstructs in reverse order, fed the true previous value in training and its own output at "
        "inference; scored by the Mahalanobis distance of the error vectors.",
        {"encoder": (64,), "activation": "tanh", "decoder_type": "encdec_ad", "error_model": "mahalanobis",
         "loss": "mse"},
    ),
    "token_autoencoder": Preset(
        "Embedding + LSTM for integer token sequences (N, L): Embedding(V, 32) -> LSTM(64) -> repeat -> "
        "LSTM(64) -> Linear(V) logits, trained with cross-entropy; V = largest training id + 1.",
        {"encoder": (64,), "vocab_size": "auto", "embedding_dim": 32},
    ),
}
