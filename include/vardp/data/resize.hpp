// Resizing exactly like PIL's `Image.resize(size, Image.LANCZOS)` (Pillow libImaging/Resample.c):
// separable two-pass convolution (horizontal pass into an 8-bit intermediate, then vertical),
// Lanczos-3 kernel whose support is widened by the down-scaling factor (antialiasing),
// per-output-pixel coefficient normalisation, coefficients quantised to 22 fractional bits and
// rounded/clipped like PIL. The result equals PIL's bit for bit on the same 8-bit input.
//
// On top of it, the geometry of VAR's pipeline (torchvision Resize(int) + CenterCrop): the
// shorter side goes to S, the longer to int(S * long / short), crops are centred with Python's
// round-half-to-even.
#pragma once
#include <cstdint>
#include <string>

#include "vardp/data/image.hpp"

namespace vardp::data {

// Resizes `in` to out_w x out_h and returns only the window [x0, x0+w) x [y0, y0+h) of that
// full-size result. Pixels of the window are identical to the corresponding pixels of the full
// resize (each output pixel depends only on its own coefficients), so crop-after-resize costs
// only the window.
Image resize_lanczos_window(const Image& in, int out_w, int out_h, int x0, int y0, int w, int h);
inline Image resize_lanczos(const Image& in, int out_w, int out_h) {
  return resize_lanczos_window(in, out_w, out_h, 0, 0, out_w, out_h);
}

// torchvision's Resize(S) output size: shorter side S, longer side int(S * long / short).
void shorter_side_size(int width, int height, int s, int* out_w, int* out_h);

// torchvision's CenterCrop offset: int(round((size - crop) / 2.0)) with round-half-to-even.
int center_crop_offset(int size, int crop);

// VAR's stored ("mid") resolution: round(ratio * image_size) with Python's round (half to even).
int mid_resolution(int image_size, double ratio = 1.125);

// The stored image of `vardp prepare`: shorter side to S with PIL Lanczos, then the centred
// S x S square of the resized image (see docs/formats/dataset.md for why the longer side is cut).
Image resize_to_stored_square(const Image& in, int s);

// Zero-pads (centred; extra pixel on the bottom/right) to w x h. Used for 28 -> 32 MNIST-style
// images, whose background is black.
Image pad_center(const Image& in, int w, int h, uint8_t value = 0);

// Copies a window.
Image crop(const Image& in, int x0, int y0, int w, int h);

// A one-line description stored in every dataset file (`resize_rule` attribute).
std::string stored_square_rule(int s);

}  // namespace vardp::data
