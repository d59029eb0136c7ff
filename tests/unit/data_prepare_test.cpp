// `vardp prepare` on small synthetic trees in each dataset's official layout (JPEG and PNG files
// written with libjpeg/libpng, MATLAB v5 annotation files written with matio, IDX files written
// with zlib). Every image is a flat colour that encodes (item, label), so the tests check that
// counts, labels, class names, splits and the order of the stored rows match the source.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_paths.hpp"
#include "vardp/data/dataset_file.hpp"
#include "vardp/data/idx.hpp"
#include "vardp/data/image.hpp"
#include "vardp/data/mat_file.hpp"
#include "vardp/data/prepare.hpp"
#include "vardp/dist/comm.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {
namespace fs = std::filesystem;

// Colour tags that survive JPEG (+-3) and the Lanczos resize of a flat image (exact).
int r_tag(int64_t item) { return 10 + 7 * int(item % 34); }
int g_tag(int64_t label) { return 10 + 20 * int(label % 12); }

Image tagged(int w, int h, int64_t item, int64_t label) {
  Image img(w, h, 3);
  for (size_t p = 0; p < size_t(w) * h; ++p) {
    img.pixels[3 * p] = uint8_t(r_tag(item));
    img.pixels[3 * p + 1] = uint8_t(g_tag(label));
    img.pixels[3 * p + 2] = 128;
  }
  return img;
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// Writes a tagged image (JPEG unless the name ends in .png or png_content is set).
void image_at(const std::string& path, int64_t item, int64_t label, int w = 40, int h = 30,
              bool png_content = false) {
  fs::create_directories(fs::path(path).parent_path());
  const Image img = tagged(w, h, item, label);
  if (png_content || fs::path(path).extension() == ".png")
    write_png(path, img);
  else
    write_jpeg(path, img, 95);
}

struct Loaded {
  DatasetInfo info;
  std::vector<int64_t> labels;
  std::vector<int64_t> source_ids;
  std::vector<uint8_t> images;
  std::vector<hsize_t> dims;
  int pixel(int64_t row, int y, int x, int c) const {
    const size_t s = dims[1];
    return images[((size_t(row) * s + size_t(y)) * s + size_t(x)) * 3 + size_t(c)];
  }
};

Loaded load(const std::string& path) {
  Loaded l;
  l.info = read_dataset_info(path);
  io::H5File f = io::H5File::open(path);
  l.labels = io::h5_read<int64_t>(f.id(), "labels");
  l.source_ids = io::h5_read<int64_t>(f.id(), "source_ids");
  l.images = io::h5_read<uint8_t>(f.id(), "images", &l.dims);
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "format"), "vardp.dataset");
  EXPECT_EQ(compute_images_sha256(path), l.info.images_sha256);
  return l;
}

// Rows carry the expected (item, label) tags in the expected order.
void expect_tags(const Loaded& l, const std::vector<int64_t>& items,
                 const std::vector<int64_t>& labels) {
  ASSERT_EQ(l.labels, labels);
  ASSERT_EQ(l.dims.size(), 4u);
  ASSERT_EQ(l.dims[0], items.size());
  const int mid = int(l.dims[1] / 2);
  for (size_t k = 0; k < items.size(); ++k) {
    EXPECT_NEAR(l.pixel(int64_t(k), mid, mid, 0), r_tag(items[k]), 3) << "row " << k;
    EXPECT_NEAR(l.pixel(int64_t(k), mid, mid, 1), g_tag(labels[k]), 3) << "row " << k;
  }
}

PrepareOptions options(const std::string& format, const std::string& root, const std::string& out) {
  PrepareOptions o;
  o.format = format;
  o.root = root;
  o.out_dir = out;
  o.image_size = 16;  // stored 18 x 18: fast
  o.threads = 2;
  return o;
}

PrepareReport run(const PrepareOptions& o) {
  auto comm = dist::make_single_comm();
  return prepare_dataset(o, *comm);
}

std::string error_of(const PrepareOptions& o) {
  try {
    run(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- Oxford Flowers 102 ----------------------------------------------------------------------

void make_flowers(const std::string& root, std::vector<double> labels = {1, 2, 1, 3, 2, 102}) {
  for (int id = 1; id <= int(labels.size()); ++id) {
    char name[32];
    std::snprintf(name, sizeof name, "jpg/image_%05d.jpg", id);
    image_at(root + "/" + name, id, int64_t(labels[size_t(id - 1)]) - 1, 50 + id, 40);
  }
  {
    MatWriter m(root + "/imagelabels.mat");
    m.numeric("labels", labels);
  }
  MatWriter s(root + "/setid.mat");
  s.numeric("trnid", {2, 1});
  s.numeric("valid", {3});
  s.numeric("tstid", {4, 5, 6});
}

TEST(DataPrepare, Flowers102PaperSplit) {
  test::ScratchDir dir;
  make_flowers(dir / "flowers");
  const PrepareReport rep = run(options("flowers102", dir / "flowers", dir / "out"));
  ASSERT_EQ(rep.splits.size(), 2u);
  EXPECT_EQ(rep.num_classes, 102);
  const Loaded train = load(dir / "out/train.h5");
  expect_tags(train, {2, 1}, {1, 0});  // trnid order kept
  EXPECT_EQ(train.source_ids, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(train.info.split, "train");
  EXPECT_EQ(train.info.source, "flowers102");
  EXPECT_EQ(train.info.num_classes, 102);
  EXPECT_EQ(train.info.class_names.front(), "pink primrose");
  EXPECT_EQ(train.info.class_names.back(), "blackberry lily");
  EXPECT_EQ(train.info.resolution, 18);
  EXPECT_EQ(train.info.image_size, 16);
  const Loaded test = load(dir / "out/test.h5");
  expect_tags(test, {4, 5, 6}, {2, 1, 101});
  EXPECT_EQ(test.info.split, "test");

  PrepareOptions o = options("flowers102", dir / "flowers", dir / "out2");
  o.source.flowers_valid = "train";
  run(o);
  expect_tags(load(dir / "out2/train.h5"), {2, 1, 3}, {1, 0, 0});
}

TEST(DataPrepare, LabelOutOfRangeNamesTheFileAndSkipBadCounts) {
  test::ScratchDir dir;
  make_flowers(dir / "flowers", {1, 2, 1, 103, 2, 102});
  const std::string e = error_of(options("flowers102", dir / "flowers", dir / "out"));
  EXPECT_NE(e.find("image_00004.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir / "out/test.h5"));

  PrepareOptions o = options("flowers102", dir / "flowers", dir / "out");
  o.skip_bad = true;
  const PrepareReport rep = run(o);
  EXPECT_EQ(rep.splits[1].written, 2);
  EXPECT_EQ(rep.splits[1].skipped, 1);
  ASSERT_EQ(rep.splits[1].skipped_items.size(), 1u);
  EXPECT_NE(rep.splits[1].skipped_items[0].path.find("image_00004.jpg"), std::string::npos);
  io::H5File f = io::H5File::open(dir / "out/test.h5");
  EXPECT_EQ(io::h5_read_attr_int(f.id(), "num_skipped"), 1);
  EXPECT_NE(io::h5_read_string(f.id(), "skipped").find("image_00004.jpg"), std::string::npos);
}

// ---- CUB-200-2011 ------------------------------------------------------------------------------

TEST(DataPrepare, Cub200WithGrayscaleAndCmykJpegs) {
  test::ScratchDir dir;
  const std::string root = dir / "CUB_200_2011";
  write_file(root + "/classes.txt",
             "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Sooty_Albatross\n");
  const std::vector<int> cls = {1, 1, 2, 2, 3, 3};
  const std::vector<int> is_train = {1, 0, 1, 0, 1, 1};
  std::string images, labels, split;
  for (int id = 1; id <= 6; ++id) {
    const std::string rel = str("00", cls[size_t(id - 1)], ".x/img_", id, ".jpg");
    images += str(id, " ", rel, "\n");
    labels += str(id, " ", cls[size_t(id - 1)], "\n");
    split += str(id, " ", is_train[size_t(id - 1)], "\n");
    const std::string path = root + "/images/" + rel;
    if (id == 3) {  // grayscale JPEG
      fs::create_directories(fs::path(path).parent_path());
      Image g(30, 45, 1);
      std::fill(g.pixels.begin(), g.pixels.end(), 90);
      write_jpeg(path, g, 95);
    } else if (id == 5) {  // CMYK JPEG (Adobe)
      fs::create_directories(fs::path(path).parent_path());
      Image c(45, 30, 4);
      std::fill(c.pixels.begin(), c.pixels.end(), 0);  // no ink: white
      write_jpeg(path, c, 95);
    } else {
      image_at(path, id, cls[size_t(id - 1)] - 1);
    }
  }
  write_file(root + "/images.txt", images);
  write_file(root + "/image_class_labels.txt", labels);
  write_file(root + "/train_test_split.txt", split);

  run(options("cub200", root, dir / "out"));
  const Loaded train = load(dir / "out/train.h5");
  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 1, 2, 2}));
  EXPECT_EQ(train.source_ids, (std::vector<int64_t>{1, 3, 5, 6}));
  EXPECT_EQ(train.info.class_names,
            (std::vector<std::string>{"001.Black_footed_Albatross", "002.Laysan_Albatross",
                                      "003.Sooty_Albatross"}));
  EXPECT_NEAR(train.pixel(1, 9, 9, 0), 90, 2);  // gray replicated
  EXPECT_NEAR(train.pixel(1, 9, 9, 2), 90, 2);
  EXPECT_NEAR(train.pixel(2, 9, 9, 0), 255, 2);  // CMYK without ink is white
  EXPECT_NEAR(train.pixel(2, 9, 9, 1), 255, 2);
  const Loaded test = load(dir / "out/test.h5");
  expect_tags(test, {2, 4}, {0, 1});
}

// ---- Food-101 ----------------------------------------------------------------------------------

void make_food(const std::string& root) {
  write_file(root + "/meta/classes.txt", "apple_pie\nbaby_back_ribs\n");
  write_file(root + "/meta/train.txt", "apple_pie/100\nbaby_back_ribs/200\napple_pie/101\n");
  write_file(root + "/meta/test.txt", "baby_back_ribs/201\n");
  image_at(root + "/images/apple_pie/100.jpg", 1, 0);
  image_at(root + "/images/baby_back_ribs/200.jpg", 2, 1, 30, 60);
  image_at(root + "/images/apple_pie/101.jpg", 3, 0, 40, 30, /*png_content=*/true);
  image_at(root + "/images/baby_back_ribs/201.jpg", 4, 1);
}

TEST(DataPrepare, Food101) {
  test::ScratchDir dir;
  make_food(dir / "food-101");
  run(options("food101", dir / "food-101", dir / "out"));
  const Loaded train = load(dir / "out/train.h5");
  expect_tags(train, {1, 2, 3}, {0, 1, 0});
  EXPECT_EQ(train.info.class_names, (std::vector<std::string>{"apple_pie", "baby_back_ribs"}));
  expect_tags(load(dir / "out/test.h5"), {4}, {1});
}

TEST(DataPrepare, MissingFileNamesTheFileAndSkipBadCounts) {
  test::ScratchDir dir;
  make_food(dir / "food-101");
  write_file(dir / "food-101/meta/train.txt",
             "apple_pie/100\nbaby_back_ribs/200\napple_pie/999\napple_pie/101\n");
  const std::string e = error_of(options("food101", dir / "food-101", dir / "out"));
  EXPECT_NE(e.find("images/apple_pie/999.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir / "out/train.h5"));
  for (const auto& entry : fs::directory_iterator(dir / "out"))
    ADD_FAILURE() << "left behind: " << entry.path();

  PrepareOptions o = options("food101", dir / "food-101", dir / "out");
  o.skip_bad = true;
  const PrepareReport rep = run(o);
  EXPECT_EQ(rep.splits[0].written, 3);
  EXPECT_EQ(rep.splits[0].skipped, 1);
  expect_tags(load(dir / "out/train.h5"), {1, 2, 3}, {0, 1, 0});
}

// ---- Stanford Cars -----------------------------------------------------------------------------

void make_cars(const std::string& root, double bad_class = 0) {
  fs::create_directories(root + "/devkit");
  {
    MatWriter m(root + "/devkit/cars_meta.mat");
    m.cell_strings("class_names",
                   {"AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"});
  }
  auto annos = [](const std::string& path, const std::vector<std::string>& names,
                  const std::vector<double>& classes) {
    MatWriter m(path);
    std::vector<double> box(names.size(), 5);
    using F = MatWriter::Field;
    std::vector<F> fields = {{"bbox_x1", MatWriter::NumClass::u16, box, {}},
                             {"bbox_y1", MatWriter::NumClass::u16, box, {}},
                             {"bbox_x2", MatWriter::NumClass::u16, box, {}},
                             {"bbox_y2", MatWriter::NumClass::u16, box, {}},
                             {"class", MatWriter::NumClass::u8, classes, {}},
                             {"fname", MatWriter::NumClass::f64, {}, names}};
    m.struct_array("annotations", names.size(), fields);
  };
  annos(root + "/devkit/cars_train_annos.mat", {"00001.jpg", "00002.jpg", "00003.jpg"},
        {3, 1, bad_class ? bad_class : 2});
  annos(root + "/cars_test_annos_withlabels.mat", {"00001.jpg", "00002.jpg"}, {2, 2});
  image_at(root + "/cars_train/00001.jpg", 1, 2, 60, 35);
  image_at(root + "/cars_train/00002.jpg", 2, 0);
  image_at(root + "/cars_train/00003.jpg", 3, 1);
  image_at(root + "/cars_test/00001.jpg", 11, 1);
  image_at(root + "/cars_test/00002.jpg", 12, 1);
}

TEST(DataPrepare, StanfordCarsFromMatlabAnnotations) {
  test::ScratchDir dir;
  make_cars(dir / "cars");
  run(options("stanford_cars", dir / "cars", dir / "out"));
  const Loaded train = load(dir / "out/train.h5");
  expect_tags(train, {1, 2, 3}, {2, 0, 1});
  EXPECT_EQ(train.info.class_names[1], "Acura RL Sedan 2012");
  EXPECT_EQ(train.info.num_classes, 3);
  expect_tags(load(dir / "out/test.h5"), {11, 12}, {1, 1});

  make_cars(dir / "cars_bad", 197);
  const std::string e = error_of(options("stanford_cars", dir / "cars_bad", dir / "out_bad"));
  EXPECT_NE(e.find("cars_train/00003.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
}

// ---- Oxford-IIIT Pet ---------------------------------------------------------------------------

TEST(DataPrepare, OxfordPets) {
  test::ScratchDir dir;
  const std::string root = dir / "pets";
  write_file(root + "/annotations/trainval.txt",
             "#Image CLASS-ID SPECIES BREED ID\nAbyssinian_1 1 1 1\nbasset_hound_2 4 2 3\n"
             "Abyssinian_3 1 1 1\n");
  write_file(root + "/annotations/test.txt", "basset_hound_4 4 2 3\n");
  image_at(root + "/images/Abyssinian_1.jpg", 1, 0);
  image_at(root + "/images/basset_hound_2.jpg", 2, 3, 35, 35, /*png_content=*/true);
  image_at(root + "/images/Abyssinian_3.jpg", 3, 0);
  image_at(root + "/images/basset_hound_4.jpg", 4, 3);
  run(options("oxford_pets", root, dir / "out"));
  const Loaded train = load(dir / "out/train.h5");
  expect_tags(train, {1, 2, 3}, {0, 3, 0});
  EXPECT_EQ(train.info.num_classes, 37);
  EXPECT_EQ(train.info.class_names[0], "Abyssinian");
  EXPECT_EQ(train.info.class_names[3], "basset_hound");
  expect_tags(load(dir / "out/test.h5"), {4}, {3});

  write_file(root + "/annotations/test.txt", "basset_hound_4 38 2 3\n");
  const std::string e = error_of(options("oxford_pets", root, dir / "out_bad"));
  EXPECT_NE(e.find("basset_hound_4.jpg"), std::string::npos) << e;
}

// ---- ImageFolder -------------------------------------------------------------------------------

void make_folder(const std::string& root) {
  image_at(root + "/train/cat/a.jpg", 1, 0);
  image_at(root + "/train/cat/b.png", 2, 0);
  image_at(root + "/train/dog/c.jpg", 3, 1, 25, 50);
  write_file(root + "/train/dog/notes.txt", "not an image");
  image_at(root + "/test/cat/d.jpg", 4, 0);
  image_at(root + "/test/dog/e.JPG", 5, 1);
}

TEST(DataPrepare, ImageFolderAndClassSubset) {
  test::ScratchDir dir;
  make_folder(dir / "folder");
  run(options("imagefolder", dir / "folder", dir / "out"));
  const Loaded train = load(dir / "out/train.h5");
  expect_tags(train, {1, 2, 3}, {0, 0, 1});
  EXPECT_EQ(train.info.class_names, (std::vector<std::string>{"cat", "dog"}));
  expect_tags(load(dir / "out/test.h5"), {4, 5}, {0, 1});

  // Keep only "dog": its label becomes 0, the original id is recorded.
  PrepareOptions o = options("imagefolder", dir / "folder", dir / "out_dog");
  o.classes = {1};
  run(o);
  const Loaded dog = load(dir / "out_dog/train.h5");
  EXPECT_EQ(dog.labels, (std::vector<int64_t>{0}));
  EXPECT_NEAR(dog.pixel(0, 9, 9, 0), r_tag(3), 3);
  EXPECT_EQ(dog.info.class_names, (std::vector<std::string>{"dog"}));
  EXPECT_EQ(dog.info.original_class_ids, (std::vector<int64_t>{1}));
}

TEST(DataPrepare, CorruptJpegFailsCleanlyOrIsSkippedAndCounted) {
  test::ScratchDir dir;
  make_folder(dir / "folder");
  fs::create_directories(dir / "folder/train/cat");
  {
    const std::vector<uint8_t> ok = read_file_bytes(dir / "folder/train/cat/a.jpg");
    std::ofstream out(dir / "folder/train/cat/broken.jpg", std::ios::binary);
    out.write(reinterpret_cast<const char*>(ok.data()), std::streamsize(ok.size() / 3));
  }
  const std::string e = error_of(options("imagefolder", dir / "folder", dir / "out"));
  EXPECT_NE(e.find("train/cat/broken.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("--skip-bad"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir / "out/train.h5"));
  for (const auto& entry : fs::directory_iterator(dir / "out"))
    ADD_FAILURE() << "left behind: " << entry.path();

  PrepareOptions o = options("imagefolder", dir / "folder", dir / "out");
  o.skip_bad = true;
  const PrepareReport rep = run(o);
  EXPECT_EQ(rep.splits[0].written, 3);
  EXPECT_EQ(rep.splits[0].skipped, 1);
  expect_tags(load(dir / "out/train.h5"), {1, 2, 3}, {0, 0, 1});
}

TEST(DataPrepare, OutputDoesNotDependOnThreadsOrBlocks) {
  test::ScratchDir dir;
  make_folder(dir / "folder");
  PrepareOptions a = options("imagefolder", dir / "folder", dir / "a");
  a.threads = 1;
  a.block = 1;
  PrepareOptions b = options("imagefolder", dir / "folder", dir / "b");
  b.threads = 3;
  b.block = 2;
  const auto ra = run(a), rb = run(b);
  EXPECT_EQ(ra.splits[0].sha256, rb.splits[0].sha256);
  EXPECT_EQ(ra.splits[1].sha256, rb.splits[1].sha256);
}

// ---- Fashion-MNIST (synthetic IDX files) -------------------------------------------------------

void make_fmnist(const std::string& root) {
  fs::create_directories(root);
  for (auto [prefix, n] : {std::pair{"train", 40}, std::pair{"t10k", 20}}) {
    IdxArray img, lbl;
    img.dims = {uint32_t(n), 28, 28};
    lbl.dims = {uint32_t(n)};
    for (int i = 0; i < n; ++i) {
      img.data.insert(img.data.end(), 28 * 28, uint8_t(100 + i));
      lbl.data.push_back(uint8_t(i % 10));
    }
    write_idx_ubyte(str(root, "/", prefix, "-images-idx3-ubyte.gz"), img);
    write_idx_ubyte(str(root, "/", prefix, "-labels-idx1-ubyte.gz"), lbl);
  }
}

TEST(DataPrepare, FashionMnistPaddingClassSubsetAndPerClassSubset) {
  test::ScratchDir dir;
  make_fmnist(dir / "fm");
  PrepareOptions o = options("fashion_mnist", dir / "fm", dir / "out");
  o.image_size = 32;
  o.resolution = 32;  // stored = the padded 32 x 32 canvas itself
  o.classes = {5, 6, 7, 8, 9};
  o.per_class_train = 3;
  run(o);
  const Loaded train = load(dir / "out/train.h5");
  ASSERT_EQ(train.dims, (std::vector<hsize_t>{15, 32, 32, 3}));
  EXPECT_EQ(train.info.class_names,
            (std::vector<std::string>{"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}));
  EXPECT_EQ(train.info.original_class_ids, (std::vector<int64_t>{5, 6, 7, 8, 9}));
  std::vector<int> per_class(5, 0);
  for (size_t k = 0; k < train.labels.size(); ++k) {
    ++per_class[size_t(train.labels[k])];
    const int64_t i = train.source_ids[k];  // IDX index: label i % 10, pixel value 100 + i
    EXPECT_EQ(train.labels[k], i % 10 - 5);
    EXPECT_EQ(train.pixel(int64_t(k), 16, 16, 0), 100 + i);
    EXPECT_EQ(train.pixel(int64_t(k), 16, 16, 2), 100 + i);
    EXPECT_EQ(train.pixel(int64_t(k), 0, 0, 0), 0);    // 2-pixel zero border
    EXPECT_EQ(train.pixel(int64_t(k), 31, 31, 1), 0);
    EXPECT_EQ(train.pixel(int64_t(k), 2, 2, 1), 100 + i);
  }
  EXPECT_EQ(per_class, (std::vector<int>{3, 3, 3, 3, 3}));
  for (size_t k = 1; k < train.source_ids.size(); ++k)
    EXPECT_LT(train.source_ids[k - 1], train.source_ids[k]);  // source order kept
  const Loaded test = load(dir / "out/test.h5");
  EXPECT_EQ(test.dims[0], 10u);  // all test images of classes 5-9

  // Another seed draws another subset; the same seed the same one.
  PrepareOptions o2 = o;
  o2.out_dir = dir / "out2";
  o2.subset_seed = 1;
  run(o2);
  PrepareOptions o3 = o;
  o3.out_dir = dir / "out3";
  run(o3);
  EXPECT_NE(load(dir / "out2/train.h5").source_ids, train.source_ids);
  EXPECT_EQ(load(dir / "out3/train.h5").source_ids, train.source_ids);
}

TEST(DataPrepare, FashionMnistFromDebianPackage) {
  const std::string root = kFashionMnistDebianRoot;
  if (!fs::exists(root + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed";
  test::ScratchDir dir;
  PrepareOptions o;
  o.format = "fashion_mnist";
  o.out_dir = dir / "out";
  o.image_size = 32;  // stored 36 x 36 (VAR's mid_reso)
  o.classes = {5, 6, 7, 8, 9};
  o.per_class_train = 200;  // the "private" part: 1,000 training images
  o.per_class_test = 50;
  const PrepareReport rep = run(o);
  EXPECT_EQ(rep.splits[0].written, 1000);
  EXPECT_EQ(rep.splits[1].written, 250);
  const Loaded train = load(dir / "out/train.h5");
  EXPECT_EQ(train.dims, (std::vector<hsize_t>{1000, 36, 36, 3}));
  EXPECT_EQ(train.info.class_names[0], "Sandal");
  EXPECT_EQ(train.info.source, "fashion_mnist");
  // Real garments: not blank, gray (R = G = B).
  int64_t sum = 0;
  for (size_t i = 0; i < train.images.size(); i += 3) {
    sum += train.images[i];
    ASSERT_EQ(train.images[i], train.images[i + 1]);
  }
  EXPECT_GT(sum, 0);
}

// ---- the CLI, and two MPI ranks giving the same bytes as one process ---------------------------

std::string vardp_bin() {
  const char* b = std::getenv("VARDP_BIN");
  return b ? b : "";
}

TEST(DataPrepare, CommandLineAndTwoRanksGiveTheSameFile) {
  if (vardp_bin().empty() || !fs::exists(vardp_bin()))
    GTEST_SKIP() << "VARDP_BIN not set (run through ctest)";
  test::ScratchDir dir;
  make_flowers(dir / "flowers");
  const std::string common = " prepare --format flowers102 --root " + dir / "flowers" +
                             " --image-size 16 --block 2 --log-level warn";
  ASSERT_EQ(std::system((vardp_bin() + common + " --out " + dir / "one" + " > " + dir / "one.log" +
                         " 2>&1")
                            .c_str()),
            0);
  const Loaded one = load(dir / "one/train.h5");
  expect_tags(one, {2, 1}, {1, 0});
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun";
  const int rc = std::system(("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun "
                              "-np 2 --oversubscribe " +
                              vardp_bin() + common + " --out " + dir / "two" + " > " +
                              dir / "two.log" + " 2>&1")
                                 .c_str());
  ASSERT_EQ(rc, 0) << "see " << dir / "two.log";
  for (const std::string split : {"train", "test"}) {
    const Loaded a = load(dir / ("one/" + split + ".h5"));
    const Loaded b = load(dir / ("two/" + split + ".h5"));
    EXPECT_EQ(a.info.images_sha256, b.info.images_sha256) << split;
    EXPECT_EQ(a.labels, b.labels) << split;
  }
  io::H5File f = io::H5File::open(dir / "two/train.h5");
  EXPECT_EQ(io::h5_read_attr_int(f.id(), "world_size"), 2);
}

}  // namespace
}  // namespace vardp::data
