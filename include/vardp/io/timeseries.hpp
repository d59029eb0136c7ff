// Appendable metric time series: /<group>/<name>/step (int64) and /<group>/<name>/value
// (float64), chunked and extendible; flushed on demand so a crashed run keeps what it logged.
#pragma once
#include <map>
#include <string>

#include "vardp/io/h5.hpp"

namespace vardp::io {

class TimeSeriesWriter {
 public:
  // `loc` is a file or group; series are created under `group` on first use.
  TimeSeriesWriter(hid_t loc, std::string group = "metrics");
  void append(const std::string& name, int64_t step, double value);
  void flush();

 private:
  struct Series {
    H5Handle step;
    H5Handle value;
    hsize_t size = 0;
  };
  Series& series(const std::string& name);
  hid_t loc_;
  std::string group_;
  std::map<std::string, Series> series_;
};

}  // namespace vardp::io
