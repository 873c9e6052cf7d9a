#include "estimator/data/idx_reader.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/io/gzip_stream.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

constexpr uint32_t kLabelsMagic = 0x00000801;
constexpr uint32_t kImagesMagic = 0x00000803;

// The file's bytes, decompressed if it is gzip. A corrupt or truncated gzip
// stream is InvalidArgument naming the file (like the format errors).
absl::StatusOr<std::string> ReadDecompressed(const io::Env& env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<io::InputStream> in, env.NewSequentialFile(path));
  ASSIGN_OR_RETURN(in, io::MaybeDecompressGzip(std::move(in)));
  absl::StatusOr<std::string> bytes = io::ReadAll(*in);
  if (absl::IsDataLoss(bytes.status())) return absl::InvalidArgumentError(bytes.status().message());
  return bytes;
}

uint32_t BigEndian32(const std::string& s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + pos);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

class IdxReader : public RecordReader {
 public:
  IdxReader(IdxFile images, IdxFile labels)
      : images_(std::move(images)), labels_(std::move(labels)) {}

  absl::StatusOr<bool> Next(std::string* record, RecordOrigin* origin) override {
    if (next_ >= images_.dims[0]) return false;
    const int64_t size = images_.example_size();
    record->resize(1 + size);
    (*record)[0] = labels_.data[next_];
    memcpy(&(*record)[1], images_.data.data() + next_ * size, size);
    origin->file = images_.path;
    origin->line = -1;
    origin->index = next_;
    origin->offset = images_.header_size + next_ * size;
    ++next_;
    return true;
  }

 private:
  const IdxFile images_;
  const IdxFile labels_;
  int64_t next_ = 0;
};

}  // namespace

int64_t IdxFile::example_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

absl::StatusOr<IdxFile> ReadIdxFile(const std::string& path, const io::Env& env) {
  ASSIGN_OR_RETURN(std::string bytes, ReadDecompressed(env, path));
  if (bytes.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an IDX file: ", bytes.size(), " bytes, shorter than the magic"));
  }
  const uint32_t magic = BigEndian32(bytes, 0);
  if ((magic >> 16) != 0 || ((magic >> 8) & 0xff) != 0x08 || (magic & 0xff) == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: not an IDX file of uint8 data: magic 0x%08x (want 0x00000801 for labels "
        "or 0x00000803 for images)",
        path, magic));
  }
  const int ndims = magic & 0xff;
  IdxFile file;
  file.path = path;
  file.header_size = 4 + 4 * int64_t{ndims};
  if (static_cast<int64_t>(bytes.size()) < file.header_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated header: magic says ", ndims,
                                                   " dimensions (", file.header_size,
                                                   " header bytes), file has ", bytes.size(),
                                                   " bytes"));
  }
  int64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint32_t d = BigEndian32(bytes, 4 + 4 * i);
    if (d > 0x7fffffffu) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": dimension ", i, " is negative (", static_cast<int32_t>(d), ")"));
    }
    file.dims.push_back(d);
    total *= d;
    if (total > (int64_t{1} << 40)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": dimensions too large"));
    }
  }
  const int64_t have = static_cast<int64_t>(bytes.size()) - file.header_size;
  if (have != total) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", have < total ? "truncated" : "trailing bytes", ": dimensions ",
        absl::StrJoin(file.dims, "x"), " need ", total, " data bytes, file has ", have));
  }
  file.data = bytes.substr(file.header_size);
  return file;
}

absl::StatusOr<std::unique_ptr<RecordReader>> OpenIdxReader(const std::string& images,
                                                            const std::string& labels,
                                                            const io::Env& env) {
  ASSIGN_OR_RETURN(IdxFile image_file, ReadIdxFile(images, env));
  ASSIGN_OR_RETURN(IdxFile label_file, ReadIdxFile(labels, env));
  if (image_file.dims.size() != 3) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected an images file (magic 0x%08x: [n, rows, cols]), got %d dimensions", images,
        kImagesMagic, image_file.dims.size()));
  }
  if (label_file.dims.size() != 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected a labels file (magic 0x%08x: [n]), got %d dimensions", labels, kLabelsMagic,
        label_file.dims.size()));
  }
  if (image_file.dims[0] != label_file.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(images, " has ", image_file.dims[0],
                                                   " images but ", labels, " has ",
                                                   label_file.dims[0], " labels"));
  }
  return std::unique_ptr<RecordReader>(
      new IdxReader(std::move(image_file), std::move(label_file)));
}

absl::StatusOr<Batch> IdxBatchParser::Parse(const std::vector<std::string>& records,
                                            const std::vector<RecordOrigin>& origins) {
  Batch batch;
  const int64_t n = static_cast<int64_t>(records.size());
  batch.batch_size = n;
  if (n == 0) return batch;
  const int64_t size = static_cast<int64_t>(records[0].size()) - 1;
  if (size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(origins[0].ToString(), ": empty IDX record"));
  }
  std::vector<float> pixels(n * size);
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    const std::string& r = records[i];
    if (static_cast<int64_t>(r.size()) != size + 1) {
      return absl::InvalidArgumentError(absl::StrCat(origins[i].ToString(), ": example has ",
                                                     r.size() - 1, " pixels, expected ", size));
    }
    labels[i] = static_cast<unsigned char>(r[0]);
    const auto* p = reinterpret_cast<const unsigned char*>(r.data() + 1);
    float* out = pixels.data() + i * size;
    // Division (not a multiply by 1/255) to match tf.cast(x, tf.float32) / 255.
    if (options_.scale) {
      for (int64_t j = 0; j < size; ++j) out[j] = static_cast<float>(p[j]) / 255.0f;
    } else {
      for (int64_t j = 0; j < size; ++j) out[j] = static_cast<float>(p[j]);
    }
  }
  batch.features[options_.pixels_key] = Tensor::Floats({n, size}, std::move(pixels));
  batch.labels = Tensor::Ints({n}, std::move(labels));
  batch.has_labels = true;
  return batch;
}

}  // namespace estuary
