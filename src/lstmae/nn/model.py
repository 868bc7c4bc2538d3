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

Variants: token models put an Embedding in front (ids (N, L) -> (N, L, E)) and end with V
logits; the EncDec-AD decoder replaces repeat + decoder LSTMs (see `_encdec_ad_decode`);
variable-length batches pass `lengths` (N,): the encoder packs (nn.LSTM) or masks (KerasLSTM)
so that each sample stops at its own last step, and the decoders, which only look back in
time, run the batch's longest length: positions past a sample's length are meaningless.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .. import kernels
from ..config import Architecture
from ..kernels.layer import kept
from . import fast_lstm


def lstm_layer(x: torch.Tensor, input_weight: torch.Tensor, input_bias: torch.Tensor | None,
               recurrent_weight: torch.Tensor, activation: str = "tanh",
               state: tuple[torch.Tensor, torch.Tensor] | None = None, steps: int | None = None):
    """One fixed-length LSTM layer over all steps (arguments and results: `fast_lstm.lstm_layer`):
    through the fused C++ layer where `lstmae.kernels` has one for x, else the PyTorch loop."""
    layer = kernels.fused_layer_for(x)
    if layer is None:
        layer = fast_lstm.lstm_layer
    return layer(x, input_weight, input_bias, recurrent_weight, activation, state=state, steps=steps)


def valid_steps(lengths: torch.Tensor, steps: int, device: torch.device) -> torch.Tensor:
    """(N, steps) bool mask, True where step t < lengths[i]."""
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]


def reverse_steps(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """x (N, L, ...) with each sample's first lengths[i] steps in reverse order; padding stays put."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    index = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class KerasLSTM(nn.Module):
    """One LSTM layer with Keras' equations and a free activation (nn.LSTM is tanh only).

        i, f, o = sigmoid(x W + h U + b)   (input, forget and output gates)
        g       = act(x W_g + h U_g + b_g)
        c       = f * c + i * g
        h       = o * act(c)

    Initialised as Keras does (Glorot-uniform input weights, orthogonal recurrent weights, forget
    bias 1). Fixed-length input runs through `lstm_layer` (the same equations with a hand-written
    backward pass, in fused C++ kernels where they serve, and far faster to train than this loop
    under autograd); the loop below serves variable lengths, where each sample's state freezes
    at its end.
    """

    def __init__(self, input_size: int, hidden_size: int, activation: str = "relu"):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, 4 * hidden_size)
        self.recurrent_proj = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.activation_name = activation
        self.activation = torch.relu if activation == "relu" else torch.tanh
        nn.init.xavier_uniform_(self.input_proj.weight)
        nn.init.orthogonal_(self.recurrent_proj.weight)
        nn.init.zeros_(self.input_proj.bias)
        with torch.no_grad():
            self.input_proj.bias[hidden_size : 2 * hidden_size] = 1.0

    def forward(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, L, I) -> (N, L, H); or x (N, I), the same input at each of `steps` steps.

        lengths (N,): sample i stops at step lengths[i]: its state is frozen there and its later
        outputs are 0.
        """
        return self.forward_state(x, steps, lengths)[0]

    def forward_state(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None,
                      state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """As `forward`, starting from `state` (h, c) (zeros when None); returns the outputs and the
        final (h, c), each (N, H), taken at each sample's last valid step."""
        if lengths is None:  # the common fixed-length case: the fused layer with its own backward
            return lstm_layer(x, self.input_proj.weight, self.input_proj.bias, self.recurrent_proj.weight,
                              self.activation_name, state=state, steps=steps)
        if x.dim() == 2:
            gates_x = self.input_proj(x).unsqueeze(1).expand(-1, steps, -1)
        else:
            gates_x = self.input_proj(x)
        n, length = gates_x.shape[:2]
        if state is None:
            h = gates_x.new_zeros(n, self.hidden_size)
            c = gates_x.new_zeros(n, self.hidden_size)
        else:
            h, c = state
        valid = None if lengths is None else valid_steps(lengths, length, gates_x.device).unsqueeze(2)
        outputs = []
        for t in range(length):
            gates = gates_x[:, t] + self.recurrent_proj(h)
            i, f, g, o = gates.chunk(4, dim=1)
            c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * self.activation(g)
            h_next = torch.sigmoid(o) * self.activation(c_next)
            if valid is None:
                h, c = h_next, c_next
                outputs.append(h)
            else:
                h, c = torch.where(valid[:, t], h_next, h), torch.where(valid[:, t], c_next, c)
                outputs.append(h_next * valid[:, t])
        return torch.stack(outputs, dim=1), (h, c)


FUSED_TRAINING_BATCH = 32  # TanhLSTM trains through the fused layer from this batch size on
FUSED_TRAINING_STEPS = 32  # and from this sequence length on


class TanhLSTM(nn.LSTM):
    """nn.LSTM (fused native kernels) with the same call as KerasLSTM: returns the outputs only.

    With `lengths` the batch is packed, so each sample stops at its own last step. Scoring on
    the CPU (no gradients, one direction, fixed length) runs `lstm_layer` with the
    same weights instead, and so does training on batches of at least FUSED_TRAINING_BATCH
    sequences of at least FUSED_TRAINING_STEPS steps where the compiled kernels are there.
    Smaller batches and shorter sequences train through nn.LSTM, where the fused layer did not pay;
    the measurements behind both limits, and the check that model quality is the same either way,
    are in the README (Speed and memory) and benchmarks/tanh_training_check.py.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_state(x, steps, lengths)[0]

    def _runs_fused(self, x: torch.Tensor, steps: int | None, lengths: torch.Tensor | None) -> bool:
        """Whether this call goes through lstm_layer (see the class docstring)."""
        if lengths is not None or self.bidirectional or x.device.type != "cpu":
            return False
        if not torch.is_grad_enabled():
            return True
        length = steps if x.dim() == 2 else x.shape[1]
        return (len(x) >= FUSED_TRAINING_BATCH and length >= FUSED_TRAINING_STEPS
                and kernels.fused_layer_for(x) is not None)

    def _summed_bias(self) -> torch.Tensor:
        """bias_ih + bias_hh (4H,). Scoring keeps the sum while both are unchanged, so that
        lstm_layer's kept gate-reordered weights and bias (keyed on this tensor) hold."""
        if torch.is_grad_enabled():
            return self.bias_ih_l0 + self.bias_hh_l0
        return kept(self, "_lstmae_bias_sum", (self.bias_ih_l0, self.bias_hh_l0),
                    lambda: self.bias_ih_l0 + self.bias_hh_l0)

    def forward_state(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None,
                      state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """As KerasLSTM.forward_state; h and c are (N, H * directions), forward direction first."""
        if self._runs_fused(x, steps, lengths):
            return lstm_layer(x, self.weight_ih_l0, self._summed_bias(), self.weight_hh_l0, "tanh", state=state,
                              steps=steps)
        if x.dim() == 2:
            x = x.unsqueeze(1).expand(-1, steps, -1)
        initial = None if state is None else (state[0].unsqueeze(0), state[1].unsqueeze(0))
        if lengths is None:
            outputs, (h, c) = super().forward(x, initial)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, (h, c) = super().forward(packed, initial)
            outputs = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])[0]
        # h, c: (directions, N, H) -> (N, directions * H)
        return outputs, (h.transpose(0, 1).reshape(len(x), -1), c.transpose(0, 1).reshape(len(x), -1))


class Bidirectional(nn.Module):
    """Run a KerasLSTM forwards and a twin backwards in time; concatenate: (N, L, 2H).

    The backward twin starts at each sample's last valid step. x is (N, L, I) (encoders only).
    """

    def __init__(self, input_size: int, hidden_size: int, activation: str):
        super().__init__()
        self.forward_lstm = KerasLSTM(input_size, hidden_size, activation)
        self.backward_lstm = KerasLSTM(input_size, hidden_size, activation)

    def forward(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_state(x, steps, lengths)[0]

    def forward_state(self, x: torch.Tensor, steps: int | None = None, lengths: torch.Tensor | None = None):
        forward, (h_forward, c_forward) = self.forward_lstm.forward_state(x, lengths=lengths)
        reversed_x = reverse_steps(x, lengths)
        backward, (h_backward, c_backward) = self.backward_lstm.forward_state(reversed_x, lengths=lengths)
        return (torch.cat([forward, reverse_steps(backward, lengths)], dim=2),
                (torch.cat([h_forward, h_backward], dim=1), torch.cat([c_forward, c_backward], dim=1)))


def make_lstm(input_size: int, hidden_size: int, activation: str, bidirectional: bool = False) -> nn.Module:
    """The fastest layer with the requested equations: nn.LSTM for tanh, KerasLSTM otherwise."""
    if activation == "tanh":
        return TanhLSTM(input_size, hidden_size, bidirectional)
    if bidirectional:
        return Bidirectional(input_size, hidden_size, activation)
    return KerasLSTM(input_size, hidden_size, activation)


def last_state(outputs: torch.Tensor, bidirectional: bool, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Each sample's final hidden state from layer outputs (N, L, H*dirs) -> (N, H*dirs).

    The forward direction ends at step lengths[i] - 1 (L - 1 without lengths); the backward one
    ends at step 0, so its final state is `outputs[:, 0, H:]`.
    """
    if lengths is None:
        last = outputs[:, -1]
    else:
        last = outputs[torch.arange(len(outputs), device=outputs.device), lengths.to(outputs.device) - 1]
    if not bidirectional:
        return last
    half = outputs.shape[-1] // 2
    return torch.cat([last[:, :half], outputs[:, 0, half:]], dim=1)


class LSTMAutoencoderModule(nn.Module):
    """The network behind `lstmae.LSTMAutoencoder`; built from an `Architecture`.

    forward: (N, L, F) -> (N, L, F). encode: (N, L, F) -> (N, Z). decode: (N, Z), L -> (N, L, F).
    Token models take ids (N, L) instead of (N, L, F) and return logits (N, L, V).
    With `bottleneck=False` it is the "regular LSTM" network: the same layers, each returning
    sequences, no bottleneck and no repeat; `encode` is then unavailable.
    With `decoder_type="encdec_ad"` the decoder is one LSTM of Z units started from the
    encoder's final (h, c); it reconstructs in reverse order (see `_encdec_ad_decode`).
    """

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        directions = 2 if arch.bidirectional else 1
        self.embedding = nn.Embedding(arch.vocab_size, arch.embedding_dim) if arch.vocab_size else None
        step_size = arch.embedding_dim if arch.vocab_size else arch.n_features  # what one input step holds
        self.encoder = nn.ModuleList()
        size = step_size
        for units in arch.encoder:
            self.encoder.append(make_lstm(size, units, arch.activation, arch.bidirectional))
            size = units * directions
        self.decoder = nn.ModuleList()
        if arch.decoder_type == "encdec_ad":
            size = step_size  # it is fed the previous step
        for units in arch.decoder:
            self.decoder.append(make_lstm(size, units, arch.activation))
            size = units
        self.output = nn.Linear(size, arch.vocab_size or arch.n_features) if arch.output_layer else None
        self.dropout = nn.Dropout(arch.dropout)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout between layers while training; scoring skips the call (one per layer and row when streaming)."""
        return self.dropout(x) if self.training else x

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids (N, L) -> (N, L, E); real-valued input (N, L, F) is returned as it is."""
        return x if self.embedding is None else self.embedding(x)

    def _encoder_outputs(self, x: torch.Tensor, lengths: torch.Tensor | None):
        """Each encoder layer's outputs (N, L, H*dirs), in order, for embedded input x."""
        for layer in self.encoder:
            x = self._drop(layer(x, lengths=lengths))
            yield x

    def _run_encoder(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        *_, last = self._encoder_outputs(x, lengths)
        return last

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, L, F) (token ids (N, L)) -> z (N, Z): each sample's last hidden state of the last
        encoder layer, at its own last step when `lengths` (N,) is given."""
        if not self.arch.bottleneck:
            raise ValueError("this network has no bottleneck (bottleneck=False), so it has no encoding")
        return last_state(self._run_encoder(self._embed(x), lengths), self.arch.bidirectional, lengths)

    def encode_mean(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, L, F) (token ids (N, L)) -> (N, sum(encoder) * directions): each encoder layer's
        hidden states averaged over each sample's valid steps, concatenated in layer order."""
        return self._pool_layers(x, lengths, every=("mean",))

    def encode_max(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, L, F) (token ids (N, L)) -> (N, sum(encoder) * directions): each encoder layer's
        hidden states maximised over each sample's valid steps, concatenated in layer order."""
        return self._pool_layers(x, lengths, every=("max",))

    def encode_pooled(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, L, F) (token ids (N, L)) -> (N, (sum(encoder) + Z) * directions): each encoder
        layer's hidden states averaged over each sample's valid steps, in layer order, then the
        last (code) layer's states maximised over them (a short event that a mean averages away
        still shows in a peak)."""
        return self._pool_layers(x, lengths, every=("mean",), last=("max",))

    def _pool_layers(self, x: torch.Tensor, lengths: torch.Tensor | None, every: tuple[str, ...],
                     last: tuple[str, ...] = ()) -> torch.Tensor:
        """Statistics ("mean", "max") of every encoder layer's states over the valid steps, layer by
        layer, then those of the last layer only: (N, D)."""
        if not self.arch.bottleneck:
            raise ValueError("this network has no bottleneck (bottleneck=False), so it has no encoding")
        inputs = self._embed(x)
        mask = None if lengths is None else valid_steps(lengths, inputs.shape[1], inputs.device).unsqueeze(2)
        parts, outputs = [], None
        for outputs in self._encoder_outputs(inputs, lengths):
            parts.extend(_pool(outputs, mask, statistic) for statistic in every)
        parts.extend(_pool(outputs, mask, statistic) for statistic in last)
        return torch.cat(parts, dim=1)

    def decode(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """z (N, Z) repeated over `steps` steps -> reconstruction (N, steps, F) (the "repeat" decoder)."""
        if self.arch.decoder_type != "repeat":
            raise ValueError("decode(z) needs the repeat decoder; the EncDec-AD decoder starts from (h, c)")
        return self._run_decoder(z, steps)

    def _run_decoder(self, x: torch.Tensor, steps: int | None) -> torch.Tensor:
        for i, layer in enumerate(self.decoder):
            x = layer(x, steps)
            if i < len(self.decoder) - 1 or self.output is not None:
                x = self._drop(x)
        return x if self.output is None else self.output(x)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                teacher_forcing: bool | None = None) -> torch.Tensor:
        """x (N, L, F) -> reconstruction (N, L, F); token ids (N, L) -> logits (N, L, V).

        lengths (N,) int64: sample i is x[i, :lengths[i]] (None: all L steps).
        teacher_forcing (EncDec-AD only): feed the decoder the true previous values instead of
        its own outputs; default: in training mode only.
        """
        inputs = self._embed(x)
        if not self.arch.bottleneck:
            return self._run_decoder(self._run_encoder(inputs, lengths), None)
        if self.arch.decoder_type == "encdec_ad":
            teacher_forcing = self.training if teacher_forcing is None else teacher_forcing
            return self._encdec_ad_decode(self._encoder_final_state(inputs, lengths), inputs, lengths, teacher_forcing)
        z = last_state(self._run_encoder(inputs, lengths), self.arch.bidirectional, lengths)
        return self._run_decoder(z, inputs.shape[1])

    def _encoder_final_state(self, inputs: torch.Tensor, lengths: torch.Tensor | None):
        """(h, c) of the last encoder layer at each sample's last step, each (N, Z)."""
        for layer in self.encoder[:-1]:
            inputs = self._drop(layer(inputs, lengths=lengths))
        return self.encoder[-1].forward_state(inputs, lengths=lengths)[1]

    def _encdec_ad_decode(self, state, inputs: torch.Tensor, lengths: torch.Tensor | None,
                          teacher_forcing: bool) -> torch.Tensor:
        """The EncDec-AD decoder (Malhotra et al. 2016), from the encoder's final state (h, c).

        x'(L) = Linear(h); then for t = L-1 .. 1 one LSTM step whose input is x(t+1) (teacher
        forcing) or x'(t+1) (its own previous output) gives h and x'(t) = Linear(h).
        inputs (N, L, I) are the (embedded) true values. Returns (N, L, F) (logits (N, L, V)) in
        time order.
        """
        layer, steps = self.decoder[0], inputs.shape[1]
        if teacher_forcing:
            # Reversed step s (output x'(L-s)) is fed reversed step s-1, the true x(L-s+1).
            previous = reverse_steps(inputs, lengths)[:, :-1]
            hidden = [state[0].unsqueeze(1)]
            if steps > 1:
                hidden.append(layer.forward_state(previous, state=state)[0])
            reversed_output = self.output(torch.cat(hidden, dim=1))
        else:
            outputs = [self.output(state[0])]
            for _ in range(steps - 1):
                hidden, state = layer.forward_state(self._feed_back(outputs[-1]).unsqueeze(1), state=state)
                outputs.append(self.output(hidden[:, 0]))
            reversed_output = torch.stack(outputs, dim=1)
        return reverse_steps(reversed_output, lengths)

    def _feed_back(self, output: torch.Tensor) -> torch.Tensor:
        """One decoder output as the next decoder input: the value itself, or the embedded argmax token."""
        return output if self.embedding is None else self.embedding(output.argmax(dim=-1))

    def layer_table(self, steps: int) -> list[dict]:
        """One row per layer for `lstmae summary`: output shape per sample, return sequences, params."""
        arch = self.arch
        rows = [{"layer": "input (token ids)" if self.embedding is not None else "input",
                 "output_shape": (steps,) if self.embedding is not None else (steps, arch.n_features),
                 "return_sequences": None, "params": 0}]
        if self.embedding is not None:
            rows.append({"layer": f"embedding ({arch.vocab_size} ids -> {arch.embedding_dim})",
                         "output_shape": (steps, arch.embedding_dim), "return_sequences": None,
                         "params": self.embedding.weight.numel()})
        for i, layer in enumerate(self.encoder):
            last = arch.bottleneck and i == len(self.encoder) - 1
            width = arch.encoder[i] * (2 if arch.bidirectional else 1)
            name = f"encoder LSTM {i + 1}" + (" -> (h, c)" if last and arch.decoder_type == "encdec_ad" else "")
            rows.append(_lstm_row(name, layer, width, steps, not last))
        if arch.decoder_type == "encdec_ad":
            rows.append(_lstm_row("decoder LSTM, EncDec-AD",
                                  self.decoder[0], arch.decoder[0], steps, True))
        else:
            if arch.bottleneck:
                rows.append({"layer": "repeat (RepeatVector)", "output_shape": (steps, arch.code_size),
                             "return_sequences": None, "params": 0})
            for i, layer in enumerate(self.decoder):
                rows.append(_lstm_row(f"decoder LSTM {i + 1}", layer, arch.decoder[i], steps, True))
        if self.output is not None:
            name = "dense per step -> logits" if self.embedding is not None else "dense per step (TimeDistributed)"
            rows.append({"layer": name, "output_shape": (steps, arch.vocab_size or arch.n_features),
                         "return_sequences": None, "params": sum(p.numel() for p in self.output.parameters())})
        return rows

    def summary(self, steps: int) -> str:
        """The Keras-like text table of `layer_table` (what `lstmae summary` prints)."""
        rows = self.layer_table(steps)
        lines = [f"{'layer':<44} {'output shape (per sample)':<26} {'returns':<10} {'params':>10}"]
        lines.append("-" * len(lines[0]))
        for row in rows:
            returns = {True: "sequence", False: "last step", None: ""}[row["return_sequences"]]
            lines.append(f"{row['layer']:<44} {str(row['output_shape']):<26} {returns:<10} {row['params']:>10,}")
        lines.append("-" * len(lines[0]))
        lines.append(f"{'total parameters':<82} {sum(r['params'] for r in rows):>10,}")
        if self.arch.activation == "tanh":
            lines.append("note: nn.LSTM keeps two bias vectors per layer, so tanh layers have 4*units more "
                         "parameters than in Keras")
        return "\n".join(lines)


def _pool(outputs: torch.Tensor, mask: torch.Tensor | None, statistic: str) -> torch.Tensor:
    """One statistic of layer outputs (N, L, H) over the steps where mask (N, L, 1) is True -> (N, H)."""
    if statistic == "mean":
        return outputs.mean(dim=1) if mask is None else (outputs * mask).sum(dim=1) / mask.sum(dim=1)
    if statistic == "max":
        return (outputs if mask is None else outputs.masked_fill(~mask, float("-inf"))).amax(dim=1)
    raise ValueError(f"unknown statistic {statistic!r}; use 'mean' or 'max'")


def _lstm_row(name: str, layer: nn.Module, width: int, steps: int, sequences: bool) -> dict:
    kind = "tanh, nn.LSTM" if isinstance(layer, TanhLSTM) else "Keras equations"
    return {
        "layer": f"{name} ({kind})",
        "output_shape": (steps, width) if sequences else (width,),
        "return_sequences": sequences,
        "params": sum(p.numel() for p in layer.parameters()),
    }
