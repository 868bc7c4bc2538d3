"""The LSTM layer in PyTorch operations, with a hand-written backward pass.

`lstm_layer` computes the equations of `lstmae.nn.model.KerasLSTM` (nn.LSTM's when act = tanh):

    gates_t = x_t W^T + b + h_{t-1} U^T        (N, 4H), gate order i, f, g, o
    i, f, o = sigmoid(...);  g = act(...)
    c_t = f * c_{t-1} + i * g
    h_t = o * act(c_t)

It is the reference of the fused C++ layer (`lstmae.kernels`), which has the same call and
results, and runs where that layer does not (no compiler, LSTMAE_FUSED_KERNELS=0, not float32 on
the CPU). How it is laid out:

- The input projection is done step by step, not as one (N*L, I) x (I, 4H) product before the
  loop: that product writes an (N, L, 4H) tensor far larger than the cache, and reading it
  back step by step costs more than the one product saves. Per step, x_t W^T, h U^T and the
  gate math stay in cache; the backward pass also accumulates the weight gradients step by step.
- A constant input (the decoder's repeated code, x (N, I)) is projected once, not L times.
- The backward pass is written out: autograd would record about ten small operations per
  step and keep each one's inputs. Here the forward pass keeps only the activated gates, the
  cells and act(cells) of every step, and the backward pass walks the steps in reverse with
  in-place gate derivatives.
- tanh(x) is computed as 2 sigmoid(2x) - 1: torch.tanh is slower than torch.sigmoid on CPUs,
  and the identity is within 2e-7 of it in float32.
- Gates are kept in the order i, f, o, g (the weights' rows are reordered per call), so one
  sigmoid covers i, f and o (for tanh all four, g's rows doubled); views of every step are
  made before the loops, since Python slicing would cost microseconds per step.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..kernels.layer import ACTIVATIONS, layer_arguments, needs_graph

__all__ = ["ACTIVATIONS", "lstm_layer"]


def lstm_layer(x: torch.Tensor, input_weight: torch.Tensor, input_bias: torch.Tensor | None,
               recurrent_weight: torch.Tensor, activation: str = "tanh",
               state: tuple[torch.Tensor, torch.Tensor] | None = None, steps: int | None = None):
    """Run one LSTM layer over all steps; returns outputs (N, L, H) and the final (h_L, c_L).

    x: (N, L, I), or (N, I) fed at each of `steps` steps (the decoder's repeated code).
    input_weight: W (4H, I); input_bias: b (4H,) or None; recurrent_weight: U (4H, H); the
        weights of nn.Linear(I, 4H) and nn.Linear(H, 4H, bias=False), gate order i, f, g, o.
    activation: "tanh" or "relu", for the candidate g and for the cell output.
    state: the initial (h_0, c_0), each (N, H); zeros when None.
    """
    tensors, relu, length = layer_arguments(x, input_weight, input_bias, recurrent_weight, activation, state, steps)
    if needs_graph(tensors):
        outputs, c_last = _LSTMLayer.apply(*tensors, relu, length)
    else:
        outputs, _, cells, _ = _run_forward(*tensors, relu=relu, length=length, keep=False)
        c_last = cells[0]
    return outputs, (outputs[:, -1], c_last)


def _gate_views(gates: torch.Tensor):
    """Per-step views of gates (L, N, 4H) in the order i, f, o, g: lists (one item per step) of
    the whole (N, 4H), of the sigmoid block i|f|o (N, 3H), and of i, f, o and g (N, H)."""
    hidden = gates.shape[2] // 4
    blocks = [gates[..., k * hidden : (k + 1) * hidden].unbind(0) for k in range(4)]
    return (gates.unbind(0), gates[..., : 3 * hidden].unbind(0), *blocks)


def _run_forward(x, w_ih, b, w_hh, h_0, c_0, relu: bool, length: int, keep: bool):
    """The time loop, gates in the order i, f, o, g. Returns the outputs (N, L, H) and, when
    `keep`, the activated gates (L, N, 4H), the cells and act(cells) (L, N, H) of every step for
    the backward pass (else one step's buffers, reused)."""
    n, hidden = x.shape[0], w_hh.shape[1]
    if not relu:  # g = tanh(a) = 2 sigmoid(2a) - 1: double g's rows, then one sigmoid for all gates
        w_ih, b, w_hh = (torch.cat([w[: 3 * hidden], 2 * w[3 * hidden :]]) for w in (w_ih, b, w_hh))
    w_ih_t, w_hh_t = w_ih.t(), w_hh.t()
    gates_x = torch.addmm(b, x, w_ih_t) if x.dim() == 2 else None  # a constant input, projected once
    # One input feature: x_t W^T is an outer product, faster as addcmul than as an addmm of inner size 1.
    w_row = w_ih_t.contiguous() if x.shape[-1] == 1 else None
    x_steps = x.unbind(1) if gates_x is None else None
    saved = length if keep else 1
    outputs = x.new_empty(n, length, hidden)
    gates_all, cells, cell_outs = (x.new_empty(saved, n, 4 * hidden), x.new_empty(saved, n, hidden),
                                   x.new_empty(saved, n, hidden))
    gates_steps, sigmoid_steps, i_steps, f_steps, o_steps, g_steps = _gate_views(gates_all)
    cell_steps, cell_out_steps, output_steps = cells.unbind(0), cell_outs.unbind(0), outputs.unbind(1)
    h, c = h_0, c_0
    for t in range(length):
        k = t if keep else 0
        gates, cell, g = gates_steps[k], cell_steps[k], g_steps[k]
        if gates_x is None:
            if w_row is None:
                torch.addmm(b, x_steps[t], w_ih_t, out=gates)
            else:
                torch.addcmul(b, x_steps[t], w_row, out=gates)
            if h is not None:
                gates.addmm_(h, w_hh_t)
        elif h is None:
            gates.copy_(gates_x)
        else:  # one product reads the projected constant input: no copy of it per step
            torch.addmm(gates_x, h, w_hh_t, out=gates)
        if relu:
            sigmoid_steps[k].sigmoid_()
            g.relu_()
        else:
            gates.sigmoid_()
            g.mul_(2).sub_(1)
        if c is None:
            torch.mul(i_steps[k], g, out=cell)
        else:  # cell may be c itself (keep=False): elementwise, so safe
            torch.mul(f_steps[k], c, out=cell).addcmul_(i_steps[k], g)
        h = torch.mul(o_steps[k], _activate(cell, relu, out=cell_out_steps[k]), out=output_steps[t])
        c = cell
    return outputs, gates_all, cells, cell_outs


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_ih, b, w_hh, h_0, c_0, relu, length):
        outputs, gates_all, cells, cell_outs = _run_forward(x, w_ih, b, w_hh, h_0, c_0, relu, length, keep=True)
        ctx.relu = relu
        ctx.save_for_backward(x, w_ih, w_hh, h_0, c_0, outputs, gates_all, cells, cell_outs)
        return outputs, cells[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_c_last):
        x, w_ih, w_hh, h_0, c_0, outputs, gates_all, cells, cell_outs = ctx.saved_tensors
        relu, need_x = ctx.relu, ctx.needs_input_grad[0]
        length, n, four_h = gates_all.shape
        hidden = four_h // 4
        constant = x.dim() == 2
        grad_w_ih, grad_w_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        grad_x = x.new_empty(x.shape) if need_x and not constant else None
        grad_gates = x.new_empty(n, four_h)  # w.r.t. the gates before activation, order i, f, o, g
        grad_gates_sum = x.new_zeros(n, four_h)  # for the bias, and for a constant input
        d_sigmoid, d_i, d_f, d_o, d_g = grad_gates[:, : 3 * hidden], *grad_gates.chunk(4, dim=1)
        grad_h = grad_outputs[:, -1].clone()  # dLoss/dh_t: from grad_outputs and from step t+1
        grad_c = grad_c_last.clone()  # dLoss/dc_t
        scratch = x.new_empty(n, hidden)
        _, sigmoid_steps, i_steps, f_steps, o_steps, g_steps = _gate_views(gates_all)
        cell_steps, cell_out_steps = cells.unbind(0), cell_outs.unbind(0)
        output_steps, grad_output_steps = outputs.unbind(1), grad_outputs.unbind(1)
        x_steps = None if constant else x.unbind(1)
        grad_x_steps = None if grad_x is None else grad_x.unbind(1)
        for t in range(length - 1, -1, -1):
            i, f, o, g, cell_out = i_steps[t], f_steps[t], o_steps[t], g_steps[t], cell_out_steps[t]
            c_previous = cell_steps[t - 1] if t > 0 else c_0
            h_previous = output_steps[t - 1] if t > 0 else h_0
            # h = o * act(c)
            torch.mul(grad_h, cell_out, out=d_o)
            _activation_backward(torch.mul(grad_h, o, out=scratch), cell_out, relu)
            grad_c.add_(scratch)
            # c = f * c_previous + i * g
            torch.mul(grad_c, g, out=d_i)
            _activation_backward(torch.mul(grad_c, i, out=d_g), g, relu)
            if c_previous is None:
                d_f.zero_()
            else:
                torch.mul(grad_c, c_previous, out=d_f)
            _sigmoid_backward(d_sigmoid, sigmoid_steps[t])
            grad_c.mul_(f)
            # gates = x_t W^T + b + h_previous U^T
            grad_gates_sum.add_(grad_gates)
            if not constant:
                grad_w_ih.addmm_(grad_gates.t(), x_steps[t])
                if grad_x is not None:
                    torch.mm(grad_gates, w_ih, out=grad_x_steps[t])
            if h_previous is not None:
                grad_w_hh.addmm_(grad_gates.t(), h_previous)
                if t > 0:  # dLoss/dh_{t-1}
                    torch.addmm(grad_output_steps[t - 1], grad_gates, w_hh, out=grad_h)
                else:
                    torch.mm(grad_gates, w_hh, out=grad_h)
        if constant:
            grad_w_ih = grad_gates_sum.t() @ x
            grad_x = grad_gates_sum @ w_ih if need_x else None
        grad_h_0 = grad_h if h_0 is not None else None
        grad_c_0 = grad_c if c_0 is not None else None
        return grad_x, grad_w_ih, grad_gates_sum.sum(0), grad_w_hh, grad_h_0, grad_c_0, None, None


def _activate(x: torch.Tensor, relu: bool, out: torch.Tensor) -> torch.Tensor:
    """out = relu(x), or tanh(x) = 2 sigmoid(2x) - 1 (faster than torch.tanh on CPUs)."""
    if relu:
        return torch.clamp(x, min=0.0, out=out)  # relu has no out= variant
    return torch.mul(x, 2, out=out).sigmoid_().mul_(2).sub_(1)


def _sigmoid_backward(grad: torch.Tensor, activated: torch.Tensor) -> None:
    """grad *= y (1 - y) in place, y = sigmoid(x): one fused kernel."""
    torch.ops.aten.sigmoid_backward.grad_input(grad, activated, grad_input=grad)


def _activation_backward(grad: torch.Tensor, activated: torch.Tensor, relu: bool) -> None:
    """grad *= act'(x) in place, from y = act(x): tanh' = 1 - y^2, relu' = [y > 0]."""
    if relu:
        torch.ops.aten.threshold_backward.grad_input(grad, activated, 0.0, grad_input=grad)
    else:
        torch.ops.aten.tanh_backward.grad_input(grad, activated, grad_input=grad)
