// The evaluator binary (TF_CONFIG task evaluator:0, inside or outside
// `cluster`).
#include "common/role_main.h"
#include "distribute/evaluator.h"

int main(int argc, char** argv) {
  return estuary::RoleMain(
      argc, argv,
      {"evaluator",
       {"evaluator"},
       "Runs the evaluator of an Estuary cluster: joins the chief, then evaluates "
       "checkpoints as training writes them and exits when training is done."},
      [](const estuary::RoleContext& ctx) {
        return estuary::RunMember(ctx, estuary::RunEvaluator);
      });
}
