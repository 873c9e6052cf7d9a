#include "estimator/dnn_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "estimator/embedding.h"
#include "estimator/linear_model.h"

namespace estuary {
namespace {

constexpr char kInputLayer[] = "dnn/input_from_feature_columns/input_layer/";

// truncated_normal(0, stddev): redraw values beyond two standard deviations.
RowMatrixXf TruncatedNormal(int64_t rows, int64_t cols, float stddev, std::mt19937_64* rng) {
  std::normal_distribution<float> normal(0.0f, stddev);
  RowMatrixXf m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    float v;
    do {
      v = normal(*rng);
    } while (std::abs(v) > 2 * stddev);
    m.data()[i] = v;
  }
  return m;
}

class DnnModel : public Model {
 public:
  struct State : ForwardState {
    std::vector<CategoricalIds> ids;  // per dnn column (embedding columns only)
    nn::MlpState mlp;
    LinearModel::Cache linear;
    RowMatrixXf dnn_logits, linear_logits;  // combined: each part's (Summarize)
  };

  DnnModel(DnnModelOptions options, std::vector<ColumnPtr> sorted, int64_t input_dim,
           std::unique_ptr<nn::ComputeContext> context, std::unique_ptr<nn::Mlp> mlp,
           std::optional<LinearModel> linear)
      : options_(std::move(options)),
        columns_(std::move(sorted)),
        input_dim_(input_dim),
        context_(std::move(context)),
        mlp_(std::move(mlp)),
        linear_(std::move(linear)) {
    for (const ColumnPtr& c : columns_) {
      table_names_.push_back(GetEmbeddingSpec(*c) != nullptr
                                 ? absl::StrCat(kInputLayer, c->name(), "/embedding_weights")
                                 : "");
      has_embeddings_ |= GetEmbeddingSpec(*c) != nullptr;
    }
  }

  int64_t logits_dimension() const override { return options_.mlp.logits_dimension; }

  std::string OptimizerGroup(const std::string& variable) const override {
    if (!linear_.has_value()) return "";
    return absl::StartsWith(variable, "linear/") ? "linear" : "dnn";
  }

  absl::Status InitVariables(uint64_t seed, Variables* vars) const override {
    mlp_->InitVariables(seed, &vars->floats);
    std::mt19937_64 rng(seed ^ 0x5eedULL);
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (const EmbeddingSpec* e = GetEmbeddingSpec(*columns_[i])) {
        vars->floats[table_names_[i]] =
            TruncatedNormal(e->categorical->num_buckets(), e->dimension,
                            1.0f / std::sqrt(static_cast<float>(e->dimension)), &rng);
      }
    }
    if (linear_.has_value()) linear_->InitVariables(vars);
    return absl::OkStatus();
  }

  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> RowsRead(
      const FeatureMap& features) const override {
    std::map<std::string, std::vector<int64_t>> rows;
    if (linear_.has_value()) {
      ASSIGN_OR_RETURN(rows, linear_->RowsRead(features));
    }
    for (size_t i = 0; i < columns_.size(); ++i) {
      const EmbeddingSpec* e = GetEmbeddingSpec(*columns_[i]);
      if (e == nullptr) continue;
      std::vector<int64_t>& r = rows[table_names_[i]];
      // The linear part's rows of the same column are these rows.
      const std::string* twin =
          linear_.has_value() ? linear_->CategoricalWeightName(e->categorical.get()) : nullptr;
      if (twin != nullptr) {
        auto it = rows.find(*twin);
        if (it != rows.end()) {
          r = it->second;
          continue;
        }
      }
      ASSIGN_OR_RETURN(CategoricalIds ids, e->categorical->Ids(features));
      r = SortedDistinct(ids.ids);
    }
    return rows;
  }

  std::vector<std::string> RowSparseVariables() const override {
    std::vector<std::string> names;
    if (linear_.has_value()) names = linear_->RowSparseVariables();
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (GetEmbeddingSpec(*columns_[i]) != nullptr) names.push_back(table_names_[i]);
    }
    return names;
  }

  absl::StatusOr<RowMatrixXf> Forward(const FeatureMap& features, const Variables& vars,
                                      bool training, std::mt19937_64* rng,
                                      std::unique_ptr<ForwardState>* out_state) const override {
    auto state = std::make_unique<State>();
    state->ids.resize(columns_.size());
    std::vector<RowMatrixXf> parts(columns_.size());
    int64_t batch = -1;
    for (size_t i = 0; i < columns_.size(); ++i) {
      const FeatureColumn& c = *columns_[i];
      if (const EmbeddingSpec* e = GetEmbeddingSpec(c)) {
        ASSIGN_OR_RETURN(state->ids[i], e->categorical->Ids(features));
        auto table = vars.floats.find(table_names_[i]);
        if (table == vars.floats.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("dnn input: no variable '", table_names_[i], "'"));
        }
        ASSIGN_OR_RETURN(parts[i], CombineEmbeddings(table->second, state->ids[i],
                                                     e->combiner, e->max_norm));
      } else {
        ASSIGN_OR_RETURN(parts[i], c.Dense(features));
      }
      if (batch >= 0 && parts[i].rows() != batch) {
        return absl::InvalidArgumentError(absl::StrCat("dnn input: column '", c.name(), "' gives ",
                                                       parts[i].rows(), " examples, others ", batch));
      }
      batch = parts[i].rows();
    }
    RowMatrixXf x(batch, input_dim_);
    for (int64_t i = 0, offset = 0; i < static_cast<int64_t>(parts.size()); ++i) {
      x.middleCols(offset, parts[i].cols()) = parts[i];
      offset += parts[i].cols();
    }
    ASSIGN_OR_RETURN(RowMatrixXf logits, mlp_->Forward(vars.floats, x, training, rng, &state->mlp));
    if (linear_.has_value()) {
      // The embedded columns' ids serve the linear part's same columns.
      LinearModel::KnownIds known;
      for (size_t i = 0; i < columns_.size(); ++i) {
        if (const EmbeddingSpec* e = GetEmbeddingSpec(*columns_[i])) {
          known[e->categorical.get()] = &state->ids[i];
        }
      }
      ASSIGN_OR_RETURN(state->linear_logits,
                       linear_->Forward(features, vars, &state->linear, &known));
      state->dnn_logits = logits;
      logits += state->linear_logits;
    }
    *out_state = std::move(state);
    return logits;
  }

  absl::Status Backward(const ForwardState& base, const RowMatrixXf& dlogits,
                        const Variables& vars, Gradients* grads) const override {
    const State& state = static_cast<const State&>(base);
    ASSIGN_OR_RETURN(nn::MlpGradients g,
                     mlp_->Backward(vars.floats, state.mlp, dlogits, has_embeddings_,
                                    grads->on_final));
    for (auto& [name, grad] : g.by_name) grads->dense[name] = std::move(grad);
    for (auto& [name, value] : g.moving) grads->assign[name] = std::move(value);
    for (int64_t i = 0, offset = 0; i < static_cast<int64_t>(columns_.size()); ++i) {
      const FeatureColumn& c = *columns_[i];
      const int64_t width = c.dense_width();
      if (const EmbeddingSpec* e = GetEmbeddingSpec(c)) {
        ASSIGN_OR_RETURN(EmbeddingGrad eg,
                         CombineEmbeddingsGrad(e->categorical->num_buckets(), state.ids[i],
                                               e->combiner, g.dx.middleCols(offset, width)));
        grads->sparse[table_names_[i]] = SparseGradient{std::move(eg.ids), std::move(eg.grads)};
      }
      offset += width;
    }
    if (linear_.has_value()) RETURN_IF_ERROR(linear_->Backward(state.linear, dlogits, grads));
    return absl::OkStatus();
  }

  // TF's: each hidden layer's output (after dropout and batch norm) and the
  // network's logits (_DNNModelV2.call); combined: also the linear part's
  // logits ("linear/...") and its bias / fraction_of_zero_weights.
  void Summarize(const ForwardState& base, const Variables& vars,
                 ModelSummaries* out) const override {
    const State& state = static_cast<const State&>(base);
    const nn::MlpState& mlp = state.mlp;
    if (!mlp.valid) return;
    const size_t layers = mlp.hidden.size();
    for (size_t i = 0; i < layers; ++i) {
      out->AddLayer(absl::StrCat("dnn/hiddenlayer_", i),
                    i + 1 < layers ? mlp.hidden[i + 1].input : mlp.logits_input);
    }
    if (!linear_.has_value()) {
      // The logits are not kept: the last layer's output times the logits
      // kernel, plus the bias (only on summary steps).
      const RowMatrixXf& kernel = vars.floats.at("dnn/logits/kernel");
      const RowMatrixXf& bias = vars.floats.at("dnn/logits/bias");
      RowMatrixXf logits = mlp.logits_input * kernel;
      logits.rowwise() += bias.row(0);
      out->AddLayer("dnn/logits", logits);
      return;
    }
    out->AddLayer("dnn/logits", state.dnn_logits);
    linear_->Summarize(vars, out);
    out->AddLayer("linear", state.linear_logits);
  }

 private:
  const DnnModelOptions options_;
  const std::vector<ColumnPtr> columns_;  // sorted by name (DenseFeatures order)
  const int64_t input_dim_;
  const std::unique_ptr<nn::ComputeContext> context_;  // GEMM threads; may be null
  const std::unique_ptr<const nn::Mlp> mlp_;            // uses context_
  const std::optional<LinearModel> linear_;
  std::vector<std::string> table_names_;
  bool has_embeddings_ = false;  // else the network's input gradient is not needed
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeDnnModel(DnnModelOptions options) {
  if (options.dnn_columns.empty()) {
    return absl::InvalidArgumentError("a DNN needs at least one dense feature column");
  }
  ASSIGN_OR_RETURN(std::vector<ColumnPtr> sorted, SortedDenseColumns(options.dnn_columns));
  const int64_t input_dim = DenseFeaturesWidth(sorted);
  std::unique_ptr<nn::ComputeContext> context =
      options.num_threads > 1 ? std::make_unique<nn::ComputeContext>(options.num_threads)
                              : nullptr;
  ASSIGN_OR_RETURN(std::unique_ptr<nn::Mlp> mlp,
                   nn::Mlp::Create(options.mlp, input_dim, context.get()));
  std::optional<LinearModel> linear;
  if (!options.linear_columns.empty()) {
    ASSIGN_OR_RETURN(linear, LinearModel::Create(options.linear_columns,
                                                 options.mlp.logits_dimension));
  }
  return std::unique_ptr<Model>(
      new DnnModel(std::move(options), std::move(sorted), input_dim, std::move(context),
                   std::move(mlp), std::move(linear)));
}

}  // namespace estuary
