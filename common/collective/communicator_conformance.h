// The one test suite every Communicator implementation passes (testonly):
// a value-parameterised gtest suite. An implementation's test instantiates
// it with a factory that creates the communicators of one fresh group:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Ring, CommunicatorConformanceTest,
//       testing::Values(ConformanceParam{"ring", [&](int world) {
//         return CreateInThreads(world, [&](int rank) { ...; return CreateRingCommunicator(o); });
//       }}),
//       ConformanceParamName);
//
// The test binary must link :communicator_conformance (its TEST_Ps register
// when linked: alwayslink).
//
// Each test runs every rank on its own thread. Checked: AllReduce float32
// and int64, sum and mean, at 1, 2, 3, 7, 1000, 4097 and 1M+3 elements for
// worlds 1..max_world and 16M floats (64 MiB) for world 2, against a
// reference taken in double in rank order: every rank's result bit-identical
// to rank 0's, and within (world + 1) * FLT_EPSILON * sum |x_i| (divided by
// the world for mean) of the reference; int64 exact (mean truncates toward
// zero). Broadcast from every root (0 bytes .. 1 MiB + 3); AllGather of
// different lengths, empty ones included; Barrier (no rank leaves before
// every rank arrived); a long mixed sequence. Errors: a rank that never
// calls -> DeadlineExceeded naming it (PeerName) on the others; Abort() ->
// Cancelled on that rank (in flight and later) and Unavailable or
// DeadlineExceeded naming it on a peer; after a failure every operation ->
// FailedPrecondition (Cancelled after Abort); a root out of range ->
// InvalidArgument; ranks disagreeing on the length or operation ->
// InvalidArgument (when the implementation says it detects that).
#ifndef ESTUARY_COMMON_COLLECTIVE_COMMUNICATOR_CONFORMANCE_H_
#define ESTUARY_COMMON_COLLECTIVE_COMMUNICATOR_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/collective/communicator.h"
#include "gtest/gtest.h"

namespace estuary {

// Creates the `world` communicators of one fresh group, indexed by rank
// (called once per test case and world; a ring factory uses a new
// generation or prefix each time). Unimplemented: this world cannot be made
// here (e.g. more ranks than GPUs); the tests leave it out, and skip when
// they could make no world at all.
using CommunicatorFactory =
    std::function<absl::StatusOr<std::vector<std::unique_ptr<Communicator>>>(int world)>;

struct ConformanceOptions {
  int max_world = 4;
  // The 16M-float (64 MiB) all-reduce at world 2.
  bool big = true;
  // Ranks that disagree on an operation's length or kind fail with
  // InvalidArgument (false: the implementation cannot tell; not tested).
  bool detects_mismatch = true;
  // Deadline of the calls that must succeed.
  absl::Duration deadline = absl::Seconds(60);
  // Deadline of the calls that wait for a rank that never calls.
  absl::Duration stall_deadline = absl::Seconds(2);
};

struct ConformanceParam {
  std::string name;  // the instantiation's name: letters, digits, '_'
  CommunicatorFactory make;
  ConformanceOptions options;
};

std::string ConformanceParamName(const testing::TestParamInfo<ConformanceParam>& info);

// Creates rank r's communicator with `create(r)` on a thread of its own for
// every rank at once (a ring's creation blocks in its rendezvous) and
// returns them by rank, or the first error (by rank).
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateInThreads(
    int world, const std::function<absl::StatusOr<std::unique_ptr<Communicator>>(int rank)>& create);

class CommunicatorConformanceTest : public testing::TestWithParam<ConformanceParam> {};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COLLECTIVE_COMMUNICATOR_CONFORMANCE_H_
