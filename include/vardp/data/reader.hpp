// Serving (example, view) units from a dataset file: a reader that reads only the rows a request
// needs (each example once, however many of its views are asked for) and renders the views, and
// a prefetcher that does this on a background thread, a bounded number of requests ahead, so
// that reading and cropping overlap with compute.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vardp/data/dataset_file.hpp"
#include "vardp/io/h5.hpp"

namespace vardp::data {

struct Unit {
  int64_t example = 0;  // row of the dataset file
  int64_t view = 0;     // 0..k-1
};

struct ViewSpec {
  bool train = true;    // random crop (+flip); false: centre crop, views identical
  int image_size = 256; // crop side R
  bool hflip = false;
  uint64_t seed = 0;
  int64_t step = 0;
};

struct Batch {
  std::vector<Unit> units;
  std::vector<int64_t> labels;  // one per unit
  std::vector<float> pixels;    // units.size() x 3 x R x R, values in [-1, 1]
  int image_size = 0;
  size_t size() const { return units.size(); }
};

class DatasetReader {
 public:
  explicit DatasetReader(const std::string& path);
  const DatasetInfo& info() const { return info_; }
  int64_t size() const { return info_.num_examples; }
  int64_t resolution() const { return info_.resolution; }
  const std::vector<int64_t>& labels() const { return labels_; }

  // Stored rows (S*S*3 bytes each, HWC) of `examples`, in that order (repeats allowed).
  std::vector<uint8_t> read_rows(const std::vector<int64_t>& examples) const;
  Batch make_batch(const std::vector<Unit>& units, const ViewSpec& spec) const;

 private:
  io::H5File file_;
  DatasetInfo info_;
  std::vector<int64_t> labels_;
  mutable std::mutex mutex_;  // one HDF5 read at a time through this handle
};

class Prefetcher {
 public:
  // depth: finished batches held at most (memory bound: depth + 1 batches). With an HDF5
  // library that is not thread-safe, batches are made synchronously in submit().
  Prefetcher(std::shared_ptr<const DatasetReader> reader, size_t depth = 2);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  void submit(std::vector<Unit> units, const ViewSpec& spec);
  // The batch of the oldest request not yet taken (FIFO); rethrows that request's error.
  Batch next();
  size_t outstanding() const;  // submitted and not yet taken
  bool background() const { return worker_.joinable(); }

 private:
  struct Request {
    std::vector<Unit> units;
    ViewSpec spec;
  };
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  void run();

  std::shared_ptr<const DatasetReader> reader_;
  size_t depth_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Request> requests_;
  std::deque<Result> ready_;
  size_t in_flight_ = 0;  // taken by the worker, result not yet queued
  bool stop_ = false;
  std::thread worker_;
};

// Whether the HDF5 library in use was built thread-safe (Debian's is).
bool hdf5_threadsafe();

}  // namespace vardp::data
