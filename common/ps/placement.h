// Which parameter server holds what (docs/ARCHITECTURE.md, "Parameter
// servers"). Size-aware, unlike TF's round-robin (TF #45291):
//   - dense variables (and small row-sparse ones) live whole on one PS,
//     balanced by bytes: largest first onto the PS with the fewest bytes so
//     far (ties: the lower index, then by name, so every process computes the
//     same placement);
//   - big row-sparse variables (kPartitionMinRows rows or kPartitionMinBytes
//     bytes and more: embedding tables, the linear model's hashed weights)
//     are partitioned by row over every PS: row r lives on PS r % num_ps at
//     local row r / num_ps (mod, not div: vocabulary files are often sorted
//     by frequency, so div would put the hot rows on one PS; hashed ids do
//     not care);
//   - global_step lives on PS 0.
// Value types and free functions; thread-compatible.
#ifndef ESTUARY_COMMON_PS_PLACEMENT_H_
#define ESTUARY_COMMON_PS_PLACEMENT_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace estuary {

struct VariableSpec {
  std::string name;
  int64_t rows = 0, cols = 0;
  bool row_sparse = false;  // read and updated by rows (Model::RowsRead)
};

inline constexpr int64_t kPartitionMinRows = 64 * 1024;
inline constexpr int64_t kPartitionMinBytes = 1 << 20;

struct Placement {
  int num_ps = 0;
  std::map<std::string, int> dense_ps;    // variable held whole -> PS index
  std::set<std::string> row_partitioned;  // on every PS, by row mod num_ps

  int PsOfRow(int64_t row) const { return static_cast<int>(row % num_ps); }
  int64_t LocalRow(int64_t row) const { return row / num_ps; }
  // Rows of a partitioned variable of `rows` rows that PS `ps` holds.
  int64_t LocalRows(int64_t rows, int ps) const {
    return rows > ps ? (rows - ps + num_ps - 1) / num_ps : 0;
  }
  // Float bytes of the variables (not their optimizer slots) on each PS.
  std::vector<int64_t> BytesPerPs(const std::vector<VariableSpec>& specs) const;
};

// Places `specs` on `num_ps` (>= 1) parameter servers as described above.
Placement PlaceVariables(const std::vector<VariableSpec>& specs, int num_ps);

// A table for `estuary explain-config`: bytes per PS, then every variable
// with its shape, size and PS (or "rows mod N on every ps").
std::string ExplainPlacement(const Placement& placement, const std::vector<VariableSpec>& specs);

}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PLACEMENT_H_
