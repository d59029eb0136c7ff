// PIL-compatible antialiased Lanczos resampling. The facts reproduced here (from Pillow's
// libImaging/Resample.c): filter = sinc(x)*sinc(x/3) on [-3, 3); scale = in/out and
// filterscale = max(scale, 1); support = 3*filterscale; output pixel i is centred at
// (i + 0.5)*scale in input coordinates, its window is [int(center - support + 0.5),
// int(center + support + 0.5)) clipped to the image, weights filter((j - center + 0.5)/filterscale)
// normalised to sum 1, then quantised as int(w * 2^22 +- 0.5); accumulation starts at 2^21 and
// the result is (acc >> 22) clipped to [0, 255]. Horizontal pass first, over only the input
// rows the vertical pass needs.
#include "vardp/data/resize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kLanczosSupport = 3.0;

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos3(double x) {
  if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3.0);
  return 0.0;
}

// Integer coefficients of the output positions [first, first+count) of a 1-D resize.
struct Coefficients {
  int ksize = 0;
  std::vector<int> start;    // first input index used by each output
  std::vector<int> length;   // number of input indices used
  std::vector<int32_t> k;    // count x ksize
};

Coefficients compute_coefficients(int in_size, int out_size, int first, int count) {
  Coefficients c;
  const double scale = double(float(in_size) - 0.0f) / out_size;  // PIL: (double)(in1 - in0)
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kLanczosSupport * filterscale;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.start.resize(size_t(count));
  c.length.resize(size_t(count));
  c.k.assign(size_t(count) * c.ksize, 0);
  std::vector<double> w(size_t(c.ksize));
  const double ss = 1.0 / filterscale;
  for (int i = 0; i < count; ++i) {
    const int xx = first + i;
    const double center = 0.0 + (xx + 0.5) * scale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[size_t(x)] = lanczos3((x + xmin - center + 0.5) * ss);
      ww += w[size_t(x)];
    }
    int32_t* k = &c.k[size_t(i) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      k[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits))
                   : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.start[size_t(i)] = xmin;
    c.length[size_t(i)] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor division
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

Image resize_lanczos_window(const Image& in, int out_w, int out_h, int x0, int y0, int w, int h) {
  VARDP_CHECK(!in.empty() && in.channels >= 1 && in.channels <= 4,
              "resize: empty image or unsupported channel count ", in.channels);
  VARDP_CHECK(out_w > 0 && out_h > 0 && w > 0 && h > 0 && x0 >= 0 && y0 >= 0 &&
                  x0 + w <= out_w && y0 + h <= out_h,
              "resize: window [", x0, ",", x0 + w, ")x[", y0, ",", y0 + h,
              ") outside the output ", out_w, "x", out_h);
  const int ch = in.channels;
  const bool need_h = out_w != in.width;
  const bool need_v = out_h != in.height;

  // Vertical coefficients decide which input rows the horizontal pass has to produce.
  Coefficients cv;
  int row_first = y0, row_last = y0 + h;  // input rows needed (when no vertical pass)
  if (need_v) {
    cv = compute_coefficients(in.height, out_h, y0, h);
    row_first = cv.start.front();
    row_last = cv.start.back() + cv.length.back();
    for (int i = 0; i < h; ++i) row_first = std::min(row_first, cv.start[size_t(i)]);
    for (int i = 0; i < h; ++i)
      row_last = std::max(row_last, cv.start[size_t(i)] + cv.length[size_t(i)]);
  }

  // Horizontal pass: rows [row_first, row_last) of the input -> w columns, 8-bit like PIL.
  Image tmp;
  if (need_h) {
    const Coefficients chz = compute_coefficients(in.width, out_w, x0, w);
    tmp = Image(w, row_last - row_first, ch);
    for (int y = row_first; y < row_last; ++y) {
      const uint8_t* src = in.row(y);
      uint8_t* dst = tmp.row(y - row_first);
      for (int x = 0; x < w; ++x) {
        const int32_t* k = &chz.k[size_t(x) * chz.ksize];
        const uint8_t* s = src + size_t(chz.start[size_t(x)]) * ch;
        const int len = chz.length[size_t(x)];
        if (ch == 3) {  // the common case, three accumulators in one pass
          int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
          for (int j = 0; j < len; ++j, s += 3) {
            a0 += int32_t(s[0]) * k[j];
            a1 += int32_t(s[1]) * k[j];
            a2 += int32_t(s[2]) * k[j];
          }
          dst[size_t(x) * 3] = clip8(a0);
          dst[size_t(x) * 3 + 1] = clip8(a1);
          dst[size_t(x) * 3 + 2] = clip8(a2);
          continue;
        }
        for (int c = 0; c < ch; ++c) {
          int32_t acc = 1 << (kPrecisionBits - 1);
          for (int j = 0; j < len; ++j) acc += int32_t(s[size_t(j) * ch + c]) * k[j];
          dst[size_t(x) * ch + c] = clip8(acc);
        }
      }
    }
  } else {
    tmp = crop(in, x0, row_first, w, row_last - row_first);
  }

  if (!need_v) return crop(tmp, 0, y0 - row_first, w, h);

  // Vertical pass over the intermediate (its row 0 is input row row_first).
  Image out(w, h, ch);
  const size_t stride = tmp.row_bytes();
  std::vector<int32_t> acc(stride);  // one output row; the inner loop runs along the row
  for (int y = 0; y < h; ++y) {
    const int32_t* k = &cv.k[size_t(y) * cv.ksize];
    const int start = cv.start[size_t(y)] - row_first;
    const int len = cv.length[size_t(y)];
    std::fill(acc.begin(), acc.end(), int32_t(1) << (kPrecisionBits - 1));
    for (int j = 0; j < len; ++j) {
      const uint8_t* s = tmp.pixels.data() + size_t(start + j) * stride;
      const int32_t kj = k[j];
      for (size_t i = 0; i < stride; ++i) acc[i] += int32_t(s[i]) * kj;
    }
    uint8_t* dst = out.row(y);
    for (size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

void shorter_side_size(int width, int height, int s, int* out_w, int* out_h) {
  VARDP_CHECK(width > 0 && height > 0 && s > 0, "shorter_side_size: bad sizes");
  if (width <= height) {
    *out_w = s;
    *out_h = int(double(int64_t(s) * height) / width);
  } else {
    *out_h = s;
    *out_w = int(double(int64_t(s) * width) / height);
  }
}

namespace {
// Python 3 round(): half to even.
int round_half_even(double v) { return int(std::nearbyint(v)); }
}  // namespace

int center_crop_offset(int size, int crop_size) {
  return round_half_even((size - crop_size) / 2.0);
}

int mid_resolution(int image_size, double ratio) { return round_half_even(ratio * image_size); }

Image resize_to_stored_square(const Image& in, int s) {
  int rw = 0, rh = 0;
  shorter_side_size(in.width, in.height, s, &rw, &rh);
  const int x0 = center_crop_offset(rw, s);
  const int y0 = center_crop_offset(rh, s);
  return resize_lanczos_window(in, rw, rh, x0, y0, s, s);
}

Image pad_center(const Image& in, int w, int h, uint8_t value) {
  VARDP_CHECK(w >= in.width && h >= in.height, "pad_center: target smaller than the image");
  Image out(w, h, in.channels);
  std::fill(out.pixels.begin(), out.pixels.end(), value);
  const int ox = (w - in.width) / 2, oy = (h - in.height) / 2;
  for (int y = 0; y < in.height; ++y)
    std::copy(in.row(y), in.row(y) + in.row_bytes(), out.row(y + oy) + size_t(ox) * in.channels);
  return out;
}

Image crop(const Image& in, int x0, int y0, int w, int h) {
  VARDP_CHECK(x0 >= 0 && y0 >= 0 && w >= 0 && h >= 0 && x0 + w <= in.width &&
                  y0 + h <= in.height,
              "crop: window outside the image");
  Image out(w, h, in.channels);
  for (int y = 0; y < h; ++y) {
    const uint8_t* s = in.row(y0 + y) + size_t(x0) * in.channels;
    std::copy(s, s + out.row_bytes(), out.row(y));
  }
  return out;
}

std::string stored_square_rule(int s) {
  return str("shorter side to ", s,
             " px (longer side int(", s, "*long/short)) with PIL-compatible antialiased Lanczos-3 "
             "(Image.resize LANCZOS), then the centred ", s, "x", s,
             " square (offset round-half-even((long-", s, ")/2)); RGB uint8 HWC");
}

}  // namespace vardp::data
