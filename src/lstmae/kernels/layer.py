"""The fused LSTM layer: fused_gates.cpp's forward and backward loops as one autograd Function.

The call and the results are those of `lstmae.nn.fast_lstm.lstm_layer`, the PyTorch loop that
serves as its reference (and runs where the kernels do not); `layer_arguments` is the calling
convention both share.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch.autograd.function import once_differentiable

from . import build, policy

ACTIVATIONS = ("tanh", "relu")


def layer_arguments(x: torch.Tensor, input_weight: torch.Tensor, input_bias: torch.Tensor | None,
                    recurrent_weight: torch.Tensor, activation: str, state, steps: int | None):
    """Check a layer call and put it in the loops' terms: returns (x, W, b, U, h_0, c_0), relu and
    the number of steps, with the weights' rows in the gate order i, f, o, g (one sigmoid then
    covers i, f and o) and b zeros where None; h_0, c_0 None for the zero state."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    hidden = recurrent_weight.shape[1]
    if recurrent_weight.shape[0] != 4 * hidden or input_weight.shape != (4 * hidden, x.shape[-1]):
        raise ValueError(f"expected input_weight (4H, I) = (4*{hidden}, {x.shape[-1]}) and recurrent_weight "
                         f"(4H, H), got {tuple(input_weight.shape)} and {tuple(recurrent_weight.shape)}")
    if x.dim() == 2 and steps is None:
        raise ValueError("x (N, I) is a constant input: say how many steps to run with steps=")
    if x.dim() not in (2, 3):
        raise ValueError(f"expected x (N, L, I) or (N, I), got shape {tuple(x.shape)}")
    if input_bias is None:
        input_bias = x.new_zeros(4 * hidden)
    order = _gate_order(hidden, x.device)
    h_0, c_0 = (None, None) if state is None else state
    length = steps if x.dim() == 2 else x.shape[1]
    if torch.is_grad_enabled():  # autograd may record the reorder: never cached
        w_ih, b, w_hh = input_weight[order], input_bias[order], recurrent_weight[order]
    else:
        w_ih, b, w_hh = _cached_reorder(input_weight, input_bias, recurrent_weight, order)
    return (x, w_ih, b, w_hh, h_0, c_0), activation == "relu", length


@lru_cache(maxsize=64)
def _gate_order(hidden: int, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):  # a normal tensor, so that autograd may save it later
        return torch.cat([torch.arange(2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                          torch.arange(2 * hidden, 3 * hidden)]).to(device)  # i, f, g, o -> i, f, o, g


def kept(owner, attribute: str, sources, make):
    """make(), kept as `owner.<attribute>` while `sources` are the same tensors, unchanged.

    Scoring derives the same tensors from the same weights on every call (one row at a time when
    streaming); a tensor's _version counts its in-place updates (an optimizer step,
    load_state_dict), so a changed weight is never served from here. Inference tensors have no
    version: with one among the sources, make() runs every time. What is kept is made outside
    inference mode and without gradients, so that it has a version to be keyed on in turn.
    """
    if any(t.is_inference() for t in sources):
        return make()
    key = tuple((id(t), t._version) for t in sources)
    cached = getattr(owner, attribute, None)
    if cached is None or cached[0] != key:
        with torch.inference_mode(False), torch.no_grad():
            cached = (key, make())
        setattr(owner, attribute, cached)
    return cached[1]


CACHE_ATTRIBUTE = "_lstmae_gate_order_cache"


def _cached_reorder(input_weight, input_bias, recurrent_weight, order):
    """(W, b, U) in the gate order i, f, o, g, kept on the input weight while all three are unchanged."""
    return kept(input_weight, CACHE_ATTRIBUTE, (input_weight, input_bias, recurrent_weight),
                lambda: (input_weight[order], input_bias[order], recurrent_weight[order]))


def needs_graph(tensors) -> bool:
    """Whether autograd must record the layer: gradients on and some input requires them."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def fused_lstm_layer(x: torch.Tensor, input_weight: torch.Tensor, input_bias: torch.Tensor | None,
                     recurrent_weight: torch.Tensor, activation: str = "tanh",
                     state: tuple[torch.Tensor, torch.Tensor] | None = None, steps: int | None = None):
    """One LSTM layer over all steps in the fused kernels; returns outputs (N, L, H) and the final
    (h_L, c_L). Arguments as `lstmae.nn.fast_lstm.lstm_layer`; x float32 on the CPU, and the
    kernels built (see `lstmae.kernels.fused_layer_for`)."""
    tensors, relu, length = layer_arguments(x, input_weight, input_bias, recurrent_weight, activation, state, steps)
    if needs_graph(tensors):
        outputs, c_last = _FusedLSTMLayer.apply(*tensors, relu, length)
    else:  # keep=False: one step's gates and cells, reused
        x, w_ih, b, w_hh, h_0, c_0 = tensors
        # U as the panels that the kernels' one-row products read (a streaming update), which they
        # would otherwise make on every call
        panels = kept(w_hh, "_lstmae_panels", (w_hh,), lambda: build.compiled().recurrent_panels(w_hh))
        outputs, _, cells, _, _ = _forward(x, w_ih, b, w_hh, h_0, c_0, relu=relu, length=length, keep=False,
                                           panels=panels)
        c_last = cells[0]
    return outputs, (outputs[:, -1], c_last)


def _forward(x, w_ih, b, w_hh, h_0, c_0, relu: bool, length: int, keep: bool, panels=None):
    """The kernels' forward loop: outputs (N, L, H); when `keep`, the activated gates (L, N, 4H),
    the cells and act(cells) (L, N, H) of every step for the backward pass (else one step's);
    where each step with an input to project was one product of [x_t, h_{t-1}] (tiles or oneDNN),
    those rows of every step (L, N, I + H), else None. panels: U as the row products read it (made
    by the kernels where None)."""
    return tuple(build.compiled().layer_forward(x, w_ih, b, w_hh, h_0, c_0, relu, length, keep,
                                                policy.onednn_min_flops(), policy.step_tiles(), panels))


class _FusedLSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, b, w_hh, h_0, c_0, relu, length):
        outputs, gates_all, cells, cell_outs, joined = _forward(x, w_ih, b, w_hh, h_0, c_0, relu, length, keep=True)
        ctx.relu = relu
        ctx.save_for_backward(x, w_ih, w_hh, h_0, c_0, outputs, joined, gates_all, cells, cell_outs)
        return outputs, cells[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_c_last):
        x, w_ih, w_hh, h_0, c_0, outputs, joined, gates_all, cells, cell_outs = ctx.saved_tensors
        # The backward loop overwrites the saved gates with their gradients: a second pass would read those.
        if getattr(ctx, "gates_overwritten", False):
            raise RuntimeError("lstmae's fused LSTM layer allows one backward pass per forward pass (it reuses "
                               "its saved gates for the gradients): run the forward pass again instead of "
                               "backward(retain_graph=True)")
        ctx.gates_overwritten = True
        gradients = build.compiled().layer_backward(grad_outputs, grad_c_last, x, w_ih, w_hh, h_0, c_0, outputs,
                                                    joined, gates_all, cells, cell_outs, ctx.relu,
                                                    ctx.needs_input_grad[0], policy.onednn_min_flops(),
                                                    policy.step_tiles())
        return (*gradients, None, None)
