"""The LSTM layers against independent references (an autograd loop and nn.LSTM): the PyTorch loop
lstmae.nn.fast_lstm.lstm_layer, and the fused C++ layer of lstmae.kernels against that loop."""
import json
import math
import types

import pytest
import torch

from lstmae import kernels
from lstmae.kernels import build, cpu, policy
from lstmae.kernels.layer import fused_lstm_layer, layer_arguments
from lstmae.nn.fast_lstm import lstm_layer


def reference_layer(x, w_ih, b, w_hh, activation, state=None, steps=None):
    """The LSTM equations as a plain autograd loop: outputs (N, L, H) and the final (h, c)."""
    act = torch.relu if activation == "relu" else torch.tanh
    if x.dim() == 2:
        x = x.unsqueeze(1).expand(-1, steps, -1)
    n, hidden = x.shape[0], w_hh.shape[1]
    h, c = state if state is not None else (x.new_zeros(n, hidden), x.new_zeros(n, hidden))
    outputs = []
    for x_t in x.unbind(1):
        i, f, g, o = (x_t @ w_ih.T + b + h @ w_hh.T).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * act(g)
        h = torch.sigmoid(o) * act(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), (h, c)


def random_layer(n=4, length=6, inputs=3, hidden=5, constant=False, with_state=False, dtype=torch.float64, seed=0):
    """Leaf tensors (x, W, b, U[, h0, c0]) with requires_grad, and the call's keyword arguments."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=dtype) * scale).requires_grad_()

    x = leaf(n, inputs) if constant else leaf(n, length, inputs)
    weights = [leaf(4 * hidden, inputs, scale=0.5), leaf(4 * hidden, scale=0.5), leaf(4 * hidden, hidden, scale=0.5)]
    state = (leaf(n, hidden), leaf(n, hidden)) if with_state else None
    return [x, *weights], state, (length if constant else None)


def loss_of(outputs, final, seed=1):
    """A random linear function of outputs and final (h, c), so that every gradient path counts."""
    gen = torch.Generator().manual_seed(seed)
    h, c = final
    return sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in (outputs, h, c))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_forward_and_gradients_match_the_autograd_loop(activation, constant, with_state):
    tensors, state, steps = random_layer(constant=constant, with_state=with_state)
    leaves = tensors + (list(state) if state else [])
    fast = lstm_layer(*tensors, activation=activation, state=state, steps=steps)
    reference = reference_layer(*tensors, activation, state=state, steps=steps)
    for got, expected in zip((fast[0], *fast[1]), (reference[0], *reference[1])):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
    fast_grads = torch.autograd.grad(loss_of(*fast), leaves)
    reference_grads = torch.autograd.grad(loss_of(*reference), leaves)
    for got, expected in zip(fast_grads, reference_grads):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("layer", ["pytorch", "fused"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_float32_matches_the_float32_autograd_loop_to_1e5(activation, layer):
    """Weights at nn.LSTM's init scale (1/sqrt(H)), 20 steps: values and gradients of order 1."""
    if layer == "fused" and kernels.compiled() is None:
        pytest.skip("the fused LSTM kernels could not be compiled here")
    run = fused_lstm_layer if layer == "fused" else lstm_layer
    tensors, state, _ = random_layer(n=8, length=20, inputs=4, hidden=16, with_state=True, dtype=torch.float32)
    with torch.no_grad():
        for weight in tensors[1:]:
            weight.mul_(2 / 16**0.5)
    leaves = tensors + list(state)
    fast = run(*tensors, activation=activation, state=state)
    reference = reference_layer(*tensors, activation, state=state)
    torch.testing.assert_close(fast[0], reference[0], atol=1e-5, rtol=1e-5)
    fast_grads = torch.autograd.grad(loss_of(*fast), leaves)
    reference_grads = torch.autograd.grad(loss_of(*reference), leaves)
    for got, expected in zip(fast_grads, reference_grads):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_tanh_matches_nn_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 5, batch_first=True).double()
    x = torch.randn(4, 9, 3, dtype=torch.float64, requires_grad=True)
    expected, (h_n, c_n) = lstm(x)
    outputs, (h, c) = lstm_layer(x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0, lstm.weight_hh_l0, "tanh")
    torch.testing.assert_close(outputs, expected, atol=1e-10, rtol=0)
    torch.testing.assert_close((h, c), (h_n[0], c_n[0]), atol=1e-10, rtol=0)
    weights = [x, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0]
    got = torch.autograd.grad(loss_of(outputs, (h, c)), weights)
    want = torch.autograd.grad(loss_of(expected, (h_n[0], c_n[0])), weights)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_no_grad_path_equals_the_training_path():
    tensors, state, _ = random_layer(with_state=True)
    with_graph = lstm_layer(*tensors, activation="relu", state=state)
    with torch.inference_mode():
        without = lstm_layer(*tensors, activation="relu", state=state)
    for got, expected in zip((without[0], *without[1]), (with_graph[0], *with_graph[1])):
        torch.testing.assert_close(got, expected.detach(), atol=0, rtol=0)


def test_gradcheck_with_frozen_input():
    """Finite differences; x without requires_grad (data) gets no gradient and costs none."""
    (x, w_ih, b, w_hh), state, _ = random_layer(n=2, length=3, inputs=2, hidden=2, with_state=True)
    x = x.detach()
    assert torch.autograd.gradcheck(
        lambda *t: lstm_layer(x, *t[:3], activation="tanh", state=tuple(t[3:]))[0], (w_ih, b, w_hh, *state))


def test_bias_may_be_none():
    (x, w_ih, _, w_hh), _, _ = random_layer()
    outputs, _ = lstm_layer(x, w_ih, None, w_hh, "tanh")
    torch.testing.assert_close(outputs, reference_layer(x, w_ih, torch.zeros(w_ih.shape[0], dtype=x.dtype), w_hh,
                                                        "tanh")[0])


def test_bad_calls_raise_with_the_fix():
    (x, w_ih, b, w_hh), _, _ = random_layer()
    with pytest.raises(ValueError, match="activation must be one of"):
        lstm_layer(x, w_ih, b, w_hh, "sigmoid")
    with pytest.raises(ValueError, match=r"expected input_weight \(4H, I\)"):
        lstm_layer(x, w_ih[:, :2], b, w_hh, "tanh")
    with pytest.raises(ValueError, match="steps="):
        lstm_layer(x[:, 0], w_ih, b, w_hh, "tanh")
    with pytest.raises(ValueError, match=r"expected x \(N, L, I\) or \(N, I\)"):
        lstm_layer(x[None], w_ih, b, w_hh, "tanh")


def nn_lstm_reference(layer, x, steps, state):
    """nn.LSTM's own forward with the layer's weights: outputs (N, L, H), (h, c) (N, H)."""
    x = x.unsqueeze(1).expand(-1, steps, -1) if x.dim() == 2 else x
    outputs, (h_n, c_n) = torch.nn.LSTM.forward(layer, x, (state[0][None], state[1][None]))
    return outputs, (h_n[0], c_n[0])


@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
def test_tanh_layer_scores_with_lstm_layer_and_matches_nn_lstm(constant, monkeypatch):
    """TanhLSTM runs model.lstm_layer without gradients on the CPU; its results are nn.LSTM's."""
    from lstmae.nn import model

    torch.manual_seed(0)
    layer = model.TanhLSTM(3, 5)
    x = torch.randn(4, 3) if constant else torch.randn(4, 7, 3)
    state = (torch.randn(4, 5), torch.randn(4, 5))
    expected, (h_n, c_n) = nn_lstm_reference(layer, x, 7, state)
    calls, original = [], model.lstm_layer
    monkeypatch.setattr(model, "lstm_layer", lambda *a, **k: calls.append(1) or original(*a, **k))
    with torch.inference_mode():
        got, (h, c) = layer.forward_state(x, steps=7, state=state)
    assert calls, "inference on the CPU should take the lstm_layer path"
    torch.testing.assert_close(got, expected.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close((h, c), (h_n.detach(), c_n.detach()), atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ the fused C++ gate kernels
@pytest.fixture
def compiled():
    """The compiled kernels (compiled here on first use, about a minute); skip where no compiler is."""
    module = kernels.compiled()
    if module is None:
        pytest.skip("the fused LSTM kernels could not be compiled here")
    return module


@pytest.fixture
def fresh_kernel_cache():
    """compiled() caches its answer per process: clear it around a test that changes it."""
    build.compiled.cache_clear()
    yield
    build.compiled.cache_clear()


def fused_and_pytorch_runs(tensors, state, steps, activation, leaves):
    """Outputs, final (h, c), scores (inference mode) and gradients, from the fused layer and
    from the PyTorch loop."""
    runs = []
    for layer in (fused_lstm_layer, lstm_layer):
        outputs, final = layer(*tensors, activation=activation, state=state, steps=steps)
        with torch.inference_mode():
            scored = layer(*tensors, activation=activation, state=state, steps=steps)
        runs.append((outputs, *final, scored[0], *scored[1], *torch.autograd.grad(loss_of(outputs, final), leaves)))
    return runs


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("inputs", [1, 3])
@pytest.mark.parametrize("frozen_x", [False, True], ids=["x-grad", "x-frozen"])
def test_fused_kernels_give_the_pytorch_operations_results(compiled, activation, constant, with_state,
                                                           inputs, frozen_x):
    tensors, state, steps = random_layer(n=6, length=9, inputs=inputs, hidden=8, constant=constant,
                                         with_state=with_state, dtype=torch.float32)
    if frozen_x:  # data, as the first layer sees it: no gradient wanted
        tensors[0] = tensors[0].detach()
    leaves = tensors[frozen_x:] + (list(state) if state else [])
    runs = fused_and_pytorch_runs(tensors, state, steps, activation, leaves)
    for fused, pytorch in zip(*runs):  # float32 sums in another order: gradients of ~1 differ by ~1e-5
        torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)


def test_scoring_reuses_the_reordered_weights_until_they_change(compiled):
    tensors, _, _ = random_layer(n=2, length=5, inputs=3, hidden=4, constant=False, with_state=False,
                                 dtype=torch.float32)
    x, w_ih, b, w_hh = (t.detach() for t in tensors)
    with torch.no_grad():
        first = fused_lstm_layer(x, w_ih, b, w_hh)[0]
        cached = getattr(w_ih, "_lstmae_gate_order_cache")[1]
        assert fused_lstm_layer(x, w_ih, b, w_hh)[0].equal(first)
        assert getattr(w_ih, "_lstmae_gate_order_cache")[1] is cached  # not reordered again
        w_hh.mul_(0.5)  # an in-place change, as an optimizer step makes: the cache must not serve it
        changed = fused_lstm_layer(x, w_ih, b, w_hh)[0]
    torch.testing.assert_close(changed, lstm_layer(x, w_ih, b, w_hh)[0], atol=1e-5, rtol=1e-5)
    assert not changed.equal(first)


def test_fused_kernels_flush_denormals_on_every_thread_when_asked(compiled):
    """Forget gate 1, input gate 0: a denormal c_0 carries over. With the caller's flush setting
    every block of rows reads it as 0 (denormal arithmetic is ~100x slower); without, it stays."""
    n, hidden = 37, 4
    bias = torch.zeros(4 * hidden)
    bias[:hidden], bias[hidden : 2 * hidden], bias[3 * hidden :] = -100.0, 100.0, 100.0  # i, f, o
    state = (torch.zeros(n, hidden), torch.full((n, hidden), 1e-39))
    tensors = (torch.zeros(n, 3, 2), torch.zeros(4 * hidden, 2), bias, torch.zeros(4 * hidden, hidden))
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        kept_before = fused_lstm_layer(*tensors, activation="relu", state=state)[0]  # starts the worker threads
        if not torch.set_flush_denormal(True):
            pytest.skip("this CPU cannot flush denormals")
        flushed = fused_lstm_layer(*tensors, activation="relu", state=state)[0]
        torch.set_flush_denormal(False)
        kept = fused_lstm_layer(*tensors, activation="relu", state=state)[0]
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)
    assert torch.equal(flushed, torch.zeros_like(flushed))
    for outputs in (kept_before, kept):
        torch.testing.assert_close(outputs, torch.full_like(outputs, 1e-39), atol=1e-45, rtol=1e-6)


def test_fused_gate_functions_are_accurate_to_float32(compiled):
    """One step with every pre-activation equal to a: c = sigmoid(a) tanh(a) and
    h = sigmoid(a) tanh(c), against float64 (the kernels compute exp themselves)."""
    a = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    x = a.float().reshape(-1, 1, 1)
    outputs, (h, c) = fused_lstm_layer(x, torch.ones(4, 1), None, torch.zeros(4, 1), activation="tanh")
    expected_c = torch.sigmoid(a) * torch.tanh(a)
    torch.testing.assert_close(c.double().flatten(), expected_c, atol=3e-7, rtol=0)
    torch.testing.assert_close(h.double().flatten(), torch.sigmoid(a) * torch.tanh(expected_c), atol=3e-7, rtol=0)


@pytest.mark.parametrize("length", [1, 2])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_fused_kernels_handle_one_and_two_steps(compiled, length, with_state):
    """The recurrent weight's gradient is one product over steps 1..L-1 plus step 0's (h_0)."""
    tensors, state, _ = random_layer(n=3, length=length, inputs=2, hidden=4, with_state=with_state,
                                     dtype=torch.float32)
    leaves = tensors + (list(state) if state else [])
    runs = []
    for layer in (fused_lstm_layer, lstm_layer):
        outputs, final = layer(*tensors, activation="tanh", state=state)
        runs.append(torch.autograd.grad(loss_of(outputs, final), leaves))
    for fused, pytorch in zip(*runs):
        torch.testing.assert_close(fused, pytorch, atol=1e-5, rtol=1e-5)


def test_a_second_backward_pass_through_the_fused_layer_is_refused(compiled):
    """The C++ backward writes the gradients over its saved gates: a second pass would read them."""
    tensors, _, _ = random_layer(dtype=torch.float32)
    outputs, _ = fused_lstm_layer(*tensors, activation="relu")
    loss = outputs.square().sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match=r"one backward pass per forward pass .* run the forward pass again"):
        loss.backward()


def test_tanh_layer_trains_small_batches_through_nn_lstm_and_large_ones_fused(compiled, monkeypatch):
    """See TanhLSTM: the fused layer trains from model.FUSED_TRAINING_BATCH sequences of
    model.FUSED_TRAINING_STEPS steps on (for the repeated code, `steps` is the length)."""
    from lstmae.nn import model

    layer = model.TanhLSTM(3, 5)
    calls, original = [], model.lstm_layer
    monkeypatch.setattr(model, "lstm_layer", lambda *a, **k: calls.append(1) or original(*a, **k))
    length = model.FUSED_TRAINING_STEPS
    small = torch.randn(model.FUSED_TRAINING_BATCH - 1, length, 3)
    layer(small).sum().backward()
    assert not calls and layer.weight_hh_l0.grad is not None
    short = torch.randn(model.FUSED_TRAINING_BATCH, length - 1, 3)
    layer(short).sum().backward()
    layer(short[:, 0], steps=length - 1).sum().backward()
    assert not calls
    layer(short[:, 0], steps=length)
    assert calls
    calls.clear()
    large = torch.randn(model.FUSED_TRAINING_BATCH, length, 3)
    outputs = layer(large)
    assert calls
    outputs.sum().backward()
    monkeypatch.setattr(model, "FUSED_TRAINING_BATCH", 10**9)  # the same batch through nn.LSTM
    reference = layer(large)
    torch.testing.assert_close(outputs, reference, atol=1e-5, rtol=1e-5)
    monkeypatch.setattr(kernels, "fused_layer_for", lambda x: None)
    monkeypatch.setattr(model, "FUSED_TRAINING_BATCH", 1)
    calls.clear()
    layer(large)  # no compiled kernels: nn.LSTM, not the slower PyTorch loop
    assert not calls


def test_without_a_compiler_the_layers_warn_and_use_pytorch(fresh_kernel_cache, monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    from lstmae.nn import model

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension: c++: command not found\nmore detail")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # no earlier build to load
    monkeypatch.delenv("LSTMAE_FUSED_KERNELS", raising=False)
    with pytest.warns(UserWarning, match=r"could not compile the fused LSTM kernels \(Error building extension: "
                                         r"c\+\+: command not found\); using PyTorch operations"):
        assert kernels.compiled() is None
    tensors, _, _ = random_layer(dtype=torch.float32)
    assert kernels.fused_layer_for(tensors[0]) is None
    outputs, _ = model.lstm_layer(*tensors, activation="tanh")
    torch.testing.assert_close(outputs, reference_layer(*tensors, "tanh")[0], atol=1e-5, rtol=1e-5)


def test_kernels_can_be_switched_off(fresh_kernel_cache, monkeypatch):
    monkeypatch.setenv("LSTMAE_FUSED_KERNELS", "0")
    assert kernels.compiled() is None
    assert kernels.fused_layer_for(torch.zeros(2, 3, 1)) is None


def test_the_fused_layer_serves_float32_on_the_cpu_only(compiled):
    assert kernels.fused_layer_for(torch.zeros(2, 3, 1)) is fused_lstm_layer
    assert kernels.fused_layer_for(torch.zeros(2, 3, 1, dtype=torch.float64)) is None
    assert kernels.fused_layer_for(torch.zeros(2, 3, 1, device="meta")) is None


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fused_kernels_saturate_without_nan(compiled, activation):
    """Pre-activations of +-1e4: the gates are exactly 0 or 1, as in PyTorch."""
    tensors, state, _ = random_layer(n=6, length=9, inputs=2, hidden=8, with_state=True, dtype=torch.float32)
    with torch.no_grad():
        tensors = [t * 1e4 for t in tensors]
    fused = fused_lstm_layer(*tensors, activation=activation, state=state)[0]
    pytorch = lstm_layer(*tensors, activation=activation, state=state)[0]
    assert torch.isfinite(pytorch).all()
    torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)


def non_finite_layer(inputs, constant, with_state, seed=0):
    """A layer of 37 rows, 6 steps, whose inputs hold NaN, +-inf and values that overflow float32
    in the products (1e38 times input weights of 4 and more), each in some rows and (for a
    sequence) at step 2 only, beside ordinary rows; the weights are finite."""
    gen = torch.Generator().manual_seed(seed)
    n, length, hidden = 37, 6, 8
    x = torch.randn(n, inputs, generator=gen) if constant else torch.randn(n, length, inputs, generator=gen)
    steps = () if constant else (2,)  # a sequence: at step 2 only (the later ones see it through h and c)
    x[(slice(0, 4), *steps)] = float("nan")
    x[(slice(4, 8), *steps)] = float("inf")
    x[(slice(8, 12), *steps)] = float("-inf")
    x[(slice(12, 16), *steps)] = 1e38
    x[(slice(16, 18), *steps, 0)] = float("nan")  # one input feature only
    x[(slice(18, 20), *steps, 0)] = float("inf")
    weights = [torch.randn(4 * hidden, inputs, generator=gen) * 0.5, torch.randn(4 * hidden, generator=gen) * 0.5,
               torch.randn(4 * hidden, hidden, generator=gen) * 0.5]
    # |w| >= 4: each product of 1e38 overflows to +-inf itself, so the sums do not depend on their
    # order (a sum of finite values that overflows in one order may not in another)
    weights[0] = weights[0].sign() * (weights[0].abs() + 4)
    state = (torch.randn(n, hidden, generator=gen), torch.randn(n, hidden, generator=gen)) if with_state else None
    return [x, *weights], state, (length if constant else None)


@pytest.mark.parametrize("choice", ["tiles", "onednn", "blas"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("inputs", [1, 3])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("grad", [False, True], ids=["scoring", "training"])
def test_nan_inf_and_overflow_propagate_as_in_the_pytorch_loop(compiled, matmul_choice, choice, activation, constant,
                                                               inputs, with_state, grad):
    """NaN and inf inputs and overflowing products come out of the fused layer where and as they
    come out of the PyTorch loop (the kernels are built without -ffast-math, which lets the
    compiler assume finite values): the same NaN positions, the same infinities, the finite
    values close; and ordinary rows stay finite."""
    matmul_choice(choice)
    tensors, state, steps = non_finite_layer(inputs, constant, with_state)
    if grad:
        tensors = [t.requires_grad_() for t in tensors]
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with torch.set_grad_enabled(grad):
            fused = fused_lstm_layer(*tensors, activation=activation, state=state, steps=steps)
            pytorch = lstm_layer(*tensors, activation=activation, state=state, steps=steps)
    finally:
        torch.set_num_threads(threads)
    for got, expected in zip((fused[0], *fused[1]), (pytorch[0], *pytorch[1])):
        got, expected = got.detach(), expected.detach()
        assert torch.equal(got.isnan(), expected.isnan())
        assert torch.equal(got.isposinf(), expected.isposinf()) and torch.equal(got.isneginf(), expected.isneginf())
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4, equal_nan=True)
    outputs = fused[0].detach()
    assert outputs[:16].isnan().any()  # the test has teeth: NaN comes out ...
    assert torch.isfinite(outputs[20:]).all()  # ... of the rows that hold it only
    if activation == "relu" and not constant:
        assert outputs.isinf().any()  # relu passes the overflow on


def test_the_kernels_are_built_without_finite_math():
    assert not {"-ffast-math", "-ffinite-math-only", "-Ofast"} & set(build.COMPILE_FLAGS)


# ------------------------------------------------------------------ the build: keyed, announced
def test_the_build_key_changes_with_everything_that_makes_a_binary_incompatible(monkeypatch):
    """Source, torch version, Python ABI, compiler flags and CPU each give another build name;
    the same inputs give the same name."""
    source = build.SOURCE.read_bytes()
    base = build.build_name(build.build_key(source))
    assert base == build.build_name(build.build_key(source)) and base.startswith("lstmae_fused_gates_")
    names = {"source": build.build_name(build.build_key(source + b"\n// changed"))}
    with monkeypatch.context() as patch:
        patch.setattr(torch, "__version__", "9.9.9+cpu")
        names["torch"] = build.build_name(build.build_key(source))
    with monkeypatch.context() as patch:
        patch.setattr(build, "python_abi", lambda: "cpython-312-x86_64-linux-gnu")
        names["python"] = build.build_name(build.build_key(source))
    with monkeypatch.context() as patch:
        patch.setattr(build, "COMPILE_FLAGS", (*build.COMPILE_FLAGS, "-DEXTRA"))
        names["flags"] = build.build_name(build.build_key(source))
    with monkeypatch.context() as patch:
        patch.setattr(cpu, "instruction_set_tag", lambda: "0123abcd")
        names["cpu"] = build.build_name(build.build_key(source))
    assert base not in names.values() and len(set(names.values())) == len(names)
    assert build.python_abi() and len(cpu.instruction_set_tag()) == 8


@pytest.fixture
def fake_compiler(fresh_kernel_cache, monkeypatch, tmp_path):
    """Builds go to tmp_path; compiling writes an empty library and returns a stand-in module;
    importing a recorded build returns ("imported", its library). Returns the compiled names."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.delenv("LSTMAE_FUSED_KERNELS", raising=False)
    compiled_names = []

    def compile_(name, directory):
        compiled_names.append(name)
        (directory / f"{name}.so").touch()
        return types.SimpleNamespace(__file__=str(directory / f"{name}.so"))

    monkeypatch.setattr(build, "_compile", compile_)
    monkeypatch.setattr(build, "_import_built", lambda name, library: ("imported", library))
    return compiled_names


def announcements(caplog):
    return [r.getMessage() for r in caplog.records if "compiling the fused LSTM kernels" in r.getMessage()]


def test_every_build_is_announced_with_its_reason_and_a_recorded_one_is_loaded(fake_compiler, monkeypatch, tmp_path,
                                                                               caplog):
    caplog.set_level("WARNING", logger="lstmae.kernels.build")
    real_key, real_version = build.build_key, torch.__version__
    module = kernels.compiled()
    [first] = fake_compiler
    assert module.__file__ == str(tmp_path / "lstmae" / first / f"{first}.so")
    assert announcements(caplog) == [f"lstmae: compiling the fused LSTM kernels into {tmp_path / 'lstmae' / first} "
                                     "(no earlier build here); this takes a minute or so, once per key"]
    record = json.loads((tmp_path / "lstmae" / first / build.BUILD_RECORD).read_text())
    assert record == {"key": build.build_key(), "library": f"{first}.so"}

    build.compiled.cache_clear()  # another process, the same key: loaded, not compiled, not announced
    caplog.clear()
    assert kernels.compiled() == ("imported", tmp_path / "lstmae" / first / f"{first}.so")
    assert fake_compiler == [first] and not announcements(caplog)

    build.compiled.cache_clear()  # another environment: another torch
    monkeypatch.setattr(torch, "__version__", "9.9.9+cpu")
    kernels.compiled()
    assert len(fake_compiler) == 2 and fake_compiler[1] != first
    [message] = announcements(caplog)
    assert f"(no build for this key: torch 9.9.9+cpu (the nearest build has {record['key']['torch']}))" in message

    build.compiled.cache_clear()  # and the source changed too: told against the nearest build
    caplog.clear()
    monkeypatch.setattr(build, "build_key", lambda real=build.build_key: {**real(), "source": "0" * 16})
    kernels.compiled()
    [message] = announcements(caplog)
    assert "(no build for this key: the source changed)" in message and len(fake_compiler) == 3

    build.compiled.cache_clear()  # back to the first key: its build is still there
    monkeypatch.setattr(build, "build_key", real_key)
    monkeypatch.setattr(torch, "__version__", real_version)
    assert kernels.compiled() == ("imported", tmp_path / "lstmae" / first / f"{first}.so")
    assert len(fake_compiler) == 3


def test_a_build_that_cannot_be_loaded_is_rebuilt_and_says_why(fake_compiler, monkeypatch, tmp_path, caplog):
    caplog.set_level("WARNING", logger="lstmae.kernels.build")
    kernels.compiled()
    build.compiled.cache_clear()
    caplog.clear()

    def broken(name, library):
        raise ImportError(f"{library}: invalid ELF header\nmore")

    monkeypatch.setattr(build, "_import_built", broken)
    kernels.compiled()
    [message] = announcements(caplog)
    assert "(the build there could not be loaded: " in message and "invalid ELF header)" in message
    assert len(fake_compiler) == 2 and fake_compiler[0] == fake_compiler[1]


def test_a_recorded_build_is_imported_from_its_library(compiled):
    """The real import path of a recorded build (what every process after the first one takes)."""
    name = build.build_name(build.build_key())
    directory = build.builds_root() / name
    record = json.loads((directory / build.BUILD_RECORD).read_text())
    module = build._import_built(name, directory / record["library"])
    assert callable(module.layer_forward) and callable(module.layer_backward) and hasattr(module, "tiles_pay")


# ------------------------------------------------------------------ products: oneDNN or the BLAS
@pytest.fixture
def matmul_choice(monkeypatch):
    """Set LSTMAE_MATMUL for one test; matmul_policy() caches its answer, so clear it around."""
    policy.matmul_policy.cache_clear()

    def choose(value):
        monkeypatch.setenv("LSTMAE_MATMUL", value)
        policy.matmul_policy.cache_clear()
        if value == "onednn" and policy.matmul_policy() != "onednn":
            pytest.skip("torch has no oneDNN here")

    yield choose
    policy.matmul_policy.cache_clear()


@pytest.mark.parametrize("choice, hidden", [("onednn", 8), ("blas", 8), ("tiles", 5), ("tiles", 8), ("tiles", 32)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("inputs", [1, 3])
@pytest.mark.parametrize("length", [1, 11])
def test_fused_kernels_split_rows_between_threads_and_match_pytorch_with_each_matmul(
        compiled, matmul_choice, choice, hidden, activation, constant, inputs, length):
    """37 rows on 3 threads (blocks of 13, 13 and 11 rows, each running all steps on its own
    thread, in the caller's grad mode for training and inference mode for scoring), with a given
    state: oneDNN's products (new tensors, read by the gate pass), the BLAS's (written into the
    gates) and the tiles' (hidden 5: 4H and H padded to 32; hidden 8: 4H = 32 forward, H padded
    backward; hidden 32: no padding; 13 and 11 rows: a tile of 8 rows and one of 5 or 3) give
    the PyTorch loop's results. One step: the recurrent weight's gradient is a product over no
    rows."""
    matmul_choice(choice)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        tensors, state, steps = random_layer(n=37, length=length, inputs=inputs, hidden=hidden, constant=constant,
                                             with_state=True, dtype=torch.float32)
        # weights of 0.25 at hidden 8, smaller for more units: relu over 11 steps stays of order 1
        # (at 0.5 it grew to ~1e5)
        with torch.no_grad():
            for weight in tensors[1:]:
                weight.mul_(0.5 * (8 / hidden) ** 0.5)
        runs = fused_and_pytorch_runs(tensors, state, steps, activation, tensors + list(state))
    finally:
        torch.set_num_threads(threads)
    for fused, pytorch in zip(*runs):
        torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)


def test_the_products_go_through_the_chosen_library(compiled, matmul_choice):
    """LSTMAE_MATMUL=onednn trains and scores through mkldnn::_linear_pointwise, =blas through aten::mm."""
    tensors, _, _ = random_layer(n=8, length=5, inputs=3, hidden=4, dtype=torch.float32)

    def ops_called(training):
        with torch.profiler.profile() as profile:
            if training:
                fused_lstm_layer(*tensors, activation="tanh")[0].sum().backward()
            else:
                with torch.inference_mode():
                    fused_lstm_layer(*tensors, activation="tanh")
        return {event.key for event in profile.key_averages()}

    for training in (False, True):
        matmul_choice("blas")
        assert "aten::mm" in ops_called(training) and "mkldnn::_linear_pointwise" not in ops_called(training)
        matmul_choice("onednn")
        assert "mkldnn::_linear_pointwise" in ops_called(training)


def test_training_reuses_the_saved_buffers_once_their_backward_pass_is_done(compiled):
    """While a step's graph is alive its saved gates and cells are not handed out again (a second
    forward pass must not write over them); once its backward pass is done, the next step gets
    the same memory (no new pages to fault in) and computes the right outputs in it."""
    tensors, _, _ = random_layer(n=8, length=5, inputs=3, hidden=4, dtype=torch.float32)

    def saved_pointers(outputs):  # the gates, cells and act(cells) of every step
        return {t.data_ptr() for t in outputs.grad_fn.saved_tensors[-3:]}

    first = fused_lstm_layer(*tensors, activation="relu")[0]
    first_pointers = saved_pointers(first)
    alive = fused_lstm_layer(*tensors, activation="relu")[0]
    assert not first_pointers & saved_pointers(alive)  # both graphs alive: separate memory
    first_shapes = [t.shape for t in first.grad_fn.saved_tensors[-3:]]
    first.sum().backward()
    del first
    # Fresh allocations of the same sizes would take blocks malloc just got back; they cannot
    # take the pool's, which it never gives back.
    blockers = [torch.empty(shape) for shape in first_shapes]
    again = fused_lstm_layer(*tensors, activation="relu")[0]
    assert saved_pointers(again) == first_pointers
    assert not first_pointers & {t.data_ptr() for t in blockers}
    reference = reference_layer(*[t.detach() for t in tensors], "relu")[0]
    torch.testing.assert_close(again.detach(), reference, atol=1e-5, rtol=1e-5)


def test_outputs_are_handed_out_again_only_once_nobody_holds_them(compiled):
    """The layer's outputs come from the same pool: while the caller holds them (or a view, such
    as h_L) a second call writes elsewhere; once they are dropped, the next call of that shape
    gets their memory and computes the right outputs in it."""
    tensors, _, _ = random_layer(n=8, length=5, inputs=3, hidden=4, dtype=torch.float32)
    doubled = [tensors[0] * 2, *tensors[1:]]
    with torch.inference_mode():
        first, (h_last, _) = fused_lstm_layer(*tensors, activation="tanh")
        expected = first.clone()
        second = fused_lstm_layer(*doubled, activation="tanh")[0]
        assert second.data_ptr() != first.data_ptr()
        torch.testing.assert_close(first, expected, atol=0, rtol=0)
        first_pointer = first.data_ptr()
        del first
        third = fused_lstm_layer(*doubled, activation="tanh")[0]  # h_last still holds the first outputs
        assert third.data_ptr() not in (second.data_ptr(), first_pointer)
        freed = second.data_ptr()
        del second
        blocker = torch.empty(third.shape)  # a fresh allocation would take what malloc just got back
        again = fused_lstm_layer(*tensors, activation="tanh")[0]
    assert again.data_ptr() == freed and blocker.data_ptr() != freed
    torch.testing.assert_close(again, expected, atol=0, rtol=0)


@pytest.mark.parametrize("vendor, machine, expected", [
    ("AuthenticAMD", "x86_64", "tiles"),  # MKL runs its AVX2 kernels there
    ("GenuineIntel", "x86_64", "blas"),
    ("", "arm64", "blas"),
])
def test_the_default_matmul_follows_the_cpu_maker(matmul_choice, monkeypatch, vendor, machine, expected):
    monkeypatch.delenv("LSTMAE_MATMUL", raising=False)
    monkeypatch.setattr(cpu, "vendor", lambda: vendor)
    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    monkeypatch.setattr(policy, "onednn_available", lambda: True)
    assert policy.matmul_policy() == expected
    monkeypatch.setattr(policy, "onednn_available", lambda: False)  # a torch without oneDNN: the tiles need none
    policy.matmul_policy.cache_clear()
    assert policy.matmul_policy() == expected and policy.onednn_min_flops() == math.inf


def test_a_bad_matmul_choice_names_the_choices(matmul_choice):
    matmul_choice("cublas")
    with pytest.raises(ValueError, match=r"LSTMAE_MATMUL must be one of \('tiles', 'onednn', 'blas'\) or unset, "
                                         r"got 'cublas'"):
        policy.matmul_policy()


@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
def test_the_tiles_run_each_steps_products_without_a_library_call(compiled, matmul_choice, constant):
    """Scoring a 32-unit layer with the tiles: no per-step product goes through oneDNN or the
    BLAS (a repeated input is projected once, by one addmm)."""
    if not getattr(compiled, "tiles_pay", False):
        pytest.skip("the kernels were built without AVX-512: no tiles")
    matmul_choice("tiles")
    tensors, _, steps = random_layer(n=16, length=7, inputs=3, hidden=32, constant=constant, dtype=torch.float32)
    with torch.profiler.profile() as profile, torch.inference_mode():
        fused_lstm_layer(*tensors, activation="tanh", steps=steps)
    products = [(event.key, event.count) for event in profile.key_averages()
                if event.key in ("aten::mm", "aten::addmm", "mkldnn::_linear_pointwise")]
    assert products == ([("aten::addmm", 1)] if constant else [])


def test_the_cpu_vendor_is_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n")
    assert cpu.vendor(cpuinfo) == "AuthenticAMD"
    cpuinfo.unlink()
    assert cpu.vendor(cpuinfo) == ""


def onednn_calls(x, hidden, training):
    """How many products one relu layer call (5 steps, two threads) sends through oneDNN."""
    weights = (torch.randn(4 * hidden, x.shape[-1], requires_grad=True), None,
               torch.randn(4 * hidden, hidden, requires_grad=True))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.profiler.profile() as profile:
            if training:
                fused_lstm_layer(x, *weights, activation="relu", steps=5)[0].sum().backward()
            else:
                with torch.inference_mode():
                    fused_lstm_layer(x, *weights, activation="relu", steps=5)
    finally:
        torch.set_num_threads(threads)
    return sum(event.count for event in profile.key_averages() if event.key == "mkldnn::_linear_pointwise")


@pytest.mark.parametrize("shape, hidden, expected", [
    ((128, 5, 64), 64, True),   # 64 rows a thread on two threads: 2 x 64 x (64 + 64) x 256 = 4.2 MFLOP a step
    ((128, 5, 1), 64, False),   # one input feature is no product: 2.1 MFLOP
    ((32, 5, 64), 64, False),   # 16 rows a thread: 1.0 MFLOP
    ((128, 64), 64, False),     # a repeated code: only h U^T, 2.1 MFLOP
])
def test_by_default_only_large_step_products_go_through_onednn(compiled, monkeypatch, shape, hidden, expected):
    """With the default policy on CPUs where MKL lacks AVX-512 ("tiles") but no tiles (built
    without AVX-512), a layer's steps go through oneDNN when one step's products on one thread's
    rows reach ONEDNN_MIN_FLOPS."""
    if not policy.onednn_available():
        pytest.skip("torch has no oneDNN here")
    monkeypatch.setattr(policy, "matmul_policy", lambda: "tiles")
    monkeypatch.setattr(policy, "step_tiles", lambda: False)
    assert (onednn_calls(torch.randn(shape), hidden, training=False) > 0) is expected


@pytest.mark.parametrize("n, hidden, expected", [(128, 64, True), (4, 4, False)])
def test_products_after_the_loop_go_through_onednn_by_their_own_size(compiled, monkeypatch, n, hidden, expected):
    """A repeated code of 128 rows: its steps are too small for oneDNN (2.1 MFLOP a step and
    thread), its recurrent weight's gradient over all 5 x 128 rows is not (21 MFLOP); 4 rows of
    4 units: neither."""
    if not policy.onednn_available():
        pytest.skip("torch has no oneDNN here")
    monkeypatch.setattr(policy, "matmul_policy", lambda: "tiles")
    monkeypatch.setattr(policy, "step_tiles", lambda: False)
    assert onednn_calls(torch.randn(n, 64), hidden, training=False) == 0
    assert (onednn_calls(torch.randn(n, 64), hidden, training=True) > 0) is expected


@pytest.mark.parametrize("hidden", [5, 16, 40], ids=["4H=20", "4H=64", "4H=160"])
def test_row_products_read_panels_of_u_and_refuse_others(compiled, matmul_choice, hidden):
    """The one-row products read U^T in panels of 64 columns (zeros past 4H); scoring keeps them
    beside U and remakes them when U changes in place; panels of another shape are refused."""
    matmul_choice("blas")
    u = torch.randn(4 * hidden, hidden)
    panels = compiled.recurrent_panels(u)
    count = -(-4 * hidden // 64)
    assert panels.shape == (count, hidden, 64) and panels.is_contiguous()
    torch.testing.assert_close(torch.cat(list(panels), dim=1)[:, : 4 * hidden], u.t(), rtol=0, atol=0)
    assert not torch.cat(list(panels), dim=1)[:, 4 * hidden:].any()
    x, w, b = torch.randn(1, 6, 3), torch.randn(4 * hidden, 3) * 0.3, torch.randn(4 * hidden) * 0.3
    u.mul_(0.3)
    def kept_panels():
        reordered = layer_arguments(x, w, b, u, "tanh", None, None)[0][3]
        return getattr(reordered, "_lstmae_panels")[1]

    with torch.no_grad():
        before = fused_lstm_layer(x, w, b, u)[0]
        torch.testing.assert_close(before, lstm_layer(x, w, b, u)[0], atol=1e-5, rtol=1e-5)
        first = kept_panels()
        fused_lstm_layer(x, w, b, u)
        assert kept_panels() is first  # kept, not made on every call
        u.mul_(-1)  # an in-place change: the kept panels must not serve the new U
        torch.testing.assert_close(fused_lstm_layer(x, w, b, u)[0], lstm_layer(x, w, b, u)[0], atol=1e-5, rtol=1e-5)
        assert kept_panels() is not first
    wrong = torch.zeros(count, hidden + 1, 64)
    with pytest.raises(RuntimeError, match="panels: expected recurrent_panels"):
        compiled.layer_forward(x, w, b, u, None, None, False, 6, False, math.inf, False, wrong)


@pytest.mark.parametrize("n", [1, 4, 5])
@pytest.mark.parametrize("hidden", [5, 16, 40], ids=["4H=20", "4H=64", "4H=160"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("inputs", [1, 3])
def test_a_few_rows_run_the_row_products_and_match_pytorch(compiled, matmul_choice, n, hidden, activation, constant,
                                                           inputs):
    """Up to four rows (a streaming update scores one window), the steps' products that the BLAS
    would run are the kernels' row products (4H in blocks of 64 columns and a rest), after one
    product of every step's input; from five rows on, the BLAS's. Either way scores, final states
    and gradients are the PyTorch loop's, with and without a given state."""
    matmul_choice("blas")
    for with_state in (False, True):
        tensors, state, steps = random_layer(n=n, length=11, inputs=inputs, hidden=hidden, constant=constant,
                                             with_state=with_state, dtype=torch.float32)
        with torch.no_grad():
            for weight in tensors[1:]:
                weight.mul_(0.5 * (8 / hidden) ** 0.5)
        leaves = tensors + (list(state) if state else [])
        for fused, pytorch in zip(*fused_and_pytorch_runs(tensors, state, steps, activation, leaves)):
            torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)
    # a state whose rows are strided (every other column of a wider tensor) gives the same results
    detached = [t.detach() for t in tensors]
    wide = [torch.zeros(t.shape[0], 2 * t.shape[1]) for t in state]
    for buffer, t in zip(wide, state):
        buffer[:, ::2] = t.detach()
    with torch.inference_mode():
        strided = fused_lstm_layer(*detached, activation=activation, state=tuple(b[:, ::2] for b in wide),
                                   steps=steps)[0]
        expected = lstm_layer(*detached, activation=activation, state=tuple(t.detach() for t in state), steps=steps)[0]
    torch.testing.assert_close(strided, expected, atol=1e-4, rtol=1e-4)
    with torch.profiler.profile() as profile, torch.inference_mode():
        fused_lstm_layer(*detached, activation=activation, state=state, steps=steps)
    calls = {event.key: event.count for event in profile.key_averages()}
    if n <= 4:
        assert "aten::mm" not in calls  # no BLAS call per step
        assert calls.get("aten::addmm", 0) == (0 if inputs == 1 and not constant else 1)  # all steps' inputs at once
    else:
        assert calls["aten::mm"] + calls.get("aten::addmm_", 0) >= 10
