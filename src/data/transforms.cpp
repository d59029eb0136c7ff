#include "vardp/data/transforms.hpp"

#include <array>
#include <cmath>

#include "vardp/data/resize.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::data {

ViewParams draw_train_view(uint64_t seed, int64_t step, int64_t example, int64_t view, int stored,
                           int crop, bool hflip) {
  VARDP_CHECK(crop > 0 && crop <= stored, "view crop ", crop, " does not fit the stored size ",
              stored);
  rng::Stream stream(seed, rng::Purpose::view, uint64_t(step), uint64_t(example), uint64_t(view));
  ViewParams p;
  const uint64_t range = uint64_t(stored - crop) + 1;
  p.top = int(stream.below(range));
  p.left = int(stream.below(range));
  p.flip = hflip && (stream.next_u32() & 1u) != 0;
  return p;
}

ViewParams center_view(int stored, int crop) {
  VARDP_CHECK(crop > 0 && crop <= stored, "view crop ", crop, " does not fit the stored size ",
              stored);
  ViewParams p;
  p.top = p.left = center_crop_offset(stored, crop);
  return p;
}

void render_view(const uint8_t* hwc, int stored, const ViewParams& p, int crop, float* chw) {
  // 256 entries: the float ops of ToTensor (u / 255.f) and x + x - 1 done once per value.
  static const auto kTable = [] {
    std::array<float, 256> t{};
    for (int u = 0; u < 256; ++u) {
      const float v = float(u) / 255.0f;
      t[size_t(u)] = (v + v) + -1.0f;
    }
    return t;
  }();
  const size_t plane = size_t(crop) * crop;
  for (int y = 0; y < crop; ++y) {
    const uint8_t* src = hwc + (size_t(p.top + y) * stored + size_t(p.left)) * 3;
    for (int x = 0; x < crop; ++x) {
      const int sx = p.flip ? crop - 1 - x : x;
      const uint8_t* px = src + size_t(sx) * 3;
      const size_t o = size_t(y) * crop + size_t(x);
      chw[o] = kTable[px[0]];
      chw[plane + o] = kTable[px[1]];
      chw[2 * plane + o] = kTable[px[2]];
    }
  }
}

}  // namespace vardp::data
