#include "estimator/premade.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

class LinearAsModel : public Model {
 public:
  explicit LinearAsModel(LinearModel linear) : linear_(std::move(linear)) {}
  struct State : ForwardState {
    LinearModel::Cache cache;
  };
  int64_t logits_dimension() const override { return linear_.logits_dimension(); }
  absl::Status InitVariables(uint64_t, Variables* vars) const override {
    linear_.InitVariables(vars);
    return absl::OkStatus();
  }
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> RowsRead(
      const FeatureMap& features) const override {
    return linear_.RowsRead(features);
  }
  std::vector<std::string> RowSparseVariables() const override {
    return linear_.RowSparseVariables();
  }
  absl::StatusOr<RowMatrixXf> Forward(const FeatureMap& features, const Variables& vars, bool,
                                      std::mt19937_64*,
                                      std::unique_ptr<ForwardState>* state) const override {
    auto s = std::make_unique<State>();
    ASSIGN_OR_RETURN(RowMatrixXf logits, linear_.Forward(features, vars, &s->cache));
    *state = std::move(s);
    return logits;
  }
  absl::Status Backward(const ForwardState& state, const RowMatrixXf& dlogits, const Variables&,
                        Gradients* grads) const override {
    return linear_.Backward(static_cast<const State&>(state).cache, dlogits, grads);
  }
  void Summarize(const ForwardState&, const Variables& vars, ModelSummaries* out) const override {
    linear_.Summarize(vars, out);
  }

 private:
  LinearModel linear_;
};

class BaselineModel : public Model {
 public:
  explicit BaselineModel(int64_t dim) : dim_(dim) {}
  struct State : ForwardState {
    int64_t batch = 0;
  };
  int64_t logits_dimension() const override { return dim_; }
  absl::Status InitVariables(uint64_t, Variables* vars) const override {
    vars->floats["baseline/bias"] = RowMatrixXf::Zero(1, dim_);
    return absl::OkStatus();
  }
  absl::StatusOr<RowMatrixXf> Forward(const FeatureMap& features, const Variables& vars, bool,
                                      std::mt19937_64*,
                                      std::unique_ptr<ForwardState>* state) const override {
    int64_t batch = -1;
    for (const auto& [key, value] : features) {
      batch = std::holds_alternative<Tensor>(value) ? std::get<Tensor>(value).batch_size()
                                                    : std::get<SparseTensor>(value).batch_size;
      break;
    }
    if (batch < 0) return absl::InvalidArgumentError("baseline model: the batch has no features");
    auto s = std::make_unique<State>();
    s->batch = batch;
    *state = std::move(s);
    return RowMatrixXf(vars.floats.at("baseline/bias").replicate(batch, 1));
  }
  absl::Status Backward(const ForwardState&, const RowMatrixXf& dlogits, const Variables&,
                        Gradients* grads) const override {
    grads->dense["baseline/bias"] = dlogits.colwise().sum();
    return absl::OkStatus();
  }

 private:
  int64_t dim_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeLinearModel(std::vector<ColumnPtr> columns,
                                                       int64_t logits_dimension) {
  ASSIGN_OR_RETURN(LinearModel linear, LinearModel::Create(std::move(columns), logits_dimension));
  return std::unique_ptr<Model>(new LinearAsModel(std::move(linear)));
}

std::unique_ptr<Model> MakeBaselineModel(int64_t logits_dimension) {
  return std::make_unique<BaselineModel>(logits_dimension);
}

}  // namespace estuary
