// Format sniffing, file reading and small image utilities shared by the decoders.
#include "vardp/data/image.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "vardp/util/error.hpp"

namespace vardp::data {

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::jpeg;
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::png;
  return ImageFormat::unknown;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::jpeg: return decode_jpeg(data, size, name);
    case ImageFormat::png: return decode_png(data, size, name);
    case ImageFormat::unknown: break;
  }
  if (size == 0) throw Error("empty image file", name);
  throw Error("not a JPEG or PNG image (unrecognised leading bytes)", name);
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(str("cannot open file: ", std::strerror(errno)), path);
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.insert(bytes.end(), buf, buf + n);
  if (std::ferror(f.get())) throw Error("read error", path);
  return bytes;
}

Image decode_image_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

double mean_abs_diff(const Image& a, const Image& b) {
  VARDP_CHECK(a.width == b.width && a.height == b.height && a.channels == b.channels,
              "mean_abs_diff: shapes differ (", a.width, "x", a.height, "x", a.channels, " vs ",
              b.width, "x", b.height, "x", b.channels, ")");
  if (a.pixels.empty()) return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / double(a.pixels.size());
}

}  // namespace vardp::data
