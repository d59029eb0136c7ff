#include "vardp/data/reader.hpp"

#include <algorithm>
#include <cstring>

#include "vardp/data/transforms.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {

bool hdf5_threadsafe() {
  hbool_t ts = 0;
  return H5is_library_threadsafe(&ts) >= 0 && ts;
}

DatasetReader::DatasetReader(const std::string& path) : file_(io::H5File::open(path)) {
  info_ = read_dataset_info(file_.id(), path);
  labels_ = io::h5_read<int64_t>(file_.id(), "labels");
  for (int64_t l : labels_)
    if (l < 0 || l >= info_.num_classes)
      throw Error(str("label ", l, " out of range 0..", info_.num_classes - 1), path + ":/labels");
}

std::vector<uint8_t> DatasetReader::read_rows(const std::vector<int64_t>& examples) const {
  const size_t row = size_t(info_.resolution) * size_t(info_.resolution) * 3;
  std::vector<int64_t> uniq = examples;
  std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  for (int64_t e : uniq)
    if (e < 0 || e >= info_.num_examples)
      throw Error(str("example ", e, " out of range 0..", info_.num_examples - 1), info_.path);
  // Runs of consecutive rows are read with one call (at most kMaxRun rows at a time).
  constexpr size_t kMaxRun = 64;
  std::vector<uint8_t> uniq_rows(uniq.size() * row);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < uniq.size();) {
      size_t n = 1;
      while (i + n < uniq.size() && n < kMaxRun && uniq[i + n] == uniq[i] + int64_t(n)) ++n;
      const std::vector<uint8_t> rows =
          io::h5_read_rows<uint8_t>(file_.id(), "images", hsize_t(uniq[i]), hsize_t(n));
      VARDP_CHECK(rows.size() == n * row, info_.path, ": short read of rows ", uniq[i], "..",
                  uniq[i] + int64_t(n));
      std::memcpy(uniq_rows.data() + i * row, rows.data(), rows.size());
      i += n;
    }
  }
  std::vector<uint8_t> out(examples.size() * row);
  for (size_t k = 0; k < examples.size(); ++k) {
    const size_t u = size_t(std::lower_bound(uniq.begin(), uniq.end(), examples[k]) - uniq.begin());
    std::memcpy(out.data() + k * row, uniq_rows.data() + u * row, row);
  }
  return out;
}

Batch DatasetReader::make_batch(const std::vector<Unit>& units, const ViewSpec& spec) const {
  const int s = int(info_.resolution);
  const int r = spec.image_size;
  if (r <= 0 || r > s)
    throw Error(str("image size ", r, " does not fit the stored resolution ", s), info_.path);
  std::vector<int64_t> examples;
  examples.reserve(units.size());
  for (const auto& u : units) examples.push_back(u.example);
  // Each distinct example is read once even when several of its views are requested.
  std::vector<int64_t> uniq = examples;
  std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  const std::vector<uint8_t> rows = read_rows(uniq);
  const size_t row = size_t(s) * s * 3;
  const size_t plane = size_t(3) * r * r;
  Batch b;
  b.units = units;
  b.image_size = r;
  b.labels.reserve(units.size());
  b.pixels.resize(units.size() * plane);
  for (size_t k = 0; k < units.size(); ++k) {
    const Unit& u = units[k];
    const size_t idx = size_t(std::lower_bound(uniq.begin(), uniq.end(), u.example) - uniq.begin());
    const ViewParams p = spec.train ? draw_train_view(spec.seed, spec.step, u.example, u.view, s, r,
                                                      spec.hflip)
                                    : center_view(s, r);
    render_view(rows.data() + idx * row, s, p, r, b.pixels.data() + k * plane);
    b.labels.push_back(labels_[size_t(u.example)]);
  }
  return b;
}

Prefetcher::Prefetcher(std::shared_ptr<const DatasetReader> reader, size_t depth)
    : reader_(std::move(reader)), depth_(std::max<size_t>(1, depth)) {
  VARDP_CHECK(reader_ != nullptr, "Prefetcher needs a reader");
  if (hdf5_threadsafe()) worker_ = std::thread([this] { run(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Prefetcher::submit(std::vector<Unit> units, const ViewSpec& spec) {
  if (!worker_.joinable()) {  // synchronous fallback
    Result r;
    try {
      r.batch = reader_->make_batch(units, spec);
    } catch (...) {
      r.error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.push_back(std::move(r));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back({std::move(units), spec});
  }
  cv_.notify_all();
}

Batch Prefetcher::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  VARDP_CHECK(!ready_.empty() || !requests_.empty() || in_flight_ > 0,
              "Prefetcher::next without a submitted request");
  cv_.wait(lock, [this] { return !ready_.empty(); });
  Result r = std::move(ready_.front());
  ready_.pop_front();
  lock.unlock();
  cv_.notify_all();  // room for the worker
  if (r.error) std::rethrow_exception(r.error);
  return std::move(r.batch);
}

size_t Prefetcher::outstanding() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_.size() + in_flight_ + ready_.size();
}

void Prefetcher::run() {
  for (;;) {
    Request req;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || (!requests_.empty() && ready_.size() < depth_); });
      if (stop_) return;
      req = std::move(requests_.front());
      requests_.pop_front();
      ++in_flight_;
    }
    Result r;
    try {
      r.batch = reader_->make_batch(req.units, req.spec);
    } catch (...) {
      r.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(r));
      --in_flight_;
    }
    cv_.notify_all();
  }
}

}  // namespace vardp::data
