#include "common/ps/placement.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace estuary {
namespace {

int64_t Bytes(const VariableSpec& s) { return s.rows * s.cols * static_cast<int64_t>(sizeof(float)); }

bool IsBigSparse(const VariableSpec& s) {
  return s.row_sparse && (s.rows >= kPartitionMinRows || Bytes(s) >= kPartitionMinBytes);
}

std::string HumanBytes(int64_t b) {
  if (b >= (1 << 20)) return absl::StrFormat("%.1f MiB", b / 1048576.0);
  if (b >= 1024) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrCat(b, " B");
}

}  // namespace

std::vector<int64_t> Placement::BytesPerPs(const std::vector<VariableSpec>& specs) const {
  std::vector<int64_t> bytes(std::max(num_ps, 0), 0);
  for (const VariableSpec& s : specs) {
    if (row_partitioned.count(s.name)) {
      for (int p = 0; p < num_ps; ++p) {
        bytes[p] += LocalRows(s.rows, p) * s.cols * static_cast<int64_t>(sizeof(float));
      }
    } else if (auto it = dense_ps.find(s.name); it != dense_ps.end()) {
      bytes[it->second] += Bytes(s);
    }
  }
  return bytes;
}

Placement PlaceVariables(const std::vector<VariableSpec>& specs, int num_ps) {
  Placement p;
  p.num_ps = std::max(num_ps, 1);
  std::vector<const VariableSpec*> whole;
  for (const VariableSpec& s : specs) {
    if (IsBigSparse(s)) {
      p.row_partitioned.insert(s.name);
    } else {
      whole.push_back(&s);
    }
  }
  // The partitioned tables load every PS about equally; start from them.
  std::vector<int64_t> load = p.BytesPerPs(specs);
  std::sort(whole.begin(), whole.end(), [](const VariableSpec* a, const VariableSpec* b) {
    return Bytes(*a) != Bytes(*b) ? Bytes(*a) > Bytes(*b) : a->name < b->name;
  });
  for (const VariableSpec* s : whole) {
    const int ps = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    p.dense_ps[s->name] = ps;
    load[ps] += Bytes(*s);
  }
  return p;
}

std::string ExplainPlacement(const Placement& placement, const std::vector<VariableSpec>& specs) {
  std::string out = absl::StrCat("placement over ", placement.num_ps,
                                 " parameter server(s) (variables only; optimizer slots add "
                                 "the same again per slot; global_step on ps:0):\n");
  const std::vector<int64_t> bytes = placement.BytesPerPs(specs);
  for (int p = 0; p < placement.num_ps; ++p) {
    int whole = 0;
    for (const auto& [name, ps] : placement.dense_ps) whole += ps == p;
    absl::StrAppendFormat(&out, "  ps:%-3d %12s  %d whole variable(s), %d partitioned part(s)\n", p,
                          HumanBytes(bytes[p]), whole, placement.row_partitioned.size());
  }
  size_t width = 0;
  for (const VariableSpec& s : specs) width = std::max(width, s.name.size());
  for (const VariableSpec& s : specs) {
    std::string where;
    if (placement.row_partitioned.count(s.name)) {
      where = absl::StrCat("rows mod ", placement.num_ps, " on every ps");
    } else if (auto it = placement.dense_ps.find(s.name); it != placement.dense_ps.end()) {
      where = absl::StrCat("ps:", it->second);
    } else {
      where = "(not placed)";
    }
    absl::StrAppendFormat(&out, "  %-*s  [%d, %d] %10s  %s%s\n", static_cast<int>(width), s.name,
                          s.rows, s.cols, HumanBytes(Bytes(s)), where,
                          s.row_sparse ? " (row-sparse)" : "");
  }
  return out;
}

}  // namespace estuary
