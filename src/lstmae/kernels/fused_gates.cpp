// One LSTM layer's time loop on the CPU, forward and backward, with each step's gate math
// fused into one pass over memory. It is the loop of lstmae/nn/fast_lstm.py (see its docstring
// for the equations) moved to C++: the forward products are the same ATen calls;
// what changes is that no Python runs per step, that the gate math, about ten eager operations
// per step (each a pass over the (N, 4H) gates with its own dispatch), reads and writes each
// row once, that the backward pass computes the weight and input gradients as one product
// each after its loop, and that each thread runs both loops for its own block of rows
// (for_row_blocks). Gates are in the order i, f, o, g; float32 only. Each step's products run
// in this file's own register-tiled loop (tiled_product) where the caller asks for `tiles`,
// else through oneDNN's matmul (onednn_product) where they are large enough for it, else, for a
// few rows per thread (a streaming update), in row_products after one product of all steps'
// inputs, else through the BLAS torch uses (at::mm); the products after the backward loop
// choose between oneDNN and the BLAS by their own size. The outputs and the other large buffers
// are reused from call to call (reused_buffer).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/dispatch/Dispatcher.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <mutex>
#include <vector>

namespace {

using Tensor = torch::Tensor;
using MaybeTensor = c10::optional<torch::Tensor>;

// clamp(x, low, high); a NaN passes through (both comparisons are false), and so through every
// function below, as it does through PyTorch's: the build must not assume finite values (no
// -ffast-math).
inline float clamp(float x, float low, float high) { return x < low ? low : (x > high ? high : x); }
// exp(x) for x in [-87, 88.5] (NaN for NaN), inline so that the `omp simd` loops run it in
// registers instead of calling the vector math library for every 16 values. x = n ln2 + r with
// |r| <= ln2 / 2; exp(r) by its Taylor series to r^7; times 2^n written into the exponent bits.
// Relative error at most 1.1e-7 up to x = 88.37 (float64 check); from there n = 128 makes 2^n
// the bits of +inf, and the result inf (exp(x) overflows float32 from 88.73 on).
inline float exp_inline(float x) {
  const float n = std::floor(x * 1.44269504f + 0.5f);
  // ln 2 in two parts; the first has zero low bits, so n times it is exact
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
// sigmoid(-inf) = 1 / (1 + inf) = 0 and sigmoid(inf) = 1, exactly, as PyTorch's (an input gate
// of exactly 0 times an infinite candidate is NaN in both).
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_inline(clamp(-x, -87.0f, 88.5f))); }
inline float tanh_fast(float x) { return 2.0f / (1.0f + exp_inline(-2.0f * clamp(x, -40.0f, 40.0f))) - 1.0f; }
// relu(NaN) is NaN, as torch.relu's
inline float activate(float x, bool relu) { return relu ? (x < 0.0f ? 0.0f : x) : tanh_fast(x); }
// act'(x) written with y = act(x): tanh' = 1 - y^2, relu' = [y > 0] (1 for a NaN y, as torch's
// threshold_backward passes the gradient of a NaN on)
inline float activation_slope(float y, bool relu) { return relu ? (y <= 0.0f ? 0.0f : 1.0f) : 1.0f - y * y; }

// Row r of an (N, width) tensor whose last dimension is contiguous; a (width,) vector is the
// same row for every r (stride 0). An undefined tensor gives null rows.
struct Rows {
  float* data = nullptr;
  int64_t stride = 0;
  float* operator[](int64_t row) const { return data ? data + row * stride : nullptr; }
};

Rows rows(const Tensor& t, int64_t n, int64_t width, const char* name) {
  if (!t.defined()) return {};
  TORCH_CHECK(t.scalar_type() == torch::kFloat32 && t.device().is_cpu(), name, ": expected a float32 CPU tensor");
  TORCH_CHECK(t.stride(-1) == 1 && t.size(-1) == width && (t.dim() == 1 || (t.dim() == 2 && t.size(0) == n)), name,
              ": expected (", n, ", ", width, ") or (", width, ") with a contiguous last dimension, got ", t.sizes());
  return {t.data_ptr<float>(), t.dim() == 1 ? 0 : t.stride(0)};
}

// Every step's rows of a buffer with a step dimension (step_dim) and a row dimension, last
// dimension contiguous: step t's rows without making a tensor per step (about ten per step,
// each with its own allocation and dispatch).
struct StepRows {
  float* data = nullptr;
  int64_t step_stride = 0, row_stride = 0;
  Rows operator[](int64_t t) const { return {data ? data + t * step_stride : nullptr, row_stride}; }
};

StepRows step_rows(const Tensor& t, int64_t step_dim, int64_t n, int64_t width, const char* name) {
  if (!t.defined()) return {};
  const Rows first = rows(t.select(step_dim, 0), n, width, name);
  return {first.data, t.stride(step_dim), first.stride};
}

Tensor defined_or_empty(const MaybeTensor& t) { return t.has_value() ? *t : Tensor(); }
Tensor contiguous_or_empty(const MaybeTensor& t) { return t.has_value() ? t->contiguous() : Tensor(); }

// at::parallel_for splits a batch into at most ceil(N / 16) blocks; up to 16 rows run on the calling thread
constexpr int64_t kGrainRows = 16;

// The rows of one thread's block, as at::parallel_for splits them in for_row_blocks.
int64_t block_rows(int64_t n) {
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (n + kGrainRows - 1) / kGrainRows));
  return (n + blocks - 1) / blocks;
}

// Whether a layer's products go through oneDNN: whether one step's products on one thread's block
// of rows (h U^T, and x_t W^T for more than one input feature) reach min_flops (0: always,
// infinity: never). Below lstmae.kernels.policy.ONEDNN_MIN_FLOPS oneDNN's cost per call outweighs its speed.
bool onednn_pays(int64_t n, int64_t inputs, int64_t hidden, double min_flops) {
  return 2.0 * block_rows(n) * (inputs + hidden) * 4 * hidden >= min_flops;
}

// Up to this many rows per thread, the steps that would go through the BLAS run as row_products
// instead: for a few rows a BLAS call's setup outweighs its product; for more, its kernels win.
constexpr int64_t kRowwiseRows = 4;

// x (n, K) times w (M, K) transposed, plus bias (M,) if given: (n, M), a new tensor, through
// oneDNN's matmul (torch's mkldnn::_linear_pointwise). It copies an x with strided rows first;
// it reads a transposed w in place. It runs AVX-512 kernels on CPUs where MKL, torch's BLAS on
// x86, takes its AVX2 ones (those not made by Intel); policy.matmul_policy and onednn_pays
// decide where it is used.
Tensor onednn_product(const Tensor& x, const Tensor& w, const c10::optional<Tensor>& bias = c10::nullopt) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
                             .typed<Tensor(const Tensor&, const Tensor&, const c10::optional<Tensor>&, c10::string_view,
                                           c10::List<c10::optional<c10::Scalar>>, c10::optional<c10::string_view>)>();
  return op.call(x, w, bias, "none", c10::List<c10::optional<c10::Scalar>>(), c10::nullopt);
}

// out (rows, M) = a (rows, K) times b (K, M): a's and out's rows lda and ldo floats apart, b
// contiguous with M a multiple of kTileCols (tile_columns pads it; out has room for M). Each
// tile of kTileRows x kTileCols outputs is accumulated over all of K in registers (16 AVX-512
// registers; the compiler vectorises the `omp simd` loops), written once. It is made for the
// step-sized products of an LSTM (tens of rows per thread, K and M in the hundreds), for which
// neither oneDNN's nor MKL's kernels are made (benchmarks/perf.py compares them).
constexpr int64_t kTileRows = 8, kTileCols = 32;
// Built for AVX-512 only: with AVX2's 16 registers the same tiles spill, and smaller ones were
// no faster than MKL; there the products stay with the libraries.
#if defined(__AVX512F__)
constexpr bool kTilesPay = true;
#else
constexpr bool kTilesPay = false;
#endif

template <int64_t tile_rows>
void product_tile(const float* a, int64_t lda, const float* b, int64_t ldb, float* out, int64_t ldo, int64_t depth) {
  float sums[tile_rows][kTileCols];
  for (int64_t i = 0; i < tile_rows; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < kTileCols; ++j) sums[i][j] = 0.0f;
  }
  for (int64_t k = 0; k < depth; ++k) {
    const float* b_row = b + k * ldb;
    for (int64_t i = 0; i < tile_rows; ++i) {
      const float a_ik = a[i * lda + k];
#pragma omp simd
      for (int64_t j = 0; j < kTileCols; ++j) sums[i][j] += a_ik * b_row[j];
    }
  }
  for (int64_t i = 0; i < tile_rows; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < kTileCols; ++j) out[i * ldo + j] = sums[i][j];
  }
}

template <int64_t tile_rows = kTileRows>
void tail_tile(int64_t left, const float* a, int64_t lda, const float* b, int64_t ldb, float* out, int64_t ldo,
               int64_t depth) {
  if constexpr (tile_rows > 1) {
    if (left < tile_rows) return tail_tile<tile_rows - 1>(left, a, lda, b, ldb, out, ldo, depth);
  }
  product_tile<tile_rows>(a, lda, b, ldb, out, ldo, depth);
}

// w (K, M) with its columns padded with zeros to a multiple of kTileCols: the tiles' b.
Tensor tile_columns(const Tensor& w) {
  const int64_t width = w.size(1), padded = (width + kTileCols - 1) / kTileCols * kTileCols;
  if (padded == width) return w.contiguous();
  Tensor out = at::zeros({w.size(0), padded}, w.options());
  out.narrow(1, 0, width).copy_(w);
  return out;
}

void tiled_product(Rows a, const Tensor& b_tensor, Rows out, int64_t rows) {
  const float* b = b_tensor.data_ptr<float>();
  const int64_t depth = b_tensor.size(0), width = b_tensor.size(1), ldb = width, lda = a.stride, ldo = out.stride;
  for (int64_t c = 0; c < width; c += kTileCols) {  // b's columns c.. (depth x 32) stay in cache for all rows
    int64_t r = 0;
    for (; r + kTileRows <= rows; r += kTileRows) {
      product_tile<kTileRows>(a[r], lda, b + c, ldb, out[r] + c, ldo, depth);
    }
    if (r < rows) tail_tile(rows - r, a[r], lda, b + c, ldb, out[r] + c, ldo, depth);
  }
}

// out (n, M) = a (n, K) times b (K, M), one row of a at a time, with b as panels of 64 columns
// (recurrent_panels): for each panel, the row's sums stay in 8 registers of 8 floats over all of
// K (eight independent chains of multiply-adds) and are written once, and the panel is read
// front to back (its rows 256 bytes, side by side). For the few rows per thread of a streaming
// update (batch 1), where a BLAS call's setup costs more than a one-row product and the tiles
// (AVX-512 only) are not built. The sums are explicit vectors (GCC's vector extension, which
// Clang shares): written as `omp simd` loops over an array, they were kept in memory.
constexpr int64_t kPanelCols = 64;
using Floats8 = float __attribute__((vector_size(32), aligned(4), may_alias));

inline Floats8 load8(const float* p) { return *reinterpret_cast<const Floats8*>(p); }

void row_panel(const float* a, const float* panel, float* out, int64_t depth) {
  Floats8 s0 = {}, s1 = {}, s2 = {}, s3 = {}, s4 = {}, s5 = {}, s6 = {}, s7 = {};
  for (int64_t k = 0; k < depth; ++k) {
    const float a_k = a[k], *row = panel + k * kPanelCols;
    s0 += a_k * load8(row);
    s1 += a_k * load8(row + 8);
    s2 += a_k * load8(row + 16);
    s3 += a_k * load8(row + 24);
    s4 += a_k * load8(row + 32);
    s5 += a_k * load8(row + 40);
    s6 += a_k * load8(row + 48);
    s7 += a_k * load8(row + 56);
  }
  const Floats8 sums[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
  std::memcpy(out, sums, sizeof sums);
}

// w (M, K) as the panels of its transpose: (P, K, 64), P = ceil(M / 64), panel p holding columns
// 64p.. of w^T and zeros past M: a one-row product reads each panel front to back, where w^T's
// rows of 64 columns lie 4M bytes apart.
Tensor recurrent_panels(const Tensor& w) {
  const int64_t width = w.size(0), depth = w.size(1), count = (width + kPanelCols - 1) / kPanelCols;
  Tensor padded = at::zeros({count * kPanelCols, depth}, w.options());
  padded.narrow(0, 0, width).copy_(w);
  return padded.view({count, kPanelCols, depth}).transpose(1, 2).contiguous();
}

void row_products(Rows a, const Tensor& panels, Rows out, int64_t n, int64_t width) {
  const float* b = panels.data_ptr<float>();
  const int64_t count = panels.size(0), depth = panels.size(1);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t p = 0; p < count; ++p) {
      const int64_t c = p * kPanelCols;
      if (c + kPanelCols <= width) {
        row_panel(a[r], b + p * depth * kPanelCols, out[r] + c, depth);
      } else {  // the last 4H mod 64 columns
        float last[kPanelCols];
        row_panel(a[r], b + p * depth * kPanelCols, last, depth);
        std::memcpy(out[r] + c, last, sizeof(float) * (width - c));
      }
    }
  }
}

#if defined(__x86_64__) || defined(_M_X64)
// The caller's flush-to-zero and denormals-are-zero bits, set on a worker thread for as long as
// it runs a block: torch.set_flush_denormal (lstmae's flush_denormals) sets them on the calling
// thread only, and without them a worker's rows ran at the speed of denormal arithmetic.
class SameDenormalMode {
 public:
  static unsigned int of_this_thread() { return _mm_getcsr() & kBits; }
  explicit SameDenormalMode(unsigned int mode) : saved_(_mm_getcsr()) { _mm_setcsr((saved_ & ~kBits) | mode); }
  ~SameDenormalMode() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned int kBits = 0x8040;  // MXCSR's FTZ and DAZ
  unsigned int saved_;
};
#else
class SameDenormalMode {
 public:
  static unsigned int of_this_thread() { return 0; }
  explicit SameDenormalMode(unsigned int) {}
};
#endif

// body(begin, count) for blocks of rows [begin, begin + count), one block per thread. Rows are
// independent in both loops, so each thread runs all steps for its own rows and no thread waits
// for another at each step (its products then run on that one thread), which is faster than one
// loop whose products use all threads, forward and backward.
template <typename Body>
void for_row_blocks(int64_t n, const Body& body) {
  const at::ThreadLocalState caller_state;  // grad and inference mode are per thread: carry the caller's
  const unsigned int caller_denormals = SameDenormalMode::of_this_thread();
  at::parallel_for(0, n, kGrainRows, [&](int64_t begin, int64_t end) {
    const at::ThreadLocalStateGuard same_state(caller_state);
    const SameDenormalMode same_denormals(caller_denormals);
    body(begin, end - begin);
  });
}

// An uninitialised buffer for the layer's outputs, for what the forward pass saves for the
// backward pass and for the backward pass's copies (tens of MB per layer). A buffer that nothing
// else refers to any more (the caller dropped the outputs, or their backward pass is done) is
// handed out again for the same shape instead of new memory: glibc serves blocks that large
// fresh from the system each time, and first touching them page by page (a page fault each)
// would take a large share of the layer's time. At most kPoolBytes are kept beyond the buffers
// in use.
constexpr int64_t kPoolBytes = int64_t{512} << 20;  // free buffers beyond this are released, least recently used first

Tensor reused_buffer(at::IntArrayRef sizes, const at::TensorOptions& options) {
  struct Pooled {
    Tensor buffer;  // the callers get other tensors on the same memory: see is_free
    uint64_t last_use;
  };
  static std::mutex mutex;
  static std::vector<Pooled> pool;
  static uint64_t clock = 0;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto is_free = [](const Pooled& p) { return p.buffer.storage().use_count() == 1; };
  const auto same_memory = [](Pooled& p) {
    p.last_use = ++clock;
    return at::empty({0}, p.buffer.options()).set_(p.buffer);
  };
  for (Pooled& pooled : pool) {
    if (pooled.buffer.sizes() == sizes && is_free(pooled)) return same_memory(pooled);
  }
  int64_t bytes = static_cast<int64_t>(options.dtype().itemsize()) * c10::multiply_integers(sizes);
  for (const Pooled& pooled : pool) bytes += pooled.buffer.nbytes();
  std::sort(pool.begin(), pool.end(), [](const Pooled& a, const Pooled& b) { return a.last_use < b.last_use; });
  for (auto it = pool.begin(); it != pool.end() && bytes > kPoolBytes;) {
    if (is_free(*it)) {
      bytes -= it->buffer.nbytes();
      it = pool.erase(it);
    } else {
      ++it;
    }
  }
  pool.push_back({at::empty(sizes, options), 0});
  return same_memory(pool.back());
}

Tensor rows_of(const Tensor& t, int64_t begin, int64_t count) { return t.defined() ? t.narrow(0, begin, count) : t; }

// gates (n, 4H) = act(products + addend + x_col * w_row): products (n, 4H) and addend (n, 4H) or
// (4H,) (stride 0) (either absent: zero), and for one input feature its column x_col (n, 1)
// times w_row (4H,) (absent: none); i, f, o: sigmoid, g: act. gates may be products itself.
// Then cell = f * c_previous + i * g (absent c_previous, the zero state: i * g, so that a NaN f
// stays out of it as in the PyTorch loop; `carry` says which); cell_act = act(cell);
// h = o * cell_act, also written to h_copy (n, H) if given. cell may be c_previous itself (the
// scoring loop reuses one buffer). Absent rows have a null data pointer; `zeros` (4H) stands in
// for them and `unused` (H) takes an unwanted copy of h, so that the loops stay branch-free.
template <bool relu, bool carry>  // constants, so that the loops below have no branch and vectorise
void step_forward(int64_t n, int64_t hidden, Rows products, Rows addend, Rows x_col, const float* w_row,
                  Rows c_previous, Rows gates, Rows cell, Rows cell_act, Rows h, Rows h_copy, const float* zeros,
                  float* unused) {
  const float* input_weights = w_row ? w_row : zeros;
  for (int64_t r = 0; r < n; ++r) {
    float *g = gates[r], *c = cell[r], *a = cell_act[r], *out = h[r];
    float* copy = h_copy.data ? h_copy[r] : unused;
    const float *add = addend.data ? addend[r] : zeros, *pre = products.data ? products[r] : zeros;
    const float* previous = carry ? c_previous[r] : zeros;
    const float input = x_col.data ? x_col[r][0] : 0.0f;
#pragma omp simd
    for (int64_t k = 0; k < 3 * hidden; ++k) g[k] = sigmoid(pre[k] + add[k] + input * input_weights[k]);
#pragma omp simd
    for (int64_t k = 3 * hidden; k < 4 * hidden; ++k) g[k] = activate(pre[k] + add[k] + input * input_weights[k], relu);
#pragma omp simd
    for (int64_t k = 0; k < hidden; ++k) {
      const float value = carry ? g[k] * g[3 * hidden + k] + g[hidden + k] * previous[k] : g[k] * g[3 * hidden + k];
      c[k] = value;
      a[k] = activate(value, relu);
      out[k] = g[2 * hidden + k] * a[k];
      copy[k] = out[k];
    }
  }
}

// One step back. dLoss/dh_t = grad_h + grad_h_extra (grad_outputs[:, t]); grad_c:
// dLoss/dc_t from step t+1, replaced by dLoss/dc_{t-1}; gates: the activated gates of step t;
// cell_act: act(c_t); c_previous absent (null): the zero state, read from `zeros` (H). Writes
// grad_gates (n, 4H), the gradient of the pre-activations; it may be `gates` itself (each
// position is read before it is written, and by no other position). Adds grad_gates to sums
// (n, 4H) and, for one input feature, x_col (n, 1) times grad_gates to x_sums (n, 4H): the
// bias's and that input weight's gradients, summed while the rows are in cache instead of in
// passes over all steps' gradients after the loop.
template <bool relu, bool one_input>
void step_backward(int64_t n, int64_t hidden, Rows grad_h, Rows grad_h_extra, Rows grad_c, Rows gates,
                   Rows c_previous, Rows cell_act, Rows grad_gates, Rows sums, Rows x_col, Rows x_sums,
                   const float* zeros) {
  for (int64_t r = 0; r < n; ++r) {
    const float *dh = grad_h[r], *extra = grad_h_extra[r], *g = gates[r], *a = cell_act[r];
    const float* previous = c_previous.data ? c_previous[r] : zeros;
    float *dc = grad_c[r], *d = grad_gates[r], *sum = sums[r], *x_sum = one_input ? x_sums[r] : nullptr;
    const float input = one_input ? x_col[r][0] : 0.0f;
#pragma omp simd
    for (int64_t k = 0; k < hidden; ++k) {
      const float i = g[k], f = g[hidden + k], o = g[2 * hidden + k], candidate = g[3 * hidden + k];
      const float grad_out = dh[k] + extra[k];
      const float dcell = dc[k] + grad_out * o * activation_slope(a[k], relu);  // h = o * act(c)
      const float d_i = dcell * candidate * i * (1.0f - i), d_f = dcell * previous[k] * f * (1.0f - f);
      const float d_o = grad_out * a[k] * o * (1.0f - o), d_g = dcell * i * activation_slope(candidate, relu);
      d[k] = d_i;
      d[hidden + k] = d_f;
      d[2 * hidden + k] = d_o;
      d[3 * hidden + k] = d_g;
      sum[k] += d_i;
      sum[hidden + k] += d_f;
      sum[2 * hidden + k] += d_o;
      sum[3 * hidden + k] += d_g;
      if (one_input) {
        x_sum[k] += input * d_i;
        x_sum[hidden + k] += input * d_f;
        x_sum[2 * hidden + k] += input * d_o;
        x_sum[3 * hidden + k] += input * d_g;
      }
      dc[k] = dcell * f;  // c = f * c_previous + i * g
    }
  }
}

// The forward loop over all steps. addend: the bias (4H,) or the projected constant input (N, 4H).
// w_row: W^T's one row (4H,) for one input feature (an outer product, added in the gate pass).
// step_weights (layer_forward): what each step's product takes from the weights through the
// tiles or oneDNN, or U's panels for row_products (rowwise); the BLAS reads w_ih and w_hh.
void forward_rows(const Tensor& x, const Tensor& w_ih, const Tensor& w_row, const Tensor& addend, const Tensor& w_hh,
                  const Tensor& step_weights, Tensor h, Tensor c, const Tensor& outputs, const Tensor& gates_all,
                  const Tensor& cells, const Tensor& cell_outs, const Tensor& joined, bool relu, bool keep, bool onednn,
                  bool tiled, bool rowwise) {
  const bool projected = x.dim() == 3 && !w_row.defined();  // x_t W^T is a product of its own
  const int64_t n = x.size(0), length = outputs.size(1), inputs = x.size(-1), hidden = w_hh.size(1);
  // Through the tiles or oneDNN (which copies strided rows before each product): with an input
  // to project, each step's [x_t, h_{t-1}] lies side by side in `joined`, one contiguous
  // (n, I + H) block per step (x laid out once, h written there by the gate pass of the step
  // before), so that one product with [W, U] makes a step's gates; otherwise the gate pass also
  // writes h into a contiguous buffer.
  Tensor h_rows;
  if (joined.defined()) {
    joined.narrow(2, 0, inputs).copy_(x.transpose(0, 1));
    const Tensor h_first = joined.select(0, 0).narrow(1, inputs, hidden);
    if (h.defined()) h_first.copy_(h);
    else h_first.zero_();
  } else if (onednn || tiled) {
    h_rows = at::empty({n, hidden}, x.options());
    if (h.defined()) h_rows.copy_(h);
  }
  // Where 4H is no multiple of the tiles' width, they write (n, padded) products here.
  const Tensor tile_out = tiled && step_weights.size(1) != 4 * hidden
      ? at::empty({n, step_weights.size(1)}, x.options()) : Tensor();
  const std::vector<float> zeros(4 * hidden, 0.0f);
  std::vector<float> unused(hidden);
  const StepRows gate_steps = step_rows(gates_all, 0, n, 4 * hidden, "gates"), cell_steps = step_rows(cells, 0, n, hidden, "cells");
  const StepRows act_steps = step_rows(cell_outs, 0, n, hidden, "cell_outs"), out_steps = step_rows(outputs, 1, n, hidden, "outputs");
  const StepRows x_steps = w_row.defined() ? step_rows(x, 1, n, 1, "x") : StepRows();
  const StepRows joined_h = joined.defined() ? step_rows(joined.narrow(2, inputs, hidden), 0, n, hidden, "joined") : StepRows();
  const StepRows joined_steps = joined.defined() ? step_rows(joined, 0, n, inputs + hidden, "joined") : StepRows();
  const Rows bias_rows = rows(addend, n, 4 * hidden, "addend"), h_copy_rows = rows(h_rows, n, hidden, "h_rows");
  // row_products: every step's x_t W^T + b as one product before the loop, then h_{t-1} U^T per step
  const Tensor projections = rowwise && projected
      ? at::addmm(addend, x.reshape({n * length, inputs}), w_ih.t()).view({n, length, 4 * hidden}) : Tensor();
  const StepRows projection_steps = projections.defined() ? step_rows(projections, 1, n, 4 * hidden, "projections") : StepRows();
  const Tensor h_first = rowwise && h.defined() ? h.contiguous() : Tensor();  // read by rows
  const Rows h_first_rows = rows(h_first, n, hidden, "h_0");
  const float* w_row_data = w_row.defined() ? w_row.data_ptr<float>() : nullptr;
  Rows previous = rows(c, n, hidden, "c_0");
  bool has_h = h.defined();
  for (int64_t t = 0; t < length; ++t) {
    const int64_t k = keep ? t : 0;
    Rows gates = gate_steps[k], pre, add = bias_rows, h_copy = h_copy_rows;
    Tensor products;  // through oneDNN a new tensor, read by the gate pass (scoring: overwritten with the gates)
    if (tiled) {  // written into the gates (or tile_out); the gate pass adds the bias
      const Rows a = joined.defined() ? joined_steps[t] : h_copy_rows;
      if (joined.defined()) h_copy = t + 1 < length ? joined_h[t + 1] : Rows();
      if (joined.defined() || has_h) {
        pre = tile_out.defined() ? Rows{tile_out.data_ptr<float>(), tile_out.size(1)} : gates;
        tiled_product(a, step_weights, pre, n);
      }
    } else if (onednn) {
      if (joined.defined()) {
        products = onednn_product(joined.select(0, t), step_weights, addend);  // the bias rides along
        add = Rows();
        h_copy = t + 1 < length ? joined_h[t + 1] : Rows();
      } else if (has_h) {
        products = onednn_product(h_rows, step_weights);
      }
      pre = rows(products, n, 4 * hidden, "products");
      if (!keep && products.defined()) gates = pre;
    } else if (rowwise) {
      if (projected) add = projection_steps[t];
      if (has_h) {
        row_products(t > 0 ? out_steps[t - 1] : h_first_rows, step_weights, gates, n, 4 * hidden);
        pre = gates;
      }
    } else if (projected || has_h) {  // the BLAS: at::mm_out writes into the gates
      Tensor gates_t = gates_all.select(0, k);
      if (projected) at::mm_out(gates_t, x.select(1, t), w_ih.t());
      if (projected && has_h) gates_t.addmm_(h, w_hh.t());
      else if (has_h) at::mm_out(gates_t, h, w_hh.t());
      pre = gates;
    }
    const bool carry = previous.data != nullptr;
    const auto step = relu ? (carry ? step_forward<true, true> : step_forward<true, false>)
                           : (carry ? step_forward<false, true> : step_forward<false, false>);
    step(n, hidden, pre, add, x_steps[t], w_row_data, previous, gates, cell_steps[k], act_steps[k], out_steps[t], h_copy,
         zeros.data(), unused.data());
    if (!onednn && !tiled && !rowwise) h = outputs.select(1, t);  // the BLAS's next product reads it
    has_h = true;
    previous = cell_steps[k];
  }
}

// x (N, L, I) as rows (L * N, I) in the order (step, sample) of the saved gates: a copy.
Tensor step_major_rows(const Tensor& x) {
  const int64_t n = x.size(0), length = x.size(1), width = x.size(2);
  return reused_buffer({length, n, width}, x.options()).copy_(x.transpose(0, 1)).view({length * n, width});
}

// rows (K, I), last dimension contiguous, transposed into a contiguous (I, K) buffer, in blocks
// of 16 x 16 on all threads: Tensor::copy_ of the transposed view is several times slower.
Tensor transposed_copy(const Tensor& rows) {
  const int64_t k_rows = rows.size(0), width = rows.size(1), ld = rows.stride(0);
  TORCH_CHECK(rows.stride(1) == 1, "transposed_copy: expected a contiguous last dimension");
  Tensor out = reused_buffer({width, k_rows}, rows.options());
  const float* src = rows.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  constexpr int64_t kBlock = 16;
  at::parallel_for(0, (k_rows + kBlock - 1) / kBlock, 64, [&](int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
      const int64_t r0 = block * kBlock, r1 = std::min(k_rows, r0 + kBlock);
      for (int64_t c0 = 0; c0 < width; c0 += kBlock) {
        const int64_t c1 = std::min(width, c0 + kBlock);
        for (int64_t c = c0; c < c1; ++c) {
          for (int64_t r = r0; r < r1; ++r) dst[c * k_rows + r] = src[r * ld + c];
        }
      }
    }
  });
  return out;
}

// grad (K, M)^T times rows (K, I): a weight's gradient (M, I) summed over K rows. oneDNN reads a
// transposed weight in place but copies a transposed input, so it computes the product's
// transpose from a transposed copy of `rows` (the narrower operand).
Tensor weight_gradient(const Tensor& grad, const Tensor& rows, bool onednn) {
  if (!onednn) return grad.t().mm(rows);
  if (rows.size(0) == 0) return at::zeros({grad.size(1), rows.size(1)}, grad.options());  // oneDNN takes no empty products
  return onednn_product(transposed_copy(rows), grad.t()).t().contiguous();
}

// The backward loop. Only dLoss/dh_{t-1} = grad_gates_t U is computed step by step (each step
// needs the one before); every step's grad_gates overwrite its activated gates in gates_all,
// so that the weight and input gradients are then one matrix product each over all N * L rows
// (layer_backward) instead of three small products per step; each row's grad_gates are also
// summed over the steps into sums (N, 4H) (and, for one input feature, times x into x_sums).
// Leaves dLoss/dh_0 in grad_h and dLoss/dc_0 in grad_c.
// step_weights (layer_backward): U for the BLAS, U^T for oneDNN, U with its columns padded for the tiles.
void backward_rows(const Tensor& grad_outputs, const Tensor& step_weights, const Tensor& h_0, const Tensor& c_0,
                   const Tensor& cells, const Tensor& cell_outs, const Tensor& gates_all, const Tensor& grad_h_out,
                   const Tensor& grad_c, const Tensor& sums, const Tensor& x, const Tensor& x_sums, bool relu,
                   bool onednn, bool tiled) {
  const int64_t n = gates_all.size(1), hidden = cells.size(2);
  const std::vector<float> zeros(hidden, 0.0f);
  const StepRows extra_steps = step_rows(grad_outputs, 1, n, hidden, "grad_outputs");
  const StepRows cell_steps = step_rows(cells, 0, n, hidden, "cells"), act_steps = step_rows(cell_outs, 0, n, hidden, "cell_outs");
  const StepRows gate_steps = step_rows(gates_all, 0, n, 4 * hidden, "gates");
  const StepRows x_steps = x_sums.defined() ? step_rows(x, 1, n, 1, "x") : StepRows();
  const Rows c_first = rows(c_0, n, hidden, "c_0"), dc = rows(grad_c, n, hidden, "grad_c");
  const Rows sum_rows = rows(sums, n, 4 * hidden, "sums"), x_sum_rows = rows(x_sums, n, 4 * hidden, "x_sums");
  const auto step = x_sums.defined() ? (relu ? step_backward<true, true> : step_backward<false, true>)
                                     : (relu ? step_backward<true, false> : step_backward<false, false>);
  // dLoss/dh_t (n, H): through oneDNN a new tensor each step; through the tiles, where H is no
  // multiple of their width, an (n, padded) buffer of which the first H columns count.
  Tensor grad_h = tiled && step_weights.size(1) != hidden ? grad_h_out.new_zeros({n, step_weights.size(1)}) : grad_h_out;
  for (int64_t t = gates_all.size(0) - 1; t >= 0; --t) {
    const Rows gates = gate_steps[t], dh{grad_h.data_ptr<float>(), grad_h.stride(0)};
    step(n, hidden, dh, extra_steps[t], dc, gates, t > 0 ? cell_steps[t - 1] : c_first, act_steps[t], gates, sum_rows,
         x_steps[t], x_sum_rows, zeros.data());
    if (t > 0 || h_0.defined()) {  // dLoss/dh_{t-1}, less grad_outputs[:, t-1]
      if (tiled) tiled_product(gates, step_weights, dh, n);
      else if (onednn) grad_h = onednn_product(gates_all.select(0, t), step_weights);
      else at::mm_out(grad_h, gates_all.select(0, t), step_weights);
    }
  }
  if (!grad_h.is_same(grad_h_out)) grad_h_out.copy_(grad_h.narrow(1, 0, hidden));
}

}  // namespace

// Forward over all steps. x (N, L, I), or (N, I) fed at each of `length` steps; w_ih (4H, I),
// b (4H,), w_hh (4H, H); h_0, c_0 (N, H) or None. Returns outputs (N, L, H), the activated
// gates (S, N, 4H), the cells and act(cells) (S, N, H): S = L when `keep` (for backward), else
// 1 (one step's buffers, reused); and, where each step with an input to project was one product
// of [x_t, h_{t-1}] (through the tiles or oneDNN), those rows of every step (L, N, I + H) (else
// undefined), from which the backward pass takes both weight gradients in one product.
// panels: recurrent_panels(w_hh), which the row products read, kept by the caller; None: made here.
std::vector<Tensor> layer_forward(const Tensor& x, const Tensor& w_ih, const Tensor& b, const Tensor& w_hh,
                                  const MaybeTensor& h_0, const MaybeTensor& c_0, bool relu, int64_t length,
                                  bool keep, double onednn_min_flops, bool tiles, const MaybeTensor& panels) {
  const int64_t n = x.size(0), hidden = w_hh.size(1);
  const bool constant = x.dim() == 2;
  const Tensor w_ih_t = w_ih.t();
  // A constant input is projected once; the bias then rides along with it.
  const Tensor addend = constant ? at::addmm(b, x, w_ih_t) : b.contiguous();
  // One input feature: x_t W^T is an outer product, added in the gate pass (faster than a
  // product of inner dimension 1).
  const Tensor w_row = !constant && x.size(2) == 1 ? w_ih_t.reshape({4 * hidden}).contiguous() : Tensor();
  const bool tiled = tiles && kTilesPay;
  const bool onednn = !tiled && onednn_pays(n, constant || w_row.defined() ? 0 : x.size(2), hidden, onednn_min_flops);
  const bool joins = (tiled || onednn) && !constant && !w_row.defined();  // [x_t, h_{t-1}] times [W, U] (forward_rows)
  const bool rowwise = !tiled && !onednn && block_rows(n) <= kRowwiseRows;
  Tensor step_weights;  // made once for all threads: [W, U] or U, for the tiles transposed and padded
  if (tiled || onednn) {
    const Tensor w = joins ? at::cat({w_ih, w_hh}, 1) : w_hh;
    step_weights = tiled ? tile_columns(w.t()) : w;
  } else if (rowwise) {
    step_weights = panels.has_value() ? *panels : recurrent_panels(w_hh);
    const int64_t count = (4 * hidden + kPanelCols - 1) / kPanelCols;
    TORCH_CHECK(step_weights.sizes() == at::IntArrayRef({count, hidden, kPanelCols}) && step_weights.is_contiguous() &&
                    step_weights.scalar_type() == torch::kFloat32,
                "panels: expected recurrent_panels(w_hh), contiguous (", count, ", ", hidden, ", ", kPanelCols,
                ") float32, got ", step_weights.sizes());
  }
  const int64_t saved = keep ? length : 1;
  Tensor outputs = reused_buffer({n, length, hidden}, x.options());
  Tensor gates_all = reused_buffer({saved, n, 4 * hidden}, x.options());
  Tensor cells = reused_buffer({saved, n, hidden}, x.options()), cell_outs = reused_buffer({saved, n, hidden}, x.options());
  const Tensor joined = joins ? reused_buffer({length, n, x.size(2) + hidden}, x.options()) : Tensor();
  const Tensor h_first = defined_or_empty(h_0), c_first = contiguous_or_empty(c_0);
  for_row_blocks(n, [&](int64_t begin, int64_t count) {
    forward_rows(x.narrow(0, begin, count), w_ih, w_row, constant ? addend.narrow(0, begin, count) : addend, w_hh,
                 step_weights, rows_of(h_first, begin, count), rows_of(c_first, begin, count), outputs.narrow(0, begin, count),
                 gates_all.narrow(1, begin, count), cells.narrow(1, begin, count), cell_outs.narrow(1, begin, count),
                 joined.defined() ? joined.narrow(1, begin, count) : joined, relu, keep, onednn, tiled, rowwise);
  });
  return {outputs, gates_all, cells, cell_outs, joined};
}

// The backward pass of layer_forward(keep=True), given dLoss/d outputs (N, L, H) and
// dLoss/dc_L (N, H), and what that forward pass returned (joined: None where it returned none).
// Returns the gradients of x (undefined unless need_x), w_ih, b, w_hh, h_0 and c_0 (undefined
// where those were None). gates_all is overwritten with the gradients of the
// pre-activations, so a second backward pass through the same forward is refused (Python side).
std::vector<Tensor> layer_backward(const Tensor& grad_outputs, const Tensor& grad_c_last, const Tensor& x,
                                   const Tensor& w_ih, const Tensor& w_hh, const MaybeTensor& h_0,
                                   const MaybeTensor& c_0, const Tensor& outputs, const MaybeTensor& joined,
                                   const Tensor& gates_all, const Tensor& cells, const Tensor& cell_outs, bool relu,
                                   bool need_x, double onednn_min_flops, bool tiles) {
  const int64_t length = gates_all.size(0), n = gates_all.size(1), four_h = gates_all.size(2);
  const int64_t hidden = w_hh.size(1);
  const bool constant = x.dim() == 2;
  const bool tiled = tiles && kTilesPay;
  const bool onednn = !tiled && onednn_pays(n, constant || x.size(2) == 1 ? 0 : x.size(2), hidden, onednn_min_flops);
  const Tensor step_weights = tiled ? tile_columns(w_hh) : onednn ? w_hh.t().contiguous() : w_hh;  // for dLoss/dh
  const Tensor h_first = defined_or_empty(h_0);
  // dLoss/dh_t is grad_h (from step t+1; zero at the last step) + grad_outputs[:, t].
  Tensor grad_h = x.new_zeros({n, hidden});
  Tensor grad_c = grad_c_last.clone(at::MemoryFormat::Contiguous);
  const Tensor c_first = contiguous_or_empty(c_0);
  const Tensor grad_rows = grad_outputs.stride(-1) == 1 ? grad_outputs : grad_outputs.contiguous();  // read by rows
  const Tensor sums = x.new_zeros({n, four_h});  // per row, over the steps: the bias's gradient, summed over rows
  const bool one_input = !constant && x.size(2) == 1;  // its weight's gradient is summed in the loop too
  const Tensor x_sums = one_input ? x.new_zeros({n, four_h}) : Tensor();
  for_row_blocks(n, [&](int64_t begin, int64_t count) {
    backward_rows(grad_rows.narrow(0, begin, count), step_weights, rows_of(h_first, begin, count),
                  rows_of(c_first, begin, count), cells.narrow(1, begin, count), cell_outs.narrow(1, begin, count),
                  gates_all.narrow(1, begin, count), grad_h.narrow(0, begin, count), grad_c.narrow(0, begin, count),
                  sums.narrow(0, begin, count), x.narrow(0, begin, count), rows_of(x_sums, begin, count), relu, onednn,
                  tiled);
  });
  const Tensor grad_gates = gates_all.view({length * n, four_h});  // step-major rows: (t, sample)
  // The products after the loop span all L * N rows: each goes through oneDNN by its own size
  // (a layer's steps may be too small for it while these are not).
  const auto onednn_for = [&](int64_t width) { return 2.0 * length * n * four_h * width >= onednn_min_flops; };
  Tensor grad_x, grad_w_ih, grad_w_hh;
  if (constant) {  // the same x at every step: its gradient sums over the steps
    grad_w_ih = sums.t().mm(x);
    if (need_x) grad_x = sums.mm(w_ih);
  } else {
    if (need_x) {
      grad_x = onednn_for(x.size(2)) ? onednn_product(grad_gates, w_ih.t().contiguous()) : grad_gates.mm(w_ih);
      grad_x = grad_x.view({length, n, x.size(2)}).transpose(0, 1);
    }
    if (joined.has_value()) {  // [x_t, h_{t-1}] of every step (h_{-1}: h_0 or zeros): one product for [W, U]
      const int64_t inputs = x.size(2);
      const Tensor grad_w = weight_gradient(grad_gates, joined->view({length * n, inputs + hidden}),
                                            onednn_for(inputs + hidden));
      grad_w_ih = grad_w.narrow(1, 0, inputs).contiguous();
      grad_w_hh = grad_w.narrow(1, inputs, hidden).contiguous();
    } else if (one_input) {
      grad_w_ih = x_sums.sum(0).view({four_h, 1});
    } else {
      grad_w_ih = weight_gradient(grad_gates, step_major_rows(x), onednn_for(x.size(2)));
    }
  }
  if (!grad_w_hh.defined()) {  // h_{t-1} for the steps t >= 1 are outputs[:, :-1]; step 0 reads h_0 (none: zeros)
    grad_w_hh = weight_gradient(gates_all.narrow(0, 1, length - 1).reshape({(length - 1) * n, four_h}),
                                step_major_rows(outputs.narrow(1, 0, length - 1)), onednn_for(hidden));
    if (h_first.defined()) grad_w_hh.addmm_(gates_all.select(0, 0).t(), h_first);
  }
  return {grad_x, grad_w_ih, sums.sum(0), grad_w_hh, h_0.has_value() ? grad_h : Tensor(),
          c_0.has_value() ? grad_c : Tensor()};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.attr("tiles_pay") = kTilesPay;
  m.def("layer_forward", &layer_forward, "one LSTM layer's time loop, forward (see lstmae/kernels/layer.py)");
  m.def("recurrent_panels", &recurrent_panels, "w (M, K) as the panels (ceil(M / 64), K, 64) of w^T that row products read");
  m.def("layer_backward", &layer_backward, "one LSTM layer's time loop, backward (see lstmae/kernels/layer.py)");
}
