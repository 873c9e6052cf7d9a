#include "common/coordination/types.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace estuary {

coordination::TaskId ToProto(const TaskId& t) {
  coordination::TaskId p;
  p.set_type(t.type);
  p.set_index(t.index);
  return p;
}

TaskId FromProto(const coordination::TaskId& t) { return TaskId{t.type(), t.index()}; }

std::string TaskStateName(coordination::TaskState s) {
  switch (s) {
    case coordination::TASK_UNREGISTERED: return "UNREGISTERED";
    case coordination::TASK_ALIVE: return "ALIVE";
    case coordination::TASK_DEAD: return "DEAD";
    case coordination::TASK_DISCONNECTED: return "DISCONNECTED";
    default: return "UNKNOWN";
  }
}

std::string JoinTasks(const std::vector<TaskId>& tasks) {
  return absl::StrJoin(tasks, ", ", [](std::string* out, const TaskId& t) {
    absl::StrAppend(out, t.ToString());
  });
}

uint64_t NewIncarnation() {
  absl::BitGen gen;
  uint64_t v = 0;
  while (v == 0) v = absl::Uniform<uint64_t>(gen);
  return v;
}

}  // namespace estuary
