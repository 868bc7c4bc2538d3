"""The LSTM autoencoder: one readable file.

Data flow for encoder=(128, 64), L timesteps, F features (the Keras tutorial's model):

    x (N, L, F)
      -> LSTM(128), all steps          (N, L, 128)
      -> LSTM(64), last step only      (N, 64)       the bottleneck z, one vector per sample
      -> repeat over L steps           (N, L, 64)    Keras' RepeatVector
      -> LSTM(64), all steps           (N, L, 64)
      -> LSTM(128), all steps          (N, L, 128)
      -> Linear(128 -> F) per step     (N, L, F)     Keras' TimeDistributed(Dense(F))

Everything is batch first. The bottleneck is each sample's own last hidden state
(`out[:, -1]`), never a reshape of `h_n` across the batch (a classic tutorial bug).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import Architecture


class KerasLSTM(nn.Module):
    """One LSTM layer with Keras' equations and a free activation (nn.LSTM is tanh only).

        i, f, o = sigmoid(x W + h U + b)   (input, forget and output gates)
        g       = act(x W_g + h U_g + b_g)
        c       = f * c + i * g
        h       = o * act(c)

    Initialised as Keras does (Glorot-uniform input weights, orthogonal recurrent weights, forget
    bias 1). The input projection of all L steps is one matrix product before the time loop,
    and a constant input (the repeated bottleneck) is projected only once.
    """

    def __init__(self, input_size: int, hidden_size: int, activation: str = "relu"):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, 4 * hidden_size)
        self.recurrent_proj = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.activation = torch.relu if activation == "relu" else torch.tanh
        nn.init.xavier_uniform_(self.input_proj.weight)
        nn.init.orthogonal_(self.recurrent_proj.weight)
        nn.init.zeros_(self.input_proj.bias)
        with torch.no_grad():
            self.input_proj.bias[hidden_size : 2 * hidden_size] = 1.0

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """x (N, L, I) -> (N, L, H); or x (N, I), the same input at each of `steps` steps."""
        if x.dim() == 2:
            gates_x = self.input_proj(x).unsqueeze(1).expand(-1, steps, -1)
        else:
            gates_x = self.input_proj(x)
        n, length = gates_x.shape[:2]
        h = gates_x.new_zeros(n, self.hidden_size)
        c = gates_x.new_zeros(n, self.hidden_size)
        outputs = []
        for t in range(length):
            gates = gates_x[:, t] + self.recurrent_proj(h)
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * self.activation(g)
            h = torch.sigmoid(o) * self.activation(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class TanhLSTM(nn.LSTM):
    """nn.LSTM (fused native kernels) with the same call as KerasLSTM: returns the outputs only."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1).expand(-1, steps, -1)
        return super().forward(x)[0]


class Bidirectional(nn.Module):
    """Run a KerasLSTM forwards and a twin backwards in time; concatenate: (N, L, 2H)."""

    def __init__(self, input_size: int, hidden_size: int, activation: str):
        super().__init__()
        self.forward_lstm = KerasLSTM(input_size, hidden_size, activation)
        self.backward_lstm = KerasLSTM(input_size, hidden_size, activation)

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        backward = self.backward_lstm(x.flip(1), steps).flip(1)
        return torch.cat([self.forward_lstm(x, steps), backward], dim=2)


def make_lstm(input_size: int, hidden_size: int, activation: str, bidirectional: bool = False) -> nn.Module:
    """The fastest layer with the requested equations: nn.LSTM for tanh, KerasLSTM otherwise."""
    if activation == "tanh":
        return TanhLSTM(input_size, hidden_size, bidirectional)
    if bidirectional:
        return Bidirectional(input_size, hidden_size, activation)
    return KerasLSTM(input_size, hidden_size, activation)


def last_state(outputs: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """Each sample's final hidden state from layer outputs (N, L, H*dirs) -> (N, H*dirs).

    The backward direction ends at step 0, so its final state is `outputs[:, 0, H:]`.
    """
    if not bidirectional:
        return outputs[:, -1]
    half = outputs.shape[-1] // 2
    return torch.cat([outputs[:, -1, :half], outputs[:, 0, half:]], dim=1)


class LSTMAutoencoderModule(nn.Module):
    """The network behind `lstmae.LSTMAutoencoder`; built from an `Architecture`.

    forward: (N, L, F) -> (N, L, F). encode: (N, L, F) -> (N, Z). decode: (N, Z), L -> (N, L, F).
    With `bottleneck=False` it is the "regular LSTM" network: the same layers, each returning
    sequences, no bottleneck and no repeat; `encode` is then unavailable.
    """

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        directions = 2 if arch.bidirectional else 1
        self.encoder = nn.ModuleList()
        size = arch.n_features
        for units in arch.encoder:
            self.encoder.append(make_lstm(size, units, arch.activation, arch.bidirectional))
            size = units * directions
        self.decoder = nn.ModuleList()
        for units in arch.decoder:
            self.decoder.append(make_lstm(size, units, arch.activation))
            size = units
        self.output = nn.Linear(size, arch.n_features) if arch.output_layer else None
        self.dropout = nn.Dropout(arch.dropout)

    def _run_encoder(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.encoder:
            x = self.dropout(layer(x))
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, L, F) -> z (N, Z): each sample's last hidden state of the last encoder layer."""
        if not self.arch.bottleneck:
            raise ValueError("this network has no bottleneck (bottleneck=False), so it has no encoding")
        return last_state(self._run_encoder(x), self.arch.bidirectional)

    def decode(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """z (N, Z) repeated over `steps` steps -> reconstruction (N, steps, F)."""
        return self._run_decoder(z, steps)

    def _run_decoder(self, x: torch.Tensor, steps: int | None) -> torch.Tensor:
        for i, layer in enumerate(self.decoder):
            x = layer(x, steps)
            if i < len(self.decoder) - 1 or self.output is not None:
                x = self.dropout(x)
        return x if self.output is None else self.output(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, L, F) -> reconstruction (N, L, F)."""
        if self.arch.bottleneck:
            return self.decode(self.encode(x), x.shape[1])
        return self._run_decoder(self._run_encoder(x), None)

    def layer_table(self, steps: int) -> list[dict]:
        """One row per layer for `lstmae summary`: output shape per sample, return sequences, params."""
        rows = [{"layer": "input", "output_shape": (steps, self.arch.n_features), "return_sequences": None, "params": 0}]
        for i, layer in enumerate(self.encoder):
            last = self.arch.bottleneck and i == len(self.encoder) - 1
            width = self.arch.encoder[i] * (2 if self.arch.bidirectional else 1)
            rows.append(_lstm_row(f"encoder LSTM {i + 1}", layer, width, steps, not last))
        if self.arch.bottleneck:
            rows.append({"layer": "repeat (RepeatVector)", "output_shape": (steps, self.arch.code_size),
                         "return_sequences": None, "params": 0})
        for i, layer in enumerate(self.decoder):
            rows.append(_lstm_row(f"decoder LSTM {i + 1}", layer, self.arch.decoder[i], steps, True))
        if self.output is not None:
            rows.append({"layer": "dense per step (TimeDistributed)", "output_shape": (steps, self.arch.n_features),
                         "return_sequences": None, "params": sum(p.numel() for p in self.output.parameters())})
        return rows


def _lstm_row(name: str, layer: nn.Module, width: int, steps: int, sequences: bool) -> dict:
    kind = "tanh, nn.LSTM" if isinstance(layer, TanhLSTM) else "Keras equations"
    return {
        "layer": f"{name} ({kind})",
        "output_shape": (steps, width) if sequences else (width,),
        "return_sequences": sequences,
        "params": sum(p.numel() for p in layer.parameters()),
    }
