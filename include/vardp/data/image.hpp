// 8-bit images in memory and the decoders behind `vardp prepare`. JPEG goes through
// libjpeg-turbo and PNG through libpng: the standard, well-kept decoders Debian ships (the same
// libjpeg-turbo that Debian's PIL links, so decoded pixels equal PIL's), with the colour
// conversions done here so that CMYK/YCCK and grayscale JPEGs (present in CUB and Stanford Cars)
// and palette/alpha/16-bit PNGs all come out as 8-bit RGB like PIL's `Image.convert("RGB")`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vardp::data {

// Row-major, channel-interleaved 8-bit image (HWC).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;  // 3 (RGB) for decoded images; 1..4 accepted by the resizer
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int w, int h, int c) : width(w), height(h), channels(c), pixels(size_t(w) * h * c) {}
  size_t row_bytes() const { return size_t(width) * channels; }
  uint8_t* row(int y) { return pixels.data() + size_t(y) * row_bytes(); }
  const uint8_t* row(int y) const { return pixels.data() + size_t(y) * row_bytes(); }
  bool empty() const { return width == 0 || height == 0; }
};

enum class ImageFormat { unknown, jpeg, png };

// Recognises a format by its magic bytes (file extensions lie: some Oxford-IIIT Pet ".jpg"
// files are PNGs).
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

// Decodes JPEG or PNG bytes into 8-bit RGB. `name` (usually the file path) is the context of
// every error. Throws vardp::Error for unknown formats and corrupt or truncated data.
Image decode_image(const uint8_t* data, size_t size, const std::string& name);
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);
Image decode_png(const uint8_t* data, size_t size, const std::string& name);

// Reads and decodes a file; a missing or unreadable file is an Error naming the path.
Image decode_image_file(const std::string& path);
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Writers, used by tests to build dataset trees in their official layouts and by tools that
// dump views. JPEG input colour space: 3 channels = RGB, 1 = grayscale, 4 = CMYK (written with
// the Adobe marker and Adobe's inverted polarity, as Photoshop and libjpeg do).
void write_jpeg(const std::string& path, const Image& image, int quality = 90);
void write_png(const std::string& path, const Image& image);

// Per-channel mean absolute difference of two images of the same shape.
double mean_abs_diff(const Image& a, const Image& b);

}  // namespace vardp::data
