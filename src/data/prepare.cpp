// `vardp prepare`. Work split: every rank lists the source identically (small annotation files),
// then images are processed in blocks; item j of a block is decoded by rank j % size (with
// `threads` decoding threads per rank), the decoded S x S rows are all-gathered, and rank 0
// appends the good ones in source order, so the output does not depend on the number of ranks.
// Every failure is agreed on collectively (lowest failing rank's message), so no rank hangs and
// rank 0's AtomicH5File removes the unfinished file.
#include "vardp/data/prepare.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include <jpeglib.h>
#include <png.h>

#include "vardp/data/dataset_file.hpp"
#include "vardp/data/resize.hpp"
#include "vardp/data/sha256.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::data {
namespace {

using Clock = std::chrono::steady_clock;

// Every rank passes its local failure (empty: none). If any rank failed, every rank throws the
// same CollectiveError carrying the lowest failing rank's message.
void agree(dist::Comm& comm, const std::string& message, bool usage = false) {
  const int64_t kind = message.empty() ? 0 : (usage ? 2 : 1);
  if (comm.size() == 1) {
    if (kind) throw CollectiveError(message, {}, usage);
    return;
  }
  const std::vector<int64_t> kinds = comm.all_gather(kind);
  for (int r = 0; r < comm.size(); ++r) {
    if (kinds[size_t(r)] == 0) continue;
    const std::string m = comm.broadcast(message, r);
    throw CollectiveError(m, {}, kinds[size_t(r)] == 2);
  }
}

template <class Fn>
void collectively(dist::Comm& comm, Fn&& fn) {
  std::string message;
  bool usage = false;
  try {
    fn();
  } catch (const UsageError& e) {
    message = e.what();
    usage = true;
  } catch (const std::exception& e) {
    message = e.what();
  }
  agree(comm, message, usage);
}

std::string reason_text(const BadItem& b) { return b.path + ": " + b.reason; }

std::string decoder_versions() {
  return str("libjpeg-turbo (libjpeg API ", JPEG_LIB_VERSION, "), libpng ", PNG_LIBPNG_VER_STRING);
}

// Decodes this rank's items of one block into `rows` (one S*S*3 slot per item it owns).
void decode_block(const SourceDataset& ds, const std::vector<SourceItem>& items, size_t b0,
                  size_t nb, int rank, int size, int s, int threads, uint8_t* rows,
                  int64_t* status, std::vector<std::string>* errors) {
  const size_t row_bytes = size_t(s) * s * 3;
  std::vector<size_t> mine;  // block-relative item indices
  for (size_t j = size_t(rank); j < nb; j += size_t(size)) mine.push_back(j);
  std::atomic<size_t> next{0};
  auto work = [&]() {
    for (size_t k = next++; k < mine.size(); k = next++) {
      const size_t slot = mine[k] / size_t(size);
      const SourceItem& item = items[b0 + mine[k]];
      try {
        const Image img = ds.loader ? ds.loader(item) : decode_image_file(item.path);
        const Image stored = resize_to_stored_square(img, s);
        std::memcpy(rows + slot * row_bytes, stored.pixels.data(), row_bytes);
        status[slot] = 1;
      } catch (const std::exception& e) {
        status[slot] = 0;
        // Errors from the decoders already name the file.
        std::string m = e.what();
        if (m.find(item.path) == std::string::npos) m = item.path + ": " + m;
        (*errors)[slot] = m;
      }
    }
  };
  const int n_threads = std::max(1, std::min<int>(threads, int(mine.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < n_threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

struct SplitWriter {
  io::AtomicH5File file;
  RowAppender images;
  std::vector<int64_t> labels;
  std::vector<int64_t> source_ids;
  Sha256 sha;
  SplitWriter(const std::string& path, int s, int compression)
      : file(path), images(file.id(), "images", {hsize_t(s), hsize_t(s), 3}, compression) {}
};

void write_attributes(hid_t f, const PrepareOptions& o, const SourceDataset& ds,
                      const SourceSplit& split, int s, const std::vector<int64_t>& original_ids,
                      const std::string& sha, const std::vector<BadItem>& skipped, int world) {
  io::Provenance p;
  p.format = kDatasetFormat;
  p.format_version = kDatasetFormatVersion;
  p.config_toml = prepare_options_toml(o);
  p.world_size = world;
  io::write_provenance(f, p);
  io::h5_write_attr(f, "num_classes", int64_t(ds.class_names.size()));
  io::h5_write_attr(f, "class_names", ds.class_names);
  io::h5_write_attr(f, "original_class_ids", original_ids);
  io::h5_write_attr(f, "source", ds.format);
  io::h5_write_attr(f, "source_root", ds.root);
  io::h5_write_attr(f, "split", split.name);
  io::h5_write_attr(f, "split_rule", ds.split_rule);
  io::h5_write_attr(f, "image_size", int64_t(o.image_size));
  io::h5_write_attr(f, "resolution", int64_t(s));
  io::h5_write_attr(f, "resize_rule", stored_square_rule(s));
  io::h5_write_attr(f, "decoder", decoder_versions());
  io::h5_write_attr(f, "images_sha256", sha);
  io::h5_write_attr(f, "images_sha256_rule",
                    "SHA-256 of /images as raw uint8 bytes in C (row-major) order");
  io::h5_write_attr(f, "num_skipped", int64_t(skipped.size()));
  io::h5_write_attr(f, "command_line", o.command_line);
  if (!skipped.empty()) {
    std::string text;
    for (const auto& b : skipped) text += reason_text(b) + "\n";
    io::h5_write_string(f, "skipped", text);
  }
}

}  // namespace

std::string prepare_options_toml(const PrepareOptions& o) {
  auto quote = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  auto ints = [](const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  };
  std::ostringstream os;
  os << "[prepare]\n"
     << "format = " << quote(o.format) << "\n"
     << "root = " << quote(o.root) << "\n"
     << "out = " << quote(o.out_dir) << "\n"
     << "image_size = " << o.image_size << "\n"
     << "resolution = " << o.resolution << "\n"
     << "skip_bad = " << (o.skip_bad ? "true" : "false") << "\n"
     << "classes = " << ints(o.classes) << "\n"
     << "per_class_train = " << o.per_class_train << "\n"
     << "per_class_test = " << o.per_class_test << "\n"
     << "subset_seed = " << o.subset_seed << "\n"
     << "flowers_valid = " << quote(o.source.flowers_valid) << "\n"
     << "fmnist_fit = " << quote(o.source.fmnist_fit) << "\n"
     << "fmnist_size = " << o.source.fmnist_size << "\n"
     << "compression = " << o.compression << "\n";
  return os.str();
}

PrepareReport prepare_dataset(const PrepareOptions& options, dist::Comm& comm) {
  PrepareOptions o = options;
  const int rank = comm.rank(), size = comm.size();
  collectively(comm, [&] {
    if (o.out_dir.empty()) throw UsageError("an output directory is required", "--out");
    if (o.image_size <= 0) throw UsageError("must be positive", "--image-size");
    if (o.resolution == 0) o.resolution = mid_resolution(o.image_size);
    if (o.resolution < o.image_size)
      throw UsageError(str("stored resolution ", o.resolution, " is smaller than the image size ",
                           o.image_size),
                       "--resolution");
    if (o.block <= 0) throw UsageError("must be positive", "--block");
    if (o.root.empty()) {
      if (o.format != "fashion_mnist") throw UsageError("a dataset root is required", "--root");
      o.root = kFashionMnistDebianRoot;
    }
    for (const auto& s : o.splits)
      if (s != "train" && s != "test") throw UsageError(str("unknown split '", s, "'"), "--splits");
  });
  const int s = o.resolution;
  int threads = o.threads;
  if (threads <= 0)
    threads = std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, comm.local_size()));

  SourceDataset ds;
  std::vector<int64_t> original_ids;
  collectively(comm, [&] {
    ds = list_source(o.format, o.root, o.source);
    for (size_t k = 0; k < ds.class_names.size(); ++k) original_ids.push_back(int64_t(k));
    if (!o.classes.empty()) {
      keep_classes(&ds, o.classes);
      original_ids = o.classes;
    }
    for (auto& split : ds.splits) {
      const int64_t per_class = split.name == "train" ? o.per_class_train : o.per_class_test;
      subsample_per_class(&split, int64_t(ds.class_names.size()), per_class, o.subset_seed);
    }
    if (!o.skip_bad)
      for (const auto& split : ds.splits)
        if (!split.bad.empty())
          throw Error(str(split.bad.front().reason, " (use --skip-bad to skip such items)"),
                      split.bad.front().path);
  });

  PrepareReport report;
  report.format = ds.format;
  report.num_classes = int64_t(ds.class_names.size());
  report.resolution = s;
  collectively(comm, [&] {
    if (rank == 0) std::filesystem::create_directories(o.out_dir);
  });

  const size_t row_bytes = size_t(s) * s * 3;
  for (const SourceSplit& split : ds.splits) {
    if (!o.splits.empty() && std::find(o.splits.begin(), o.splits.end(), split.name) == o.splits.end())
      continue;
    const auto t0 = Clock::now();
    SplitReport rep;
    rep.name = split.name;
    rep.path = join_path(o.out_dir, split.name + ".h5");
    rep.skipped_items = split.bad;  // listing-time problems (labels), kept only with skip_bad
    const std::vector<SourceItem>& items = split.items;
    std::optional<SplitWriter> writer;
    collectively(comm, [&] {
      if (items.empty())
        throw Error(str("split '", split.name, "' has no images (after class/subset selection)"),
                    o.root);
      if (rank == 0) writer.emplace(rep.path, s, o.compression);
    });
    if (rank == 0)
      log::info("prepare ", ds.format, " ", split.name, ": ", items.size(), " images -> ", rep.path,
                " (", s, "x", s, ", ", size, " rank(s) x ", threads, " thread(s))");

    const size_t block = size_t(o.block);
    const size_t per_rank = (block + size_t(size) - 1) / size_t(size);
    std::vector<uint8_t> local_rows(per_rank * row_bytes), all_rows;
    std::vector<int64_t> local_status(per_rank), all_status;
    std::vector<std::string> local_errors(per_rank);
    auto last_log = Clock::now();
    for (size_t b0 = 0; b0 < items.size(); b0 += block) {
      const size_t nb = std::min(block, items.size() - b0);
      std::fill(local_status.begin(), local_status.end(), 0);
      decode_block(ds, items, b0, nb, rank, size, s, threads, local_rows.data(),
                   local_status.data(), &local_errors);
      const uint8_t* rows = local_rows.data();
      const int64_t* status = local_status.data();
      if (size > 1) {
        all_rows.resize(size_t(size) * per_rank * row_bytes);
        all_status.resize(size_t(size) * per_rank);
        comm.all_gather(local_status.data(), all_status.data(), per_rank, dist::DType::i64);
        comm.all_gather(local_rows.data(), all_rows.data(), per_rank * row_bytes, dist::DType::u8);
        rows = all_rows.data();
        status = all_status.data();
      }
      // Bad items of this block, in source order; their messages come from their owners.
      for (size_t j = 0; j < nb; ++j) {
        const int owner = int(j % size_t(size));
        const size_t slot = size_t(owner) * per_rank + j / size_t(size);
        if (status[slot]) continue;
        std::string msg = owner == rank ? local_errors[j / size_t(size)] : std::string();
        if (size > 1) msg = comm.broadcast(msg, owner);
        if (!o.skip_bad) throw CollectiveError(msg + " (use --skip-bad to skip such files)");
        const std::string& path = items[b0 + j].path;
        const std::string reason =
            msg.compare(0, path.size() + 2, path + ": ") == 0 ? msg.substr(path.size() + 2) : msg;
        rep.skipped_items.push_back({path, reason});
        if (rank == 0) log::warn("skipping ", msg);
      }
      std::string write_error;
      if (rank == 0) {
        try {
          std::vector<uint8_t> good;
          good.reserve(nb * row_bytes);
          for (size_t j = 0; j < nb; ++j) {
            const size_t slot = (j % size_t(size)) * per_rank + j / size_t(size);
            if (!status[slot]) continue;
            good.insert(good.end(), rows + slot * row_bytes, rows + (slot + 1) * row_bytes);
            writer->labels.push_back(items[b0 + j].label);
            writer->source_ids.push_back(items[b0 + j].source_id);
          }
          writer->sha.update(good.data(), good.size());
          writer->images.append(good.data(), hsize_t(good.size() / row_bytes));
        } catch (const std::exception& e) {
          write_error = e.what();
        }
      }
      agree(comm, write_error);
      if (rank == 0 && std::chrono::duration<double>(Clock::now() - last_log).count() > 30.0) {
        last_log = Clock::now();
        const double el = std::chrono::duration<double>(last_log - t0).count();
        log::info("prepare ", split.name, ": ", b0 + nb, "/", items.size(), " images, ",
                  int((b0 + nb) / std::max(el, 1e-9)), " images/s");
      }
    }

    int64_t written = 0;
    std::string sha;
    std::string final_error;
    if (rank == 0) {
      try {
        written = int64_t(writer->images.rows());
        if (written == 0) throw Error(str("every image of split '", split.name, "' was skipped"), o.root);
        sha = writer->sha.hex_digest();
        const hid_t f = writer->file.id();
        io::h5_write<int64_t>(f, "labels", writer->labels, {hsize_t(written)});
        io::h5_write<int64_t>(f, "source_ids", writer->source_ids, {hsize_t(written)});
        write_attributes(f, o, ds, split, s, original_ids, sha, rep.skipped_items, size);
        writer->file.commit();
      } catch (const std::exception& e) {
        final_error = e.what();
      }
    }
    agree(comm, final_error);
    writer.reset();
    if (size > 1) {
      written = comm.all_reduce(written, dist::ReduceOp::max);
      sha = comm.broadcast(sha, 0);
    }
    rep.written = written;
    rep.skipped = int64_t(rep.skipped_items.size());
    rep.sha256 = sha;
    rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rank == 0)
      log::info("prepare ", split.name, ": wrote ", rep.written, " images, skipped ", rep.skipped,
                ", ", rep.seconds, " s, sha256 ", rep.sha256);
    report.splits.push_back(std::move(rep));
  }
  return report;
}

}  // namespace vardp::data
