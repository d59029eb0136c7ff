// FFTs of arbitrary length for the PRV accountant's composition by convolution. Pure C++.
//
// The PRV composition needs the circular DFT of exactly the discretisation size N (any even
// number), so the transform supports every length: powers of two by an iterative radix-2
// transform, other lengths by Bluestein's chirp-z algorithm on a power-of-two grid (O(N log N)
// even for prime factors, where a plain mixed-radix transform degrades to O(N p)).
#pragma once
#include <complex>
#include <cstddef>
#include <memory>
#include <vector>

namespace vardp::dp::fft {

using Complex = std::complex<double>;

// While at least one scope object is alive, power-of-two plans (twiddle tables; hundreds of MiB
// for the largest grids) are kept for reuse across transforms -- noise calibration evaluates
// the PRV accountant on many grids of similar size. Without a scope, plans are freed after use.
class PlanCacheScope {
 public:
  PlanCacheScope();
  ~PlanCacheScope();
  PlanCacheScope(const PlanCacheScope&) = delete;
  PlanCacheScope& operator=(const PlanCacheScope&) = delete;
};

// Complex DFT of one fixed length n >= 1 (plans are reusable and thread-safe).
//   forward: X[k] = sum_j x[j] exp(-2 pi i j k / n)
//   inverse: x[j] = (1/n) sum_k X[k] exp(+2 pi i j k / n)
class ComplexFft {
 public:
  explicit ComplexFft(std::size_t n);
  ~ComplexFft();
  ComplexFft(ComplexFft&&) noexcept;
  ComplexFft& operator=(ComplexFft&&) noexcept;
  std::size_t size() const { return n_; }
  void forward(std::vector<Complex>& data) const;  // in place, data.size() == n
  void inverse(std::vector<Complex>& data) const;  // in place, scaled by 1/n

 private:
  struct Impl;
  std::size_t n_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Real-input DFT of an even length n (numpy.fft.rfft / irfft conventions): n/2 + 1 bins.
class RealFft {
 public:
  explicit RealFft(std::size_t n);  // n even, >= 2
  std::size_t size() const { return n_; }
  std::vector<Complex> forward(const std::vector<double>& x) const;
  // The imaginary parts of bins 0 and n/2 are ignored, as numpy's irfft does.
  std::vector<double> inverse(const std::vector<Complex>& spectrum) const;

 private:
  std::size_t n_;
  ComplexFft half_;
  std::vector<Complex> twiddle_;  // exp(-2 pi i k / n), k = 0..n/2
};

// Linear convolution of a and b, the len(a) samples centred in the full convolution
// (scipy.signal.convolve with mode="same"), computed with FFTs.
std::vector<double> convolve_same(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace vardp::dp::fft
