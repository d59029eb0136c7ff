// VAR's image transforms on stored S x S images (utils/data.py of FoundationVision/VAR):
// training view = random R x R crop (+ optional horizontal flip), evaluation = centre crop, both
// mapped to [-1, 1] as x/255*2-1 in float32 CHW. The crop/flip of view v of example i at step t
// is a pure function of (seed, t, i, v) through rng::Stream(seed, Purpose::view, t, i, v), so
// every rank computing that view gets the same pixels (ARCHITECTURE invariant 6).
#pragma once
#include <cstdint>

namespace vardp::data {

struct ViewParams {
  int top = 0;
  int left = 0;
  bool flip = false;
};

// Draw order on the stream: top = below(S-R+1), left = below(S-R+1), then flip = (next_u32 & 1)
// when hflip is on (no draw otherwise). Never reorder: views would change.
ViewParams draw_train_view(uint64_t seed, int64_t step, int64_t example, int64_t view,
                           int stored, int crop, bool hflip);
// torchvision CenterCrop offsets (round half to even), no flip.
ViewParams center_view(int stored, int crop);

// Writes the view as float32 CHW (3 x crop x crop) in [-1, 1]: v = u/255 (float32), out = v+v-1,
// the same float operations as ToTensor() followed by VAR's normalize_01_into_pm1.
void render_view(const uint8_t* hwc, int stored, const ViewParams& p, int crop, float* chw);

}  // namespace vardp::data
