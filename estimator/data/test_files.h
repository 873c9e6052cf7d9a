// Test helpers: write files (plain or gzip) under the test's temp directory.
#ifndef ESTUARY_ESTIMATOR_DATA_TEST_FILES_H_
#define ESTUARY_ESTIMATOR_DATA_TEST_FILES_H_

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace estuary {
namespace testing {

inline std::string TempDir() {
  const char* d = getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

// Writes `contents` to TempDir()/name (gzip-compressed if `gzip`); returns the path.
inline std::string WriteTestFile(const std::string& name, const std::string& contents,
                                 bool gzip = false) {
  const std::string path = absl::StrCat(TempDir(), "/", name);
  if (gzip) {
    gzFile gz = gzopen(path.c_str(), "wb");
    gzwrite(gz, contents.data(), static_cast<unsigned>(contents.size()));
    gzclose(gz);
  } else {
    FILE* f = fopen(path.c_str(), "wb");
    fwrite(contents.data(), 1, contents.size(), f);
    fclose(f);
  }
  return path;
}

}  // namespace testing
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_TEST_FILES_H_
