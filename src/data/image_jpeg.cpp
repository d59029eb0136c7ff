// JPEG through libjpeg-turbo. libjpeg reports fatal errors through a callback that must not
// return, so the decoder and encoder use the documented setjmp/longjmp protocol inside plain C
// style functions (no C++ objects with destructors live in the frames longjmp crosses) and turn
// failures into vardp::Error afterwards.
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>

#include "vardp/data/image.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

struct ErrorState {
  jpeg_error_mgr mgr;  // first member: libjpeg hands us a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

extern "C" void on_error_exit(j_common_ptr cinfo) {
  auto* state = reinterpret_cast<ErrorState*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, state->message);
  std::longjmp(state->jump, 1);
}

// Warnings (level -1) are counted. "Premature end of JPEG file" means the file is truncated:
// libjpeg would pad the image with grey, PIL refuses such a file, and so do we. Other warnings
// (extraneous bytes, restart-marker damage) are tolerated like PIL does.
extern "C" void on_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) {
    auto* state = reinterpret_cast<ErrorState*>(cinfo->err);
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) state->truncated = true;
    cinfo->err->num_warnings++;
  }
}

// PIL's CMYK -> RGB (Convert.c cmyk2rgb): R = (255-K) - round(C*(255-K)/255), with PIL's
// integer rounding of the product.
inline uint8_t cmyk_channel(int c, int k) {
  const int nk = 255 - k;
  int tmp = c * nk + 128;
  const int prod = ((tmp >> 8) + tmp) >> 8;
  const int v = nk - prod;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Returns false on a libjpeg error (message in state). `out` and `cmyk_row` belong to the caller,
// so longjmp skips no destructor.
bool decode_jpeg_raw(const uint8_t* data, size_t size, Image* out, std::vector<uint8_t>* cmyk_row,
                     ErrorState* state) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&state->mgr);
  state->mgr.error_exit = on_error_exit;
  state->mgr.emit_message = on_emit_message;
  state->truncated = false;
  state->message[0] = '\0';
  if (setjmp(state->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  // Grayscale -> RGB replicates the channel, exactly like PIL's L -> RGB.
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int w = static_cast<int>(cinfo.output_width);
  const int h = static_cast<int>(cinfo.output_height);
  if (static_cast<double>(w) * h > 4.0e8) {
    std::snprintf(state->message, sizeof state->message, "image too large (%dx%d)", w, h);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  out->width = w;
  out->height = h;
  out->channels = 3;
  out->pixels.assign(size_t(w) * h * 3, 0);
  if (cmyk) cmyk_row->assign(size_t(w) * 4, 0);
  // Adobe (Photoshop) CMYK JPEGs store inverted values; PIL always assumes that polarity,
  // libjpeg tells us whether the Adobe marker is present. We honour the marker (nearly every
  // CMYK JPEG has it, so both agree on real data).
  const bool inverted = cinfo.saw_Adobe_marker;
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = static_cast<int>(cinfo.output_scanline);
    uint8_t* dst = out->pixels.data() + size_t(y) * w * 3;
    JSAMPROW row = cmyk ? cmyk_row->data() : dst;
    jpeg_read_scanlines(&cinfo, &row, 1);
    if (cmyk) {
      const uint8_t* s = cmyk_row->data();
      for (int x = 0; x < w; ++x, s += 4, dst += 3) {
        const int c = inverted ? 255 - s[0] : s[0];
        const int m = inverted ? 255 - s[1] : s[1];
        const int yy = inverted ? 255 - s[2] : s[2];
        const int k = inverted ? 255 - s[3] : s[3];
        dst[0] = cmyk_channel(c, k);
        dst[1] = cmyk_channel(m, k);
        dst[2] = cmyk_channel(yy, k);
      }
    }
    if (state->truncated) break;  // the rest would be synthetic grey
  }
  if (!state->truncated) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

bool encode_jpeg_raw(const Image& image, int quality, const std::vector<uint8_t>& converted,
                     unsigned char** buffer, unsigned long* size, ErrorState* state) {
  jpeg_compress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&state->mgr);
  state->mgr.error_exit = on_error_exit;
  state->message[0] = '\0';
  if (setjmp(state->jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = image.channels;
  cinfo.in_color_space =
      image.channels == 1 ? JCS_GRAYSCALE : (image.channels == 4 ? JCS_CMYK : JCS_RGB);
  jpeg_set_defaults(&cinfo);  // CMYK input: CMYK output with an Adobe marker
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = image.row_bytes();
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(converted.data()) + cinfo.next_scanline * stride;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  Image out;
  std::vector<uint8_t> cmyk_row;
  ErrorState state;
  if (!decode_jpeg_raw(data, size, &out, &cmyk_row, &state))
    throw Error(str("corrupt or unreadable JPEG: ", state.message), name);
  if (state.truncated) throw Error("truncated JPEG (premature end of file)", name);
  return out;
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  VARDP_CHECK(image.channels == 1 || image.channels == 3 || image.channels == 4,
              "write_jpeg: unsupported channel count ", image.channels, " for ", path);
  std::vector<uint8_t> data = image.pixels;
  if (image.channels == 4)
    for (auto& v : data) v = static_cast<uint8_t>(255 - v);  // Adobe polarity
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  ErrorState state;
  const bool ok = encode_jpeg_raw(image, quality, data, &buffer, &size, &state);
  if (!ok) {
    std::free(buffer);
    throw Error(str("JPEG encoding failed: ", state.message), path);
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  const bool written = f && std::fwrite(buffer, 1, size, f) == size;
  const bool closed = f && std::fclose(f) == 0;
  std::free(buffer);
  if (!written || !closed) throw Error("cannot write JPEG file", path);
}

}  // namespace vardp::data
