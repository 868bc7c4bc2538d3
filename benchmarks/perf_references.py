"""The models lstmae is measured against in `perf.py`, written here so every figure is a ratio
taken side by side on the same machine, data and layers (encoder H1 > H2, decoder H2, H1, then
a per-step Linear to F).

- `PlainAutoencoder`: the batched nn.LSTM autoencoder most people write first.
- `TutorialAutoencoder` with `train_one_at_a_time`: the PyTorch tutorial style, one sequence
  per optimizer step and per forward pass.
- `HandWrittenReluAutoencoder`: a plain autograd loop of relu LSTM cells that projects the
  input inside the loop, step by step (what one writes to get Keras' relu LSTMs in PyTorch).
- `keras_autoencoder`: Keras 3 relu LSTMs, only when `import keras` works.
- `swap_layers(arch, AutogradLoopLSTM)`: lstmae's relu layer before fast_lstm, and
  `swap_layers(arch, UnbindKerasLSTM)` the same with a one-line fix of its O(L^2) backward.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from lstmae.config import Architecture
from lstmae.nn.model import KerasLSTM, LSTMAutoencoderModule


class PlainAutoencoder(nn.Module):
    """nn.LSTM layers, batch first: (N, L, F) -> (N, L, F); the code repeated with expand."""

    def __init__(self, n_features: int, encoder: tuple[int, ...]):
        super().__init__()
        sizes = (n_features, *encoder)
        self.encoder = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(sizes, sizes[1:]))
        sizes = (encoder[-1], *reversed(encoder))
        self.decoder = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(sizes, sizes[1:]))
        self.output = nn.Linear(encoder[0], n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lstm in self.encoder:
            x = lstm(x)[0]
        x = x[:, -1:].expand(-1, x.shape[1], -1)
        for lstm in self.decoder:
            x = lstm(x)[0]
        return self.output(x)


class TutorialAutoencoder(nn.Module):
    """The tutorial's RecurrentAutoencoder shape for ONE sequence (L, F) -> (L, F)."""

    def __init__(self, n_features: int, encoder: tuple[int, ...]):
        super().__init__()
        self.model = PlainAutoencoder(n_features, encoder)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return self.model(sequence.unsqueeze(0))[0]


def train_one_at_a_time(model: TutorialAutoencoder, X: np.ndarray, optimizer) -> float:
    """The tutorial's loop: per sequence a forward pass, an L1 loss (sum), a step, `.item()`."""
    loss_fn = nn.L1Loss(reduction="sum")
    total = 0.0
    for sequence in X:
        sequence = torch.from_numpy(np.ascontiguousarray(sequence, dtype=np.float32))
        optimizer.zero_grad()
        loss = loss_fn(model(sequence), sequence)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


class HandWrittenReluLSTM(nn.Module):
    """One relu LSTM layer as an autograd loop of cells; input projected at every step."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            i, f, g, o = self.cell(torch.cat([x[:, t], h], dim=1)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.relu(g)
            h = torch.sigmoid(o) * torch.relu(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class HandWrittenReluAutoencoder(PlainAutoencoder):
    def __init__(self, n_features: int, encoder: tuple[int, ...]):
        super().__init__(n_features, encoder)
        sizes = (n_features, *encoder)
        self.encoder = nn.ModuleList(HandWrittenReluLSTM(a, b) for a, b in zip(sizes, sizes[1:]))
        sizes = (encoder[-1], *reversed(encoder))
        self.decoder = nn.ModuleList(HandWrittenReluLSTM(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lstm in self.encoder:
            x = lstm(x)
        x = x[:, -1:].expand(-1, x.shape[1], -1)
        for lstm in self.decoder:
            x = lstm(x)
        return self.output(x)


class AutogradLoopLSTM(KerasLSTM):
    """KerasLSTM's autograd loop as lstmae had it before fast_lstm (fixed-length input only).

    Step t is read as gates_x[:, t]: the backward of each such read writes a zero-filled
    (N, L, 4H) gradient, so training costs O(L^2) memory traffic.
    """

    def steps_of(self, gates_x: torch.Tensor):
        return [gates_x[:, t] for t in range(gates_x.shape[1])]

    def forward_state(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None,
                      state: tuple[torch.Tensor, torch.Tensor] | None = None):
        gates_x = self.input_proj(x)
        if x.dim() == 2:
            gates_x = gates_x.unsqueeze(1).expand(-1, steps, -1)
        h, c = state if state is not None else (gates_x.new_zeros(len(x), self.hidden_size),) * 2
        outputs = []
        for gates_x_t in self.steps_of(gates_x):
            i, f, g, o = (gates_x_t + self.recurrent_proj(h)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * self.activation(g)
            h = torch.sigmoid(o) * self.activation(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


class UnbindKerasLSTM(AutogradLoopLSTM):
    """The same loop with the one-line fix: steps from gates_x.unbind(1), whose backward is O(L)."""

    def steps_of(self, gates_x: torch.Tensor):
        return gates_x.unbind(1)


def swap_layers(arch: Architecture, layer_class) -> LSTMAutoencoderModule:
    """lstmae's module for `arch` (unidirectional) with every LSTM a `layer_class` (a KerasLSTM)."""
    module = LSTMAutoencoderModule(arch)
    for layers in (module.encoder, module.decoder):
        for index, layer in enumerate(layers):
            input_size = layer.input_size if isinstance(layer, nn.LSTM) else layer.input_proj.in_features
            layers[index] = layer_class(input_size, layer.hidden_size, arch.activation)
    return module


def keras_autoencoder(n_features: int, length: int, encoder: tuple[int, ...], learning_rate: float):
    """The Keras tutorial's relu model (Keras 3 on TensorFlow, as the tutorial ran it); raises
    ImportError when keras is absent. `pip install tensorflow-cpu` brings both."""
    os.environ["KERAS_BACKEND"] = "tensorflow"  # Keras 3 could also run on torch: not the reference
    import keras

    layers = [keras.Input((length, n_features))]
    for k, units in enumerate(encoder):
        layers.append(keras.layers.LSTM(units, activation="relu", return_sequences=k < len(encoder) - 1))
    layers.append(keras.layers.RepeatVector(length))
    for units in reversed(encoder):
        layers.append(keras.layers.LSTM(units, activation="relu", return_sequences=True))
    layers.append(keras.layers.TimeDistributed(keras.layers.Dense(n_features)))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model
