#include "vardp/dp/secure_noise.hpp"

#include <algorithm>
#include <math.h>  // sincos (GNU)

#include <cmath>

namespace vardp::dp {
namespace {

constexpr uint64_t kBytesPerCoordinate = 32;  // four 64-bit words: two Box-Muller pairs
constexpr uint64_t kChunk = 2048;             // coordinates per keystream buffer (64 KiB)

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t w = 0;
  for (int b = 7; b >= 0; --b) w = (w << 8) | p[b];
  return w;
}

}  // namespace

void secure_gaussian_fill(float* out, uint64_t first, uint64_t n, double std, const RunSecret& secret, uint64_t step) {
  const SecretStream stream(secret, SecretPurpose::gaussian_noise, step);
  std::vector<uint8_t> buf((kChunk + 1) * kBytesPerCoordinate);
  const double half_std = 0.5 * std;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (uint64_t lo = first; lo < first + n; lo += kChunk) {
    const uint64_t count = std::min(kChunk, first + n - lo);
    // Coordinate j's bytes are [32 j, 32 j + 32): block j / 2, half j % 2.
    const uint64_t skip = (lo % 2) * kBytesPerCoordinate;
    stream.fill(buf.data(), skip + count * kBytesPerCoordinate, lo / 2);
    const uint8_t* p = buf.data() + skip;
    float* o = out + (lo - first);
    for (uint64_t i = 0; i < count; ++i, p += kBytesPerCoordinate) {
      // 1 - u is in (0, 1]: the log is finite; u2 gives the angle.
      const double r1 = std::sqrt(-2.0 * std::log(1.0 - uniform53(load_le64(p))));
      const double a1 = kTwoPi * uniform53(load_le64(p + 8));
      const double r2 = std::sqrt(-2.0 * std::log(1.0 - uniform53(load_le64(p + 16))));
      const double a2 = kTwoPi * uniform53(load_le64(p + 24));
      double s1, c1, s2, c2;
      ::sincos(a1, &s1, &c1);  // glibc: one range reduction for both
      ::sincos(a2, &s2, &c2);
      const double z = r1 * (c1 + s1) + r2 * (c2 + s2);
      o[i] = static_cast<float>(half_std * z);
    }
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
