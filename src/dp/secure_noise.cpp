#include "vardp/dp/secure_noise.hpp"

#include <algorithm>
#include <cmath>

#include "vardp/dp/box_muller.hpp"

namespace vardp::dp {
namespace {

constexpr uint64_t kBytesPerCoordinate = 32;  // four 64-bit words: two Box-Muller pairs
constexpr uint64_t kChunk = 2048;             // coordinates per keystream buffer (64 KiB)

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t w = 0;
  for (int b = 7; b >= 0; --b) w = (w << 8) | p[b];
  return w;
}

// The two passes of the sampler over structure-of-arrays buffers, so that they vectorise; an AVX2
// clone is picked at run time where the CPU has it. Without FMA (not enabled by "avx2") both
// clones round every operation alike: the same bits on any x86-64.
__attribute__((target_clones("avx2", "default"))) void radii(const uint64_t* w, double* r, size_t n) {
  for (size_t i = 0; i < n; ++i) r[i] = std::sqrt(-2.0 * box_muller::log_positive(box_muller::unit_interval_open_closed(w[i])));
}
__attribute__((target_clones("avx2", "default"))) void cos_plus_sin(const uint64_t* w, double* c, size_t n) {
  for (size_t i = 0; i < n; ++i) c[i] = box_muller::cos_plus_sin_turn(w[i]);
}

}  // namespace

void secure_gaussian_fill(float* out, uint64_t first, uint64_t n, double std, const RunSecret& secret, uint64_t step) {
  const SecretStream stream(secret, SecretPurpose::gaussian_noise, step);
  std::vector<uint8_t> buf((kChunk + 1) * kBytesPerCoordinate);
  std::vector<uint64_t> radius_words(2 * kChunk), angle_words(2 * kChunk);
  std::vector<double> r(2 * kChunk), cs(2 * kChunk);
  const double half_std = 0.5 * std;
  for (uint64_t lo = first; lo < first + n; lo += kChunk) {
    const uint64_t count = std::min(kChunk, first + n - lo);
    // Coordinate j's bytes are [32 j, 32 j + 32): block j / 2, half j % 2; its words are
    // (radius 1, angle 1, radius 2, angle 2).
    const uint64_t skip = (lo % 2) * kBytesPerCoordinate;
    stream.fill(buf.data(), skip + count * kBytesPerCoordinate, lo / 2);
    const uint8_t* p = buf.data() + skip;
    for (uint64_t i = 0; i < count; ++i, p += kBytesPerCoordinate) {
      radius_words[2 * i] = load_le64(p);
      angle_words[2 * i] = load_le64(p + 8);
      radius_words[2 * i + 1] = load_le64(p + 16);
      angle_words[2 * i + 1] = load_le64(p + 24);
    }
    radii(radius_words.data(), r.data(), 2 * count);
    cos_plus_sin(angle_words.data(), cs.data(), 2 * count);
    // z1 + z2 = r (cos a + sin a) per pair; (z1 + z2 + z3 + z4) / 2 ~ N(0, 1).
    float* o = out + (lo - first);
    for (uint64_t i = 0; i < count; ++i)
      o[i] = static_cast<float>(half_std * (r[2 * i] * cs[2 * i] + r[2 * i + 1] * cs[2 * i + 1]));
  }
}

void secure_gaussian_noise(float* out, uint64_t n, double std, const RunSecret& secret, uint64_t step, int threads) {
  if (threads <= 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  // Small vectors are not worth a thread; ranges are kept even so each starts on a block.
  const uint64_t per = std::max<uint64_t>(1 << 16, (n / static_cast<uint64_t>(threads) + 1) & ~uint64_t{1});
  std::vector<std::thread> pool;
  for (uint64_t lo = per; lo < n; lo += per)
    pool.emplace_back([=, &secret] { secure_gaussian_fill(out + lo, lo, std::min(per, n - lo), std, secret, step); });
  secure_gaussian_fill(out, 0, std::min(per, n), std, secret, step);
  for (auto& t : pool) t.join();
}

NoisePrefetcher::NoisePrefetcher(const RunSecret& secret, uint64_t numel, double std, int threads)
    : secret_(secret), numel_(numel), std_(std), threads_(threads), thread_([this] { worker(); }) {}

NoisePrefetcher::~NoisePrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void NoisePrefetcher::prefetch(uint64_t step) {
  std::unique_lock<std::mutex> lock(mu_);
  // One request at a time: wait until the worker has finished a request in progress.
  cv_.wait(lock, [&] { return !requested_ || ready_; });
  step_ = step;
  requested_ = true;
  ready_ = false;
  cv_.notify_all();
}

std::vector<float> NoisePrefetcher::take(uint64_t step) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !requested_ || ready_; });
  if (requested_ && step_ == step) {
    requested_ = ready_ = false;
    return std::move(buffer_);
  }
  requested_ = ready_ = false;
  lock.unlock();
  std::vector<float> noise(numel_);
  secure_gaussian_noise(noise.data(), numel_, std_, secret_, step, threads_);
  return noise;
}

void NoisePrefetcher::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || (requested_ && !ready_); });
    if (stop_) return;
    const uint64_t step = step_;
    lock.unlock();
    std::vector<float> noise(numel_);
    secure_gaussian_noise(noise.data(), numel_, std_, secret_, step, threads_);
    lock.lock();
    buffer_ = std::move(noise);
    ready_ = true;
    cv_.notify_all();
  }
}

}  // namespace vardp::dp
