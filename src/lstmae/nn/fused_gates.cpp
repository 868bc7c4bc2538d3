// The gate math of one LSTM step, fused into one pass over memory (see fast_lstm.py).
//
// Eager PyTorch runs this math as about ten separate operations per step, each a pass over
// the (N, 4H) gates with its own dispatch; here each row is read and written once. The
// matrix products stay in PyTorch. Gates are in the order i, f, o, g. float32 on the CPU only;
// every tensor is (N, width) with its last dimension contiguous (rows may be strided views).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>

namespace {

// The arguments are clamped where the results are 0 or 1 in float32 anyway: under -ffast-math
// 1 / (1 + inf) may come out NaN (a reciprocal estimate refined by Newton steps), not 0.
inline float clamp(float x, float bound) { return x < -bound ? -bound : (x > bound ? bound : x); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-clamp(x, 80.0f))); }
inline float tanh_fast(float x) { return 2.0f / (1.0f + std::exp(-2.0f * clamp(x, 40.0f))) - 1.0f; }
inline float activate(float x, bool relu) { return relu ? (x > 0.0f ? x : 0.0f) : tanh_fast(x); }
// act'(x) written with y = act(x): tanh' = 1 - y^2, relu' = [y > 0]
inline float activation_slope(float y, bool relu) { return relu ? (y > 0.0f ? 1.0f : 0.0f) : 1.0f - y * y; }

struct Rows {
  float* data;
  int64_t stride;
  float* operator[](int64_t row) const { return data + row * stride; }
};

Rows rows(const torch::Tensor& t, int64_t n, int64_t width, const char* name) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat32 && t.device().is_cpu(), name, ": expected a float32 CPU tensor");
  TORCH_CHECK(t.dim() == 2 && t.size(0) == n && t.size(1) == width && t.stride(1) == 1, name,
              ": expected (", n, ", ", width, ") with a contiguous last dimension, got ", t.sizes());
  return {t.data_ptr<float>(), t.stride(0)};
}

constexpr int64_t kRowsPerTask = 16;

}  // namespace

// gates (N, 4H): the pre-activations, activated in place (i, f, o: sigmoid; g: act).
// cell = f * c_previous + i * g (c_previous None: the zero state); cell_act = act(cell);
// h = o * cell_act. cell may be c_previous itself (the scoring loop reuses one buffer).
void step_forward(torch::Tensor gates, c10::optional<torch::Tensor> c_previous, torch::Tensor cell,
                  torch::Tensor cell_act, torch::Tensor h, bool relu) {
  const int64_t n = gates.size(0), hidden = gates.size(1) / 4;
  const Rows g_rows = rows(gates, n, 4 * hidden, "gates"), c_rows = rows(cell, n, hidden, "cell");
  const Rows a_rows = rows(cell_act, n, hidden, "cell_act"), h_rows = rows(h, n, hidden, "h");
  const bool has_previous = c_previous.has_value();
  const Rows p_rows = has_previous ? rows(*c_previous, n, hidden, "c_previous") : Rows{nullptr, 0};
  at::parallel_for(0, n, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float *g = g_rows[r], *c = c_rows[r], *a = a_rows[r], *out = h_rows[r];
      const float* previous = has_previous ? p_rows[r] : nullptr;
#pragma omp simd
      for (int64_t k = 0; k < 3 * hidden; ++k) g[k] = sigmoid(g[k]);
#pragma omp simd
      for (int64_t k = 3 * hidden; k < 4 * hidden; ++k) g[k] = activate(g[k], relu);
#pragma omp simd
      for (int64_t k = 0; k < hidden; ++k) {
        const float value = g[k] * g[3 * hidden + k] + (previous ? g[hidden + k] * previous[k] : 0.0f);
        c[k] = value;
        a[k] = activate(value, relu);
        out[k] = g[2 * hidden + k] * a[k];
      }
    }
  });
}

// One step back. grad_h: dLoss/dh_t (all of it); grad_c: dLoss/dc_t from step t+1, replaced
// by dLoss/dc_{t-1}; gates: the activated gates of step t; cell_act: act(c_t). Writes
// grad_gates (N, 4H), the gradient with respect to the pre-activations.
void step_backward(torch::Tensor grad_h, torch::Tensor grad_c, torch::Tensor gates,
                   c10::optional<torch::Tensor> c_previous, torch::Tensor cell_act, torch::Tensor grad_gates,
                   bool relu) {
  const int64_t n = gates.size(0), hidden = gates.size(1) / 4;
  const Rows dh_rows = rows(grad_h, n, hidden, "grad_h"), dc_rows = rows(grad_c, n, hidden, "grad_c");
  const Rows g_rows = rows(gates, n, 4 * hidden, "gates"), a_rows = rows(cell_act, n, hidden, "cell_act");
  const Rows d_rows = rows(grad_gates, n, 4 * hidden, "grad_gates");
  const bool has_previous = c_previous.has_value();
  const Rows p_rows = has_previous ? rows(*c_previous, n, hidden, "c_previous") : Rows{nullptr, 0};
  at::parallel_for(0, n, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *dh = dh_rows[r], *g = g_rows[r], *a = a_rows[r];
      const float* previous = has_previous ? p_rows[r] : nullptr;
      float *dc = dc_rows[r], *d = d_rows[r];
#pragma omp simd
      for (int64_t k = 0; k < hidden; ++k) {
        const float i = g[k], f = g[hidden + k], o = g[2 * hidden + k], candidate = g[3 * hidden + k];
        const float dcell = dc[k] + dh[k] * o * activation_slope(a[k], relu);  // h = o * act(c)
        const float d_i = dcell * candidate, d_f = previous ? dcell * previous[k] : 0.0f, d_o = dh[k] * a[k];
        d[k] = d_i * i * (1.0f - i);
        d[hidden + k] = d_f * f * (1.0f - f);
        d[2 * hidden + k] = d_o * o * (1.0f - o);
        d[3 * hidden + k] = dcell * i * activation_slope(candidate, relu);
        dc[k] = dcell * f;  // c = f * c_previous + i * g
      }
    }
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("step_forward", &step_forward, "LSTM step forward: gate activations, cell and output, fused");
  m.def("step_backward", &step_backward, "LSTM step backward: gate gradients and the cell gradient, fused");
}
