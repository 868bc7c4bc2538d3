"""lstmae.nn.fast_lstm.lstm_layer against independent references: an autograd loop and nn.LSTM."""
import math

import pytest
import torch

from lstmae.nn import fast_lstm
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


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_float32_matches_the_float32_autograd_loop_to_1e5(activation):
    """Weights at nn.LSTM's init scale (1/sqrt(H)), 20 steps: values and gradients of order 1."""
    tensors, state, _ = random_layer(n=8, length=20, inputs=4, hidden=16, with_state=True, dtype=torch.float32)
    with torch.no_grad():
        for weight in tensors[1:]:
            weight.mul_(2 / 16**0.5)
    leaves = tensors + list(state)
    fast = lstm_layer(*tensors, activation=activation, state=state)
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
def test_tanh_layer_scores_with_fast_lstm_and_matches_nn_lstm(constant, monkeypatch):
    """TanhLSTM runs lstm_layer without gradients on the CPU; its results are nn.LSTM's."""
    from lstmae.nn import model

    torch.manual_seed(0)
    layer = model.TanhLSTM(3, 5)
    x = torch.randn(4, 3) if constant else torch.randn(4, 7, 3)
    state = (torch.randn(4, 5), torch.randn(4, 5))
    expected, (h_n, c_n) = nn_lstm_reference(layer, x, 7, state)
    calls = []
    monkeypatch.setattr(model, "lstm_layer", lambda *a, **k: calls.append(1) or lstm_layer(*a, **k))
    with torch.inference_mode():
        got, (h, c) = layer.forward_state(x, steps=7, state=state)
    assert calls, "inference on the CPU should take the fast_lstm path"
    torch.testing.assert_close(got, expected.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close((h, c), (h_n.detach(), c_n.detach()), atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ the fused C++ gate kernels
@pytest.fixture
def kernels():
    """The compiled kernels (compiled here on first use, about 30 s); skip where no compiler is."""
    compiled = fast_lstm.fused_kernels()
    if compiled is None:
        pytest.skip("the fused LSTM kernels could not be compiled here")
    return compiled


@pytest.fixture
def fresh_kernel_cache():
    """fused_kernels() caches its answer per process: clear it around a test that changes it."""
    fast_lstm.fused_kernels.cache_clear()
    yield
    fast_lstm.fused_kernels.cache_clear()


def fused_and_pytorch_runs(monkeypatch, tensors, state, steps, activation, leaves):
    """Outputs, final (h, c), scores (inference mode) and gradients, from the fused kernels and
    from the PyTorch operations (kernels switched off for the second run)."""
    runs = []
    for use_kernels in (True, False):
        if not use_kernels:
            monkeypatch.setattr(fast_lstm, "fused_kernels_for", lambda x: None)
        outputs, final = lstm_layer(*tensors, activation=activation, state=state, steps=steps)
        with torch.inference_mode():
            scored = lstm_layer(*tensors, activation=activation, state=state, steps=steps)
        runs.append((outputs, *final, scored[0], *scored[1], *torch.autograd.grad(loss_of(outputs, final), leaves)))
    return runs


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("inputs", [1, 3])
@pytest.mark.parametrize("frozen_x", [False, True], ids=["x-grad", "x-frozen"])
def test_fused_kernels_give_the_pytorch_operations_results(kernels, monkeypatch, activation, constant, with_state,
                                                           inputs, frozen_x):
    tensors, state, steps = random_layer(n=6, length=9, inputs=inputs, hidden=8, constant=constant,
                                         with_state=with_state, dtype=torch.float32)
    if frozen_x:  # data, as the first layer sees it: no gradient wanted
        tensors[0] = tensors[0].detach()
    leaves = tensors[frozen_x:] + (list(state) if state else [])
    runs = fused_and_pytorch_runs(monkeypatch, tensors, state, steps, activation, leaves)
    for fused, pytorch in zip(*runs):  # float32 sums in another order: gradients of ~1 differ by ~1e-5
        torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)


def test_fused_kernels_flush_denormals_on_every_thread_when_asked(kernels):
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
        kept_before = lstm_layer(*tensors, activation="relu", state=state)[0]  # starts the worker threads
        if not torch.set_flush_denormal(True):
            pytest.skip("this CPU cannot flush denormals")
        flushed = lstm_layer(*tensors, activation="relu", state=state)[0]
        torch.set_flush_denormal(False)
        kept = lstm_layer(*tensors, activation="relu", state=state)[0]
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)
    assert torch.equal(flushed, torch.zeros_like(flushed))
    for outputs in (kept_before, kept):
        torch.testing.assert_close(outputs, torch.full_like(outputs, 1e-39), atol=1e-45, rtol=1e-6)


def test_fused_gate_functions_are_accurate_to_float32(kernels):
    """One step with every pre-activation equal to a: c = sigmoid(a) tanh(a) and
    h = sigmoid(a) tanh(c), against float64 (the kernels compute exp themselves)."""
    a = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    x = a.float().reshape(-1, 1, 1)
    outputs, (h, c) = lstm_layer(x, torch.ones(4, 1), None, torch.zeros(4, 1), activation="tanh")
    expected_c = torch.sigmoid(a) * torch.tanh(a)
    torch.testing.assert_close(c.double().flatten(), expected_c, atol=3e-7, rtol=0)
    torch.testing.assert_close(h.double().flatten(), torch.sigmoid(a) * torch.tanh(expected_c), atol=3e-7, rtol=0)


@pytest.mark.parametrize("length", [1, 2])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_fused_kernels_handle_one_and_two_steps(kernels, monkeypatch, length, with_state):
    """The recurrent weight's gradient is one product over steps 1..L-1 plus step 0's (h_0)."""
    tensors, state, _ = random_layer(n=3, length=length, inputs=2, hidden=4, with_state=with_state,
                                     dtype=torch.float32)
    leaves = tensors + (list(state) if state else [])
    runs = []
    for use_kernels in (True, False):
        if not use_kernels:
            monkeypatch.setattr(fast_lstm, "fused_kernels_for", lambda x: None)
        outputs, final = lstm_layer(*tensors, activation="tanh", state=state)
        runs.append(torch.autograd.grad(loss_of(outputs, final), leaves))
    for fused, pytorch in zip(*runs):
        torch.testing.assert_close(fused, pytorch, atol=1e-5, rtol=1e-5)


def test_a_second_backward_pass_through_the_fused_layer_is_refused(kernels):
    """The C++ backward writes the gradients over its saved gates: a second pass would read them."""
    tensors, _, _ = random_layer(dtype=torch.float32)
    outputs, _ = lstm_layer(*tensors, activation="relu")
    loss = outputs.square().sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match=r"one backward pass per forward pass .* run the forward pass again"):
        loss.backward()


def test_tanh_layer_trains_small_batches_through_nn_lstm_and_large_ones_fused(kernels, monkeypatch):
    """See TanhLSTM: the fused layer trains from model.FUSED_TRAINING_BATCH sequences of
    model.FUSED_TRAINING_STEPS steps on (for the repeated code, `steps` is the length)."""
    from lstmae.nn import model

    layer = model.TanhLSTM(3, 5)
    calls = []
    monkeypatch.setattr(model, "lstm_layer", lambda *a, **k: calls.append(1) or lstm_layer(*a, **k))
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
    monkeypatch.setattr(fast_lstm, "fused_kernels_for", lambda x: None)
    monkeypatch.setattr(model, "fused_kernels_for", lambda x: None)
    monkeypatch.setattr(model, "FUSED_TRAINING_BATCH", 1)
    calls.clear()
    layer(large)  # no compiled kernels: nn.LSTM, not the slower PyTorch loop
    assert not calls


def test_without_a_compiler_the_layers_warn_and_use_pytorch(fresh_kernel_cache, monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension: c++: command not found\nmore detail")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.delenv("LSTMAE_FUSED_KERNELS", raising=False)
    with pytest.warns(UserWarning, match=r"could not compile the fused LSTM kernels \(Error building extension: "
                                         r"c\+\+: command not found\); using PyTorch operations"):
        assert fast_lstm.fused_kernels() is None
    tensors, _, _ = random_layer(dtype=torch.float32)
    outputs, _ = lstm_layer(*tensors, activation="tanh")
    torch.testing.assert_close(outputs, reference_layer(*tensors, "tanh")[0], atol=1e-5, rtol=1e-5)


def test_kernels_can_be_switched_off(fresh_kernel_cache, monkeypatch):
    monkeypatch.setenv("LSTMAE_FUSED_KERNELS", "0")
    assert fast_lstm.fused_kernels() is None


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fused_kernels_saturate_without_nan(kernels, monkeypatch, activation):
    """Pre-activations of +-1e4: the gates are exactly 0 or 1, as in PyTorch (a fast-math
    reciprocal of 1 + exp(1e4) = inf once gave NaN)."""
    tensors, state, _ = random_layer(n=6, length=9, inputs=2, hidden=8, with_state=True, dtype=torch.float32)
    with torch.no_grad():
        tensors = [t * 1e4 for t in tensors]
    fused = lstm_layer(*tensors, activation=activation, state=state)[0]
    monkeypatch.setattr(fast_lstm, "fused_kernels_for", lambda x: None)
    pytorch = lstm_layer(*tensors, activation=activation, state=state)[0]
    assert torch.isfinite(pytorch).all()
    torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)


def test_the_first_build_is_announced_and_a_cached_one_is_not(fresh_kernel_cache, monkeypatch, tmp_path, caplog):
    from torch.utils import cpp_extension

    monkeypatch.delenv("LSTMAE_FUSED_KERNELS", raising=False)
    monkeypatch.setattr(cpp_extension, "_get_build_directory", lambda name, verbose: str(tmp_path))
    monkeypatch.setattr(cpp_extension, "load", lambda *args, **kwargs: "compiled")
    with caplog.at_level("WARNING", logger="lstmae.nn.fast_lstm"):
        assert fast_lstm.fused_kernels() == "compiled"
    assert "compiling the fused LSTM kernels" in caplog.text
    fast_lstm.fused_kernels.cache_clear()
    caplog.clear()
    (tmp_path / "lstmae_fused_gates.so").touch()
    assert fast_lstm.fused_kernels() == "compiled"
    assert "compiling" not in caplog.text


def test_the_build_is_named_after_the_cpu(fresh_kernel_cache, monkeypatch):
    """A -march=native build is per CPU: two CPUs must not share one cached module."""
    from torch.utils import cpp_extension

    names = []
    monkeypatch.delenv("LSTMAE_FUSED_KERNELS", raising=False)
    monkeypatch.setattr(cpp_extension, "load", lambda name, *args, **kwargs: names.append(name) or "compiled")
    fast_lstm.fused_kernels()
    assert names == [f"lstmae_fused_gates_{fast_lstm._cpu_tag()}"] and len(fast_lstm._cpu_tag()) == 8


# ------------------------------------------------------------------ products: oneDNN or the BLAS
@pytest.fixture
def matmul_choice(monkeypatch):
    """Set LSTMAE_MATMUL for one test; matmul_policy() caches its answer, so clear it around."""
    fast_lstm.matmul_policy.cache_clear()

    def choose(value):
        monkeypatch.setenv("LSTMAE_MATMUL", value)
        fast_lstm.matmul_policy.cache_clear()
        if value == "onednn" and fast_lstm.matmul_policy() != "onednn":
            pytest.skip("torch has no oneDNN here")

    yield choose
    fast_lstm.matmul_policy.cache_clear()


@pytest.mark.parametrize("choice, hidden", [("onednn", 8), ("blas", 8), ("tiles", 5), ("tiles", 8), ("tiles", 32)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
@pytest.mark.parametrize("inputs", [1, 3])
@pytest.mark.parametrize("length", [1, 11])
def test_fused_kernels_split_rows_between_threads_and_match_pytorch_with_each_matmul(
        kernels, monkeypatch, matmul_choice, choice, hidden, activation, constant, inputs, length):
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
        runs = fused_and_pytorch_runs(monkeypatch, tensors, state, steps, activation, tensors + list(state))
    finally:
        torch.set_num_threads(threads)
    for fused, pytorch in zip(*runs):
        torch.testing.assert_close(fused, pytorch, atol=1e-4, rtol=1e-4)


def test_the_products_go_through_the_chosen_library(kernels, matmul_choice):
    """LSTMAE_MATMUL=onednn trains and scores through mkldnn::_linear_pointwise, =blas through aten::mm."""
    tensors, _, _ = random_layer(n=8, length=5, inputs=3, hidden=4, dtype=torch.float32)

    def ops_called(training):
        with torch.profiler.profile() as profile:
            if training:
                lstm_layer(*tensors, activation="tanh")[0].sum().backward()
            else:
                with torch.inference_mode():
                    lstm_layer(*tensors, activation="tanh")
        return {event.key for event in profile.key_averages()}

    for training in (False, True):
        matmul_choice("blas")
        assert "aten::mm" in ops_called(training) and "mkldnn::_linear_pointwise" not in ops_called(training)
        matmul_choice("onednn")
        assert "mkldnn::_linear_pointwise" in ops_called(training)


def test_training_reuses_the_saved_buffers_once_their_backward_pass_is_done(kernels):
    """While a step's graph is alive its saved gates and cells are not handed out again (a second
    forward pass must not write over them); once its backward pass is done, the next step gets
    the same memory (no new pages to fault in) and computes the right outputs in it."""
    tensors, _, _ = random_layer(n=8, length=5, inputs=3, hidden=4, dtype=torch.float32)

    def saved_pointers(outputs):  # the gates, cells and act(cells) of every step
        return {t.data_ptr() for t in outputs.grad_fn.saved_tensors[-3:]}

    first = lstm_layer(*tensors, activation="relu")[0]
    first_pointers = saved_pointers(first)
    alive = lstm_layer(*tensors, activation="relu")[0]
    assert not first_pointers & saved_pointers(alive)  # both graphs alive: separate memory
    first_shapes = [t.shape for t in first.grad_fn.saved_tensors[-3:]]
    first.sum().backward()
    del first
    # Fresh allocations of the same sizes would take blocks malloc just got back; they cannot
    # take the pool's, which it never gives back.
    blockers = [torch.empty(shape) for shape in first_shapes]
    again = lstm_layer(*tensors, activation="relu")[0]
    assert saved_pointers(again) == first_pointers
    assert not first_pointers & {t.data_ptr() for t in blockers}
    reference = reference_layer(*[t.detach() for t in tensors], "relu")[0]
    torch.testing.assert_close(again.detach(), reference, atol=1e-5, rtol=1e-5)


def test_outputs_are_handed_out_again_only_once_nobody_holds_them(kernels):
    """The layer's outputs come from the same pool: while the caller holds them (or a view, such
    as h_L) a second call writes elsewhere; once they are dropped, the next call of that shape
    gets their memory and computes the right outputs in it."""
    tensors, _, _ = random_layer(n=8, length=5, inputs=3, hidden=4, dtype=torch.float32)
    doubled = [tensors[0] * 2, *tensors[1:]]
    with torch.inference_mode():
        first, (h_last, _) = lstm_layer(*tensors, activation="tanh")
        expected = first.clone()
        second = lstm_layer(*doubled, activation="tanh")[0]
        assert second.data_ptr() != first.data_ptr()
        torch.testing.assert_close(first, expected, atol=0, rtol=0)
        first_pointer = first.data_ptr()
        del first
        third = lstm_layer(*doubled, activation="tanh")[0]  # h_last still holds the first outputs
        assert third.data_ptr() not in (second.data_ptr(), first_pointer)
        freed = second.data_ptr()
        del second
        blocker = torch.empty(third.shape)  # a fresh allocation would take what malloc just got back
        again = lstm_layer(*tensors, activation="tanh")[0]
    assert again.data_ptr() == freed and blocker.data_ptr() != freed
    torch.testing.assert_close(again, expected, atol=0, rtol=0)


@pytest.mark.parametrize("vendor, machine, expected", [
    ("AuthenticAMD", "x86_64", "tiles"),  # MKL runs its AVX2 kernels there
    ("GenuineIntel", "x86_64", "blas"),
    ("", "arm64", "blas"),
])
def test_the_default_matmul_follows_the_cpu_maker(matmul_choice, monkeypatch, vendor, machine, expected):
    monkeypatch.delenv("LSTMAE_MATMUL", raising=False)
    monkeypatch.setattr(fast_lstm, "_cpu_vendor", lambda: vendor)
    monkeypatch.setattr(fast_lstm.platform, "machine", lambda: machine)
    monkeypatch.setattr(fast_lstm, "_onednn_available", lambda: True)
    assert fast_lstm.matmul_policy() == expected
    monkeypatch.setattr(fast_lstm, "_onednn_available", lambda: False)  # a torch without oneDNN: the tiles need none
    fast_lstm.matmul_policy.cache_clear()
    assert fast_lstm.matmul_policy() == expected and fast_lstm._onednn_min_flops() == math.inf


def test_a_bad_matmul_choice_names_the_choices(matmul_choice):
    matmul_choice("cublas")
    with pytest.raises(ValueError, match=r"LSTMAE_MATMUL must be one of \('tiles', 'onednn', 'blas'\) or unset, "
                                         r"got 'cublas'"):
        fast_lstm.matmul_policy()


@pytest.mark.parametrize("constant", [False, True], ids=["sequence", "repeated-input"])
def test_the_tiles_run_each_steps_products_without_a_library_call(kernels, matmul_choice, constant):
    """Scoring a 32-unit layer with the tiles: no per-step product goes through oneDNN or the
    BLAS (a repeated input is projected once, by one addmm)."""
    if not getattr(kernels, "tiles_pay", False):
        pytest.skip("the kernels were built without AVX-512: no tiles")
    matmul_choice("tiles")
    tensors, _, steps = random_layer(n=16, length=7, inputs=3, hidden=32, constant=constant, dtype=torch.float32)
    with torch.profiler.profile() as profile, torch.inference_mode():
        lstm_layer(*tensors, activation="tanh", steps=steps)
    products = [(event.key, event.count) for event in profile.key_averages()
                if event.key in ("aten::mm", "aten::addmm", "mkldnn::_linear_pointwise")]
    assert products == ([("aten::addmm", 1)] if constant else [])


def test_the_cpu_vendor_is_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n")
    real_path = fast_lstm.Path
    monkeypatch.setattr(fast_lstm, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    assert fast_lstm._cpu_vendor() == "AuthenticAMD"
    cpuinfo.unlink()
    assert fast_lstm._cpu_vendor() == ""


def onednn_calls(x, hidden, training):
    """How many products one relu layer call (5 steps, two threads) sends through oneDNN."""
    weights = (torch.randn(4 * hidden, x.shape[-1], requires_grad=True), None,
               torch.randn(4 * hidden, hidden, requires_grad=True))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.profiler.profile() as profile:
            if training:
                lstm_layer(x, *weights, activation="relu", steps=5)[0].sum().backward()
            else:
                with torch.inference_mode():
                    lstm_layer(x, *weights, activation="relu", steps=5)
    finally:
        torch.set_num_threads(threads)
    return sum(event.count for event in profile.key_averages() if event.key == "mkldnn::_linear_pointwise")


@pytest.mark.parametrize("shape, hidden, expected", [
    ((128, 5, 64), 64, True),   # 64 rows a thread on two threads: 2 x 64 x (64 + 64) x 256 = 4.2 MFLOP a step
    ((128, 5, 1), 64, False),   # one input feature is no product: 2.1 MFLOP
    ((32, 5, 64), 64, False),   # 16 rows a thread: 1.0 MFLOP
    ((128, 64), 64, False),     # a repeated code: only h U^T, 2.1 MFLOP
])
def test_by_default_only_large_step_products_go_through_onednn(kernels, monkeypatch, shape, hidden, expected):
    """With the default policy on CPUs where MKL lacks AVX-512 ("tiles") but no tiles (built
    without AVX-512), a layer's steps go through oneDNN when one step's products on one thread's
    rows reach ONEDNN_MIN_FLOPS."""
    if not fast_lstm._onednn_available():
        pytest.skip("torch has no oneDNN here")
    monkeypatch.setattr(fast_lstm, "matmul_policy", lambda: "tiles")
    monkeypatch.setattr(fast_lstm, "_step_tiles", lambda: False)
    assert (onednn_calls(torch.randn(shape), hidden, training=False) > 0) is expected


@pytest.mark.parametrize("n, hidden, expected", [(128, 64, True), (4, 4, False)])
def test_products_after_the_loop_go_through_onednn_by_their_own_size(kernels, monkeypatch, n, hidden, expected):
    """A repeated code of 128 rows: its steps are too small for oneDNN (2.1 MFLOP a step and
    thread), its recurrent weight's gradient over all 5 x 128 rows is not (21 MFLOP); 4 rows of
    4 units: neither."""
    if not fast_lstm._onednn_available():
        pytest.skip("torch has no oneDNN here")
    monkeypatch.setattr(fast_lstm, "matmul_policy", lambda: "tiles")
    monkeypatch.setattr(fast_lstm, "_step_tiles", lambda: False)
    assert onednn_calls(torch.randn(n, 64), hidden, training=False) == 0
    assert (onednn_calls(torch.randn(n, 64), hidden, training=True) > 0) is expected
