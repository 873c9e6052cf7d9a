#include "estimator/embedding.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/prefetch.h"

namespace estuary {
namespace {

// safe_embedding_lookup_sparse prunes ids < 0 always, and weights <= 0 only
// for the mean and sqrtn combiners (TF 2.15).
bool Kept(const CategoricalIds& ids, int64_t k, Combiner combiner) {
  if (ids.ids[k] < 0) return false;
  return combiner == Combiner::kSum || !ids.has_weights() || ids.weights[k] > 0.0f;
}

absl::Status CheckIds(const CategoricalIds& ids, int64_t num_buckets) {
  if (!ids.weights.empty() && ids.weights.size() != ids.ids.size()) {
    return absl::InvalidArgumentError("embedding: weights and ids differ in length");
  }
  if (ids.rows.size() != ids.ids.size()) {
    return absl::InvalidArgumentError("embedding: rows and ids differ in length");
  }
  for (int64_t k = 0; k < ids.size(); ++k) {
    if (ids.rows[k] < 0 || ids.rows[k] >= ids.batch_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("embedding: row ", ids.rows[k], " outside batch of ", ids.batch_size));
    }
    if (ids.ids[k] >= num_buckets) {
      return absl::InvalidArgumentError(absl::StrCat("embedding: id ", ids.ids[k],
                                                     " out of range [0, ", num_buckets, ")"));
    }
  }
  return absl::OkStatus();
}

// Per-row denominators for the combiner (0 for rows with no entries).
std::vector<double> Denominators(const CategoricalIds& ids, Combiner combiner) {
  std::vector<double> sum(ids.batch_size, 0.0);
  for (int64_t k = 0; k < ids.size(); ++k) {
    if (!Kept(ids, k, combiner)) continue;
    const double w = ids.weight(k);
    sum[ids.rows[k]] += combiner == Combiner::kSqrtn ? w * w : w;
  }
  for (double& s : sum) {
    if (combiner == Combiner::kSum) s = 1.0;
    if (combiner == Combiner::kSqrtn) s = std::sqrt(s);
  }
  return sum;
}

}  // namespace

absl::StatusOr<Combiner> ParseCombiner(absl::string_view s) {
  if (s == "sum") return Combiner::kSum;
  if (s == "mean") return Combiner::kMean;
  if (s == "sqrtn") return Combiner::kSqrtn;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown combiner '", s, "'; expected one of: sum, mean, sqrtn"));
}

const char* CombinerName(Combiner c) {
  switch (c) {
    case Combiner::kSum: return "sum";
    case Combiner::kMean: return "mean";
    case Combiner::kSqrtn: return "sqrtn";
  }
  return "?";
}

absl::StatusOr<RowMatrixXf> CombineEmbeddings(const RowMatrixXf& table,
                                              const CategoricalIds& ids, Combiner combiner,
                                              std::optional<float> max_norm) {
  if (absl::Status st = CheckIds(ids, table.rows()); !st.ok()) return st;
  RowMatrixXf out = RowMatrixXf::Zero(ids.batch_size, table.cols());
  const int64_t dim = table.cols();
  if (!max_norm.has_value()) {
    // Plain loops over the rows' floats: rows are short (1 for the linear
    // model, a few for embeddings), where Eigen's dynamic row expressions
    // cost more than the arithmetic. Same operations, same order.
    const float* t = table.data();
    float* o = out.data();
    const int64_t n = ids.size();
    for (int64_t k = 0; k < n; ++k) {
      PrefetchRowAhead(t, ids.ids, static_cast<size_t>(k), dim);
      if (!Kept(ids, k, combiner)) continue;
      const float w = ids.weight(k);
      const float* src = t + ids.ids[k] * dim;
      float* dst = o + ids.rows[k] * dim;
      for (int64_t j = 0; j < dim; ++j) dst[j] += w * src[j];
    }
  } else {
    for (int64_t k = 0; k < ids.size(); ++k) {
      if (!Kept(ids, k, combiner)) continue;
      Eigen::RowVectorXf e = table.row(ids.ids[k]);
      const float norm = e.norm();
      if (norm > *max_norm) e *= *max_norm / norm;
      out.row(ids.rows[k]) += ids.weight(k) * e;
    }
  }
  if (combiner == Combiner::kSum) return out;  // every denominator is 1
  const std::vector<double> denom = Denominators(ids, combiner);
  for (int64_t r = 0; r < ids.batch_size; ++r) {
    if (denom[r] > 0) out.row(r) /= static_cast<float>(denom[r]);
  }
  return out;
}

absl::StatusOr<EmbeddingGrad> CombineEmbeddingsGrad(int64_t num_buckets,
                                                    const CategoricalIds& ids, Combiner combiner,
                                                    const RowMatrixXf& output_grad) {
  if (absl::Status st = CheckIds(ids, num_buckets); !st.ok()) return st;
  if (output_grad.rows() != ids.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("embedding gradient: ", output_grad.rows(),
                                                   " rows for a batch of ", ids.batch_size));
  }
  const std::vector<double> denom = Denominators(ids, combiner);
  // Distinct ids in first-seen order (a hash map), rows summed per id in
  // the order the entries came, then emitted in ascending id order: the
  // same sums as accumulating in an ordered map, without a node per id.
  absl::flat_hash_map<int64_t, int64_t> slot_of;
  slot_of.reserve(ids.ids.size());
  std::vector<int64_t> slot(ids.ids.size(), -1);
  std::vector<std::pair<int64_t, int64_t>> distinct;  // (id, slot)
  for (int64_t k = 0; k < ids.size(); ++k) {
    if (!Kept(ids, k, combiner)) continue;
    auto [it, inserted] = slot_of.try_emplace(ids.ids[k], static_cast<int64_t>(distinct.size()));
    if (inserted) distinct.emplace_back(ids.ids[k], it->second);
    slot[k] = it->second;
  }
  const int64_t dim = output_grad.cols();
  RowMatrixXf sums = RowMatrixXf::Zero(static_cast<int64_t>(distinct.size()), dim);
  const float* og = output_grad.data();
  float* sp = sums.data();
  for (int64_t k = 0; k < ids.size(); ++k) {  // plain loops: see CombineEmbeddings
    if (slot[k] < 0) continue;
    const float scale = ids.weight(k) / static_cast<float>(denom[ids.rows[k]]);
    const float* src = og + ids.rows[k] * dim;
    float* dst = sp + slot[k] * dim;
    for (int64_t j = 0; j < dim; ++j) dst[j] += scale * src[j];
  }
  std::sort(distinct.begin(), distinct.end());
  EmbeddingGrad g;
  g.ids.reserve(distinct.size());
  g.grads.resize(static_cast<int64_t>(distinct.size()), dim);
  float* gp = g.grads.data();
  for (size_t i = 0; i < distinct.size(); ++i) {
    g.ids.push_back(distinct[i].first);
    std::copy_n(sp + distinct[i].second * dim, dim, gp + i * dim);
  }
  return g;
}

std::vector<int64_t> SortedDistinct(const std::vector<int64_t>& ids) {
  absl::flat_hash_set<int64_t> seen;
  seen.reserve(ids.size());
  std::vector<int64_t> out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    if (seen.insert(id).second) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace estuary
