"""Architecture settings and presets (standard library only, so the CLI can read them fast)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

ACTIVATIONS = ("tanh", "relu")


@dataclass(frozen=True)
class Architecture:
    """The shape of an LSTM autoencoder, independent of any data but its feature count.

    encoder: units of the stacked encoder LSTMs; the last one's final hidden state is the
        bottleneck vector (Z = encoder[-1], doubled when bidirectional).
    decoder: units of the decoder LSTMs, already resolved (see `resolve_decoder`).
    output_layer: a per-timestep Linear (Keras' TimeDistributed(Dense(F))) after the decoder.
    bottleneck: False gives the "regular LSTM" network of the same layers with no bottleneck:
        every layer returns sequences and nothing is repeated.
    """

    n_features: int
    encoder: tuple[int, ...]
    decoder: tuple[int, ...]
    activation: str = "tanh"
    output_layer: bool = True
    bidirectional: bool = False
    dropout: float = 0.0
    bottleneck: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        data = dict(data)
        data["encoder"] = tuple(data["encoder"])
        data["decoder"] = tuple(data["decoder"])
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


def check_architecture(encoder, decoder, activation, dropout) -> None:
    """Raise ValueError with the fix for settings no model can be built from."""
    for name, units in (("encoder", encoder), ("decoder", decoder)):
        if units is None and name == "decoder":
            continue
        if isinstance(units, int) or not len(units):
            raise ValueError(f"{name} must be a non-empty tuple of layer sizes such as (128, 64), got {units!r}")
        if any(int(u) < 1 for u in units):
            raise ValueError(f"{name} layer sizes must be >= 1, got {tuple(units)!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


@dataclass(frozen=True)
class Preset:
    description: str
    params: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "default": Preset("lstmae's defaults: tanh LSTMs 128 -> 64 -> repeat -> 64 -> 128 + per-timestep Dense.", {}),
    "keras_tutorial": Preset(
        "The step-by-step Keras tutorial: LSTM(128, relu) -> LSTM(64, relu) -> RepeatVector -> "
        "LSTM(64, relu) -> LSTM(128, relu) -> TimeDistributed(Dense(F)).",
        {"encoder": (128, 64), "activation": "relu"},
    ),
    "keras_minimal": Preset(
        "The minimal Keras model: LSTM(100, relu) -> RepeatVector -> LSTM(100, relu) -> "
        "TimeDistributed(Dense(F)).",
        {"encoder": (100,), "activation": "relu"},
    ),
    "pytorch_tutorial": Preset(
        "The PyTorch tutorial RecurrentAutoencoder (embedding 64, hidden 128): LSTM(128) -> "
        "LSTM(64) -> repeat -> LSTM(64) -> LSTM(128) -> Linear(F), trained with an L1 loss.",
        {"encoder": (128, 64), "activation": "tanh", "loss": "mae"},
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
}
