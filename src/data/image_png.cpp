// PNG through libpng's classic API, with transforms chosen to give what PIL's
// `Image.open(...).convert("RGB")` gives: palette expanded (transparency ignored), gray
// replicated, alpha dropped (not composited), 16-bit reduced to the high byte.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "vardp/data/image.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

struct MemoryReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

struct PngErrorState {
  char message[256];
};

extern "C" void png_read_from_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "unexpected end of PNG data (truncated file)");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

extern "C" void png_on_error(png_structp png, png_const_charp msg) {
  auto* state = static_cast<PngErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

extern "C" void png_on_warning(png_structp, png_const_charp) {}

bool decode_png_raw(MemoryReader* reader, Image* out, std::vector<png_bytep>* rows,
                    PngErrorState* state) {
  state->message[0] = '\0';
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, png_on_error,
                                           png_on_warning);
  if (!png) {
    std::snprintf(state->message, sizeof state->message, "png_create_read_struct failed");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(state->message, sizeof state->message, "png_create_info_struct failed");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, reader, png_read_from_memory);
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info);
  const png_uint_32 h = png_get_image_height(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (double(w) * h > 4.0e8) png_error(png, "image too large");
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8)
    png_error(png, "unsupported PNG layout after conversion");
  out->width = int(w);
  out->height = int(h);
  out->channels = 3;
  out->pixels.assign(size_t(w) * h * 3, 0);
  rows->resize(h);
  for (png_uint_32 y = 0; y < h; ++y) (*rows)[y] = out->pixels.data() + size_t(y) * w * 3;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  MemoryReader reader{data, size, 0};
  Image out;
  std::vector<png_bytep> rows;
  PngErrorState state;
  if (!decode_png_raw(&reader, &out, &rows, &state))
    throw Error(str("corrupt or unreadable PNG: ", state.message), name);
  return out;
}

namespace {

bool encode_png_raw(FILE* f, const Image& image, std::vector<png_bytep>* rows,
                    PngErrorState* state) {
  state->message[0] = '\0';
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, state, png_on_error,
                                            png_on_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, f);
  const int color = image.channels == 1   ? PNG_COLOR_TYPE_GRAY
                    : image.channels == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
                    : image.channels == 3 ? PNG_COLOR_TYPE_RGB
                                          : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(png, info, png_uint_32(image.width), png_uint_32(image.height), 8, color,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  rows->resize(size_t(image.height));
  for (int y = 0; y < image.height; ++y)
    (*rows)[size_t(y)] = const_cast<png_bytep>(image.row(y));
  png_write_image(png, rows->data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  VARDP_CHECK(image.channels >= 1 && image.channels <= 4, "write_png: unsupported channel count ",
              image.channels, " for ", path);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error("cannot create PNG file", path);
  std::vector<png_bytep> rows;
  PngErrorState state;
  const bool ok = encode_png_raw(f, image, &rows, &state);
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw Error(str("PNG encoding failed: ", state.message), path);
}

}  // namespace vardp::data
