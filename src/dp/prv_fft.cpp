// Radix-2 + Bluestein FFTs for the PRV accountant (see prv_fft.hpp).
#include "vardp/dp/prv_fft.hpp"

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>

#include "vardp/util/error.hpp"

namespace vardp::dp::fft {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Complex product without the NaN/Inf recovery branch of std::complex's operator*.
inline Complex mul(const Complex& a, const Complex& b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// exp(-2 pi i k / n) for k < count (count <= n), from one octant of cos/sin by symmetry: fewer
// libm calls, and the table is exactly symmetric.
std::vector<Complex> unit_roots(std::size_t n, std::size_t count) {
  std::vector<Complex> w(count);
  auto direct = [n](std::size_t k) {
    const double angle = -2.0 * kPi * static_cast<double>(k) / static_cast<double>(n);
    return Complex(std::cos(angle), std::sin(angle));
  };
  if (n % 8 != 0) {
    for (std::size_t k = 0; k < count; ++k) w[k] = direct(k);
    return w;
  }
  auto put = [&](std::size_t k, double re, double im) {
    if (k < count) w[k] = Complex(re, im);
  };
  for (std::size_t k = 0; k <= n / 8; ++k) {
    const double theta = 2.0 * kPi * static_cast<double>(k) / static_cast<double>(n);
    const double c = std::cos(theta), s = std::sin(theta);
    put(k, c, -s);                  // theta
    put(n / 4 - k, s, -c);          // pi/2 - theta
    put(n / 4 + k, -s, -c);         // pi/2 + theta
    if (k > 0) put(n / 2 - k, -c, -s);  // pi - theta
    put(n / 2 + k, -c, s);          // pi + theta
    put(3 * n / 4 - k, -s, c);      // 3pi/2 - theta
    put(3 * n / 4 + k, s, c);       // 3pi/2 + theta
    if (k > 0) put(n - k, c, s);    // 2pi - theta
  }
  return w;
}

bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

std::size_t next_power_of_two(std::size_t n) {
  std::size_t m = 1;
  while (m < n) m <<= 1;
  return m;
}

// Power-of-two transforms: a decimation-in-frequency pass (natural order in, bit-reversed order
// out) and an inverse decimation-in-time pass (bit-reversed in, natural out). Convolutions
// multiply spectra pointwise, so they never need the bit-reversal permutation, whose random
// memory access costs as much as several butterfly passes. Twiddles are computed directly with
// cos/sin (no recurrence), so their error does not grow with the length.
class Radix2 {
 public:
  explicit Radix2(std::size_t n) : n_(n) {
    const std::vector<Complex> base = unit_roots(n, n / 2);
    // Per-stage contiguous copies (stage len at offset len/2 - 1), so every stage reads its
    // twiddles sequentially instead of with stride n/len.
    twiddle_.resize(n > 1 ? n - 1 : 0);
    for (std::size_t len = 2; len <= n; len <<= 1) {
      const std::size_t stride = n / len;
      for (std::size_t k = 0; k < len / 2; ++k) twiddle_[len / 2 - 1 + k] = base[k * stride];
    }
  }

  std::size_t size() const { return n_; }

  // Forward DFT, natural order in and out.
  void forward(Complex* x) const {
    dif(x);
    bit_reverse(x);
  }

  // Forward DFT (exp(-i...)): natural order in, bit-reversed order out.
  // Stages whose butterflies fit a cache-sized block run block by block (all of them while the
  // block is in cache); only the longer stages sweep the whole array.
  void dif(Complex* x) const {
    double* v = reinterpret_cast<double*>(x);
    const std::size_t block = std::min<std::size_t>(n_, kCacheBlock);
    for (std::size_t len = n_; len > block; len >>= 1) dif_stage(v, n_, len);
    for (std::size_t start = 0; start < n_; start += block) {
      for (std::size_t len = block; len >= 2; len >>= 1) dif_stage(v + 2 * start, block, len);
    }
  }

  // Unnormalised inverse DFT (exp(+i...)): bit-reversed order in, natural order out.
  void dit_inverse(Complex* x) const {
    double* v = reinterpret_cast<double*>(x);
    const std::size_t block = std::min<std::size_t>(n_, kCacheBlock);
    for (std::size_t start = 0; start < n_; start += block) {
      for (std::size_t len = 2; len <= block; len <<= 1) dit_inverse_stage(v + 2 * start, block, len);
    }
    for (std::size_t len = 2 * block; len <= n_; len <<= 1) dit_inverse_stage(v, n_, len);
  }

  void bit_reverse(Complex* x) const {
    for (std::size_t i = 1, j = 0; i < n_; ++i) {
      std::size_t bit = n_ >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(x[i], x[j]);
    }
  }

 private:
  static constexpr std::size_t kCacheBlock = std::size_t{1} << 13;  // 128 KiB of complex<double>

  // Butterflies on raw doubles: std::complex's operator* carries NaN/Inf recovery checks
  // (C Annex G) that cost more than the arithmetic.
  void dif_stage(double* v, std::size_t count, std::size_t len) const {
    const std::size_t half = len / 2;
    const double* w = reinterpret_cast<const double*>(twiddle_.data() + (half - 1));
    for (std::size_t start = 0; start < count; start += len) {
      double* lo = v + 2 * start;
      double* hi = lo + 2 * half;
      for (std::size_t k = 0; k < half; ++k) {
        const double lr = lo[2 * k], li = lo[2 * k + 1];
        const double hr = hi[2 * k], him = hi[2 * k + 1];
        const double dr = lr - hr, di = li - him;
        const double wr = w[2 * k], wi = w[2 * k + 1];
        lo[2 * k] = lr + hr;
        lo[2 * k + 1] = li + him;
        hi[2 * k] = wr * dr - wi * di;
        hi[2 * k + 1] = wr * di + wi * dr;
      }
    }
  }

  void dit_inverse_stage(double* v, std::size_t count, std::size_t len) const {
    const std::size_t half = len / 2;
    const double* w = reinterpret_cast<const double*>(twiddle_.data() + (half - 1));
    for (std::size_t start = 0; start < count; start += len) {
      double* lo = v + 2 * start;
      double* hi = lo + 2 * half;
      for (std::size_t k = 0; k < half; ++k) {
        const double wr = w[2 * k], wi = -w[2 * k + 1];  // conjugate twiddle
        const double hr = hi[2 * k], him = hi[2 * k + 1];
        const double tr = wr * hr - wi * him;
        const double ti = wr * him + wi * hr;
        const double lr = lo[2 * k], li = lo[2 * k + 1];
        hi[2 * k] = lr - tr;
        hi[2 * k + 1] = li - ti;
        lo[2 * k] = lr + tr;
        lo[2 * k + 1] = li + ti;
      }
    }
  }

  std::size_t n_;
  std::vector<Complex> twiddle_;
};

// Power-of-two plans (twiddle tables of up to hundreds of MiB) are reused only while a
// PlanCacheScope is alive; otherwise each transform builds its own and frees it.
std::mutex cache_mutex;
int cache_scopes = 0;
std::deque<std::shared_ptr<const Radix2>> plan_cache;
constexpr std::size_t kCachedPlans = 3;

std::shared_ptr<const Radix2> radix2_plan(std::size_t n) {
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache_scopes > 0) {
      for (const auto& plan : plan_cache) {
        if (plan->size() == n) return plan;
      }
    }
  }
  auto plan = std::make_shared<const Radix2>(n);
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache_scopes > 0) {
    plan_cache.push_front(plan);
    if (plan_cache.size() > kCachedPlans) plan_cache.pop_back();
  }
  return plan;
}

}  // namespace

struct ComplexFft::Impl {
  std::size_t n = 0;
  bool bluestein = false;
  std::shared_ptr<const Radix2> radix2;  // length n, or the Bluestein grid length m
  std::size_t m = 0;
  std::vector<Complex> chirp;       // exp(-i pi k^2 / n), k < n
  std::vector<Complex> kernel_hat;  // DFT_m of the conjugate chirp, wrapped
  mutable std::mutex work_mutex;
  mutable std::vector<Complex> work;

  explicit Impl(std::size_t len) : n(len) {
    if (is_power_of_two(n)) {
      radix2 = radix2_plan(n);
      return;
    }
    bluestein = true;
    m = next_power_of_two(2 * n - 1);
    radix2 = radix2_plan(m);
    chirp.resize(n);
    // k^2 mod 2n in exact integer arithmetic (k^2 = (k-1)^2 + 2k - 1) keeps the angle
    // accurate for large k.
    const uint64_t two_n = 2 * static_cast<uint64_t>(n);
    uint64_t r = 0;
    for (std::size_t k = 0; k < n; ++k) {
      if (k > 0) r = (r + 2 * static_cast<uint64_t>(k) - 1) % two_n;
      const double angle = -kPi * static_cast<double>(r) / static_cast<double>(n);
      chirp[k] = Complex(std::cos(angle), std::sin(angle));
    }
    kernel_hat.assign(m, Complex(0.0, 0.0));
    kernel_hat[0] = std::conj(chirp[0]);
    for (std::size_t k = 1; k < n; ++k) {
      kernel_hat[k] = std::conj(chirp[k]);
      kernel_hat[m - k] = std::conj(chirp[k]);
    }
    radix2->dif(kernel_hat.data());  // kept in bit-reversed order, like the data below
  }

  void forward(Complex* x) const {
    if (!bluestein) {
      radix2->forward(x);
      return;
    }
    // The length-m scratch buffer is kept with the plan: fresh multi-megabyte allocations cost
    // page faults that can exceed the transform itself.
    std::lock_guard<std::mutex> lock(work_mutex);
    if (work.size() != m) work.resize(m);
    std::fill(work.begin() + static_cast<std::ptrdiff_t>(n), work.end(), Complex(0.0, 0.0));
    // Chirp-z: X_k = c_k sum_j (x_j c_j) conj(c_{k-j}), a length-m circular convolution.
    for (std::size_t k = 0; k < n; ++k) work[k] = mul(x[k], chirp[k]);
    radix2->dif(work.data());
    for (std::size_t k = 0; k < m; ++k) work[k] = mul(work[k], kernel_hat[k]);
    radix2->dit_inverse(work.data());
    const double scale = 1.0 / static_cast<double>(m);
    for (std::size_t k = 0; k < n; ++k) x[k] = mul(chirp[k], work[k]) * scale;
  }
};

PlanCacheScope::PlanCacheScope() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  ++cache_scopes;
}

PlanCacheScope::~PlanCacheScope() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (--cache_scopes == 0) plan_cache.clear();
}

ComplexFft::ComplexFft(std::size_t n) : n_(n) {
  if (n == 0) throw Error("FFT length must be >= 1", "fft");
  impl_ = std::make_unique<Impl>(n);
}
ComplexFft::~ComplexFft() = default;
ComplexFft::ComplexFft(ComplexFft&&) noexcept = default;
ComplexFft& ComplexFft::operator=(ComplexFft&&) noexcept = default;

void ComplexFft::forward(std::vector<Complex>& data) const {
  VARDP_CHECK(data.size() == n_, "fft: data length ", data.size(), " != plan length ", n_);
  impl_->forward(data.data());
}

void ComplexFft::inverse(std::vector<Complex>& data) const {
  VARDP_CHECK(data.size() == n_, "fft: data length ", data.size(), " != plan length ", n_);
  for (auto& v : data) v = std::conj(v);
  impl_->forward(data.data());
  const double scale = 1.0 / static_cast<double>(n_);
  for (auto& v : data) v = std::conj(v) * scale;
}

RealFft::RealFft(std::size_t n) : n_(n), half_(n >= 2 ? n / 2 : 1) {
  if (n < 2 || n % 2 != 0) throw Error(str("real FFT length must be even and >= 2, got ", n), "fft");
  twiddle_ = unit_roots(n, n / 2 + 1);
}

// Two-for-one packing: the even and odd samples form one complex sequence of length n/2 whose
// DFT is split into the DFTs of the two halves, then merged with the twiddles.
std::vector<Complex> RealFft::forward(const std::vector<double>& x) const {
  VARDP_CHECK(x.size() == n_, "rfft: data length ", x.size(), " != plan length ", n_);
  const std::size_t h = n_ / 2;
  std::vector<Complex> z(h);
  for (std::size_t k = 0; k < h; ++k) z[k] = Complex(x[2 * k], x[2 * k + 1]);
  half_.forward(z);
  std::vector<Complex> out(h + 1);
  const Complex minus_half_i(0.0, -0.5);
  for (std::size_t k = 0; k <= h; ++k) {
    const Complex zk = z[k % h];
    const Complex zc = std::conj(z[(h - k) % h]);
    const Complex even = 0.5 * (zk + zc);
    const Complex odd = mul(minus_half_i, zk - zc);
    out[k] = even + mul(twiddle_[k], odd);
  }
  return out;
}

std::vector<double> RealFft::inverse(const std::vector<Complex>& spectrum) const {
  const std::size_t h = n_ / 2;
  VARDP_CHECK(spectrum.size() == h + 1, "irfft: spectrum length ", spectrum.size(), " != ", h + 1);
  std::vector<Complex> z(h);
  for (std::size_t k = 0; k < h; ++k) {
    Complex xk = spectrum[k];
    Complex xc = std::conj(spectrum[h - k]);
    if (k == 0) {  // bins 0 and n/2 of a real signal are real
      xk = Complex(xk.real(), 0.0);
      xc = Complex(spectrum[h].real(), 0.0);
    }
    const Complex even = 0.5 * (xk + xc);
    const Complex odd = mul(0.5 * (xk - xc), std::conj(twiddle_[k]));
    z[k] = even + Complex(-odd.imag(), odd.real());  // even + i * odd
  }
  half_.inverse(z);
  std::vector<double> x(n_);
  for (std::size_t k = 0; k < h; ++k) {
    x[2 * k] = z[k].real();
    x[2 * k + 1] = z[k].imag();
  }
  return x;
}

std::vector<double> convolve_same(const std::vector<double>& a, const std::vector<double>& b) {
  VARDP_CHECK(!a.empty() && !b.empty(), "convolve_same: empty input");
  const std::size_t full = a.size() + b.size() - 1;
  const std::size_t m = std::max<std::size_t>(2, next_power_of_two(full));
  RealFft plan(m);
  std::vector<double> pa(m, 0.0), pb(m, 0.0);
  std::copy(a.begin(), a.end(), pa.begin());
  std::copy(b.begin(), b.end(), pb.begin());
  auto fa = plan.forward(pa);
  const auto fb = plan.forward(pb);
  for (std::size_t k = 0; k < fa.size(); ++k) fa[k] = mul(fa[k], fb[k]);
  const auto conv = plan.inverse(fa);
  const std::size_t start = (b.size() - 1) / 2;
  return std::vector<double>(conv.begin() + static_cast<std::ptrdiff_t>(start),
                             conv.begin() + static_cast<std::ptrdiff_t>(start + a.size()));
}

}  // namespace vardp::dp::fft
