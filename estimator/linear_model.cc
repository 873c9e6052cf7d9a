#include "estimator/linear_model.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace estuary {

absl::StatusOr<LinearModel> LinearModel::Create(std::vector<ColumnPtr> columns,
                                                int64_t logits_dimension, std::string scope) {
  if (logits_dimension < 1) return absl::InvalidArgumentError("logits_dimension must be >= 1");
  std::sort(columns.begin(), columns.end(),
            [](const ColumnPtr& a, const ColumnPtr& b) { return a->name() < b->name(); });
  LinearModel m;
  m.logits_dimension_ = logits_dimension;
  std::set<std::string> seen;
  for (const ColumnPtr& c : columns) {
    if (!c->is_categorical() && !c->is_dense()) {
      return absl::InvalidArgumentError(
          absl::StrCat("linear model: column '", c->name(), "' is neither categorical nor dense"));
    }
    if (!seen.insert(c->name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("linear model: two columns are named '", c->name(), "'"));
    }
    m.weight_names_.push_back(absl::StrCat(scope, "/", c->name(), "/weights"));
  }
  m.columns_ = std::move(columns);
  m.bias_name_ = absl::StrCat(scope, "/bias_weights");
  m.variable_names_ = m.weight_names_;
  m.variable_names_.push_back(m.bias_name_);
  return m;
}

void LinearModel::InitVariables(Variables* vars) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    const FeatureColumn& c = *columns_[i];
    const int64_t rows = c.is_categorical() ? c.num_buckets() : c.dense_width();
    vars->floats[weight_names_[i]] = RowMatrixXf::Zero(rows, logits_dimension_);
  }
  vars->floats[bias_name_] = RowMatrixXf::Zero(1, logits_dimension_);
}

void LinearModel::Summarize(const Variables& vars, ModelSummaries* out) const {
  auto bias = vars.floats.find(bias_name_);
  if (bias != vars.floats.end() && bias->second.size() > 0) {
    const RowMatrixXf& b = bias->second;
    if (b.size() == 1) {
      out->scalars.emplace_back("bias", b(0, 0));
    } else {
      out->histograms.emplace_back("bias", std::vector<double>(b.data(), b.data() + b.size()));
    }
  }
  // _compute_fraction_of_zero: float32 zero count over the int64 size.
  int64_t size = 0, zeros = 0;
  for (const std::string& name : weight_names_) {
    auto w = vars.floats.find(name);
    if (w == vars.floats.end()) continue;
    size += w->second.size();
    zeros += (w->second.array() == 0.0f).count();
  }
  out->scalars.emplace_back("fraction_of_zero_weights",
                            static_cast<float>(zeros) / static_cast<float>(size));
}

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> LinearModel::RowsRead(
    const FeatureMap& features) const {
  std::map<std::string, std::vector<int64_t>> rows;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (!columns_[i]->is_categorical()) continue;
    ASSIGN_OR_RETURN(CategoricalIds ids, columns_[i]->Ids(features));
    rows[weight_names_[i]] = SortedDistinct(ids.ids);
  }
  return rows;
}

std::vector<std::string> LinearModel::RowSparseVariables() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i]->is_categorical()) names.push_back(weight_names_[i]);
  }
  return names;
}

const std::string* LinearModel::CategoricalWeightName(const FeatureColumn* column) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].get() == column && column->is_categorical()) return &weight_names_[i];
  }
  return nullptr;
}

absl::StatusOr<RowMatrixXf> LinearModel::Forward(const FeatureMap& features, const Variables& vars,
                                                 Cache* cache, const KnownIds* known) const {
  cache->ids.assign(columns_.size(), {});
  cache->dense.assign(columns_.size(), {});
  RowMatrixXf logits;
  for (size_t i = 0; i < columns_.size(); ++i) {
    const FeatureColumn& c = *columns_[i];
    auto w = vars.floats.find(weight_names_[i]);
    if (w == vars.floats.end()) {
      return absl::FailedPreconditionError(absl::StrCat("variable '", weight_names_[i], "' missing"));
    }
    RowMatrixXf part;
    if (c.is_categorical()) {
      const auto it = known != nullptr ? known->find(&c) : KnownIds::const_iterator();
      if (known != nullptr && it != known->end()) {
        cache->ids[i] = *it->second;
      } else {
        ASSIGN_OR_RETURN(cache->ids[i], c.Ids(features));
      }
      ASSIGN_OR_RETURN(part, CombineEmbeddings(w->second, cache->ids[i], Combiner::kSum));
    } else {
      ASSIGN_OR_RETURN(cache->dense[i], c.Dense(features));
      part = cache->dense[i] * w->second;
    }
    if (logits.size() == 0) {
      logits = std::move(part);
    } else if (part.rows() != logits.rows()) {
      return absl::InvalidArgumentError(absl::StrCat("linear model: column '", c.name(), "' gives ",
                                                     part.rows(), " examples, others ", logits.rows()));
    } else {
      logits += part;
    }
  }
  const RowMatrixXf& bias = vars.floats.at(bias_name_);
  if (logits.size() == 0) {
    return absl::InvalidArgumentError("linear model has no columns");
  }
  logits.rowwise() += bias.row(0);
  cache->batch_size = logits.rows();
  return logits;
}

absl::Status LinearModel::Backward(const Cache& cache, const RowMatrixXf& dlogits,
                                   Gradients* grads) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    const FeatureColumn& c = *columns_[i];
    if (c.is_categorical()) {
      ASSIGN_OR_RETURN(EmbeddingGrad g, CombineEmbeddingsGrad(c.num_buckets(), cache.ids[i],
                                                              Combiner::kSum, dlogits));
      grads->sparse[weight_names_[i]] = SparseGradient{std::move(g.ids), std::move(g.grads)};
    } else {
      grads->dense[weight_names_[i]] = cache.dense[i].transpose() * dlogits;
    }
  }
  grads->dense[bias_name_] = dlogits.colwise().sum();
  return absl::OkStatus();
}

}  // namespace estuary
