// Conversions between the C++ and wire forms of coordination types, and
// incarnation ids.
#ifndef ESTUARY_COMMON_COORDINATION_TYPES_H_
#define ESTUARY_COMMON_COORDINATION_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/cluster.h"
#include "proto/coordination.pb.h"

namespace estuary {

coordination::TaskId ToProto(const TaskId& t);
TaskId FromProto(const coordination::TaskId& t);
// "ALIVE", "DEAD", ...
std::string TaskStateName(coordination::TaskState s);
// "worker:0, worker:1"
std::string JoinTasks(const std::vector<TaskId>& tasks);

// A random 64-bit incarnation id for a new process (never 0).
uint64_t NewIncarnation();

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_TYPES_H_
