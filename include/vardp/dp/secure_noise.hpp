// The Gaussian noise of DP-SGD from the secret stream (invariant 2: touched by no data-dependent
// code; invariant 6: secret coins). Coordinate j of step t is a pure function of
// (run secret, t, j), so the noise is the same whichever thread or rank draws it and again when
// a step is replayed after a resume.
//
// Sampler, against floating-point attacks on the noise (Mironov 2012; Jin et al. 2022): each
// coordinate is (z1 + z2 + z3 + z4) / 2 * std with z_i standard normals from Box-Muller (two
// pairs) on 52-bit uniforms in float64, rounded to float32 once at the end. Summing four normals
// is what Opacus' secure_mode does (there in float32) to fill the gaps that a single Box-Muller
// sample leaves in the tails; drawing in float64 puts those gaps far below the float32 grid of
// the released sum. The float64 arithmetic is our own (box_muller.hpp): deterministic on any
// x86-64 and vectorised. Cost per coordinate: 32 bytes of ChaCha20 keystream, 2 logs, 2 square
// roots and 2 sin + cos (`vardp bench-noise` measures coordinates per second).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "vardp/dp/secret_coins.hpp"

namespace vardp::dp {

// Coordinates [first, first + n) of the noise of `step`, standard deviation `std`.
void secure_gaussian_fill(float* out, uint64_t first, uint64_t n, double std, const RunSecret& secret, uint64_t step);

// All n coordinates, split over `threads` threads (0: half the hardware threads, at least 1).
void secure_gaussian_noise(float* out, uint64_t n, double std, const RunSecret& secret, uint64_t step,
                           int threads = 0);

// Draws the noise of the next step in a background thread while the current step computes: the
// noise does not depend on data, so it can be drawn ahead (used on rank 0 only).
class NoisePrefetcher {
 public:
  NoisePrefetcher(const RunSecret& secret, uint64_t numel, double std, int threads = 0);
  ~NoisePrefetcher();
  NoisePrefetcher(const NoisePrefetcher&) = delete;
  NoisePrefetcher& operator=(const NoisePrefetcher&) = delete;

  // Starts drawing the noise of `step` (replacing any earlier request that was not taken).
  void prefetch(uint64_t step);
  // The noise of `step`: waits for the prefetch of `step`, or draws it now if none was asked for.
  std::vector<float> take(uint64_t step);
  uint64_t numel() const { return numel_; }
  double std() const { return std_; }

 private:
  void worker();

  RunSecret secret_;  // a copy: the prefetcher may outlive the caller's
  uint64_t numel_;
  double std_;
  int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool requested_ = false, ready_ = false;
  uint64_t step_ = 0;
  std::vector<float> buffer_;
  std::thread thread_;
};

}  // namespace vardp::dp
