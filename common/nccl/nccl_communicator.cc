#include "common/nccl/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

std::string CudaError(cudaError_t e) {
  return absl::StrCat(cudaGetErrorName(e), ": ", cudaGetErrorString(e));
}

// How long the destructor waits for ncclCommFinalize before aborting.
constexpr absl::Duration kFinalizeTimeout = absl::Seconds(10);

// Polls `done` (true: finished) until it finishes, `stop` says stop, or the
// deadline passes: spinning first (latency of small collectives), then
// backing off. Returns false when it gave up.
template <typename Done, typename Stop>
bool Poll(absl::Time deadline, Done done, Stop stop) {
  for (int round = 0;; ++round) {
    if (done()) return true;
    if (stop() || absl::Now() > deadline) return false;
    if (round < 2000) {
      std::this_thread::yield();
    } else {
      absl::SleepFor(absl::Microseconds(50));
    }
  }
}

// Host memory allocated with cudaMallocHost (true asynchronous copies) or
// device memory, grown on demand; the stream is idle whenever it grows.
class Buffer {
 public:
  explicit Buffer(bool pinned_host) : pinned_host_(pinned_host) {}
  ~Buffer() { Free(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  absl::Status Reserve(size_t bytes) {
    if (bytes <= capacity_) return absl::OkStatus();
    Free();
    const size_t want = std::max<size_t>(bytes, 2 * capacity_);
    const cudaError_t e = pinned_host_ ? cudaMallocHost(&data_, want) : cudaMalloc(&data_, want);
    if (e != cudaSuccess) {
      data_ = nullptr;
      return absl::UnavailableError(absl::StrCat("allocating ", want, " bytes of ",
                                                 pinned_host_ ? "pinned host" : "device",
                                                 " memory: ", CudaError(e)));
    }
    capacity_ = want;
    return absl::OkStatus();
  }
  char* data() const { return static_cast<char*>(data_); }
  size_t capacity() const { return capacity_; }

 private:
  void Free() {
    if (data_ != nullptr) pinned_host_ ? cudaFreeHost(data_) : cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  const bool pinned_host_;
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

class NcclCommunicator final : public Communicator {
 public:
  // `names`: one per rank; empty strings: "rank N".
  NcclCommunicator(int rank, int device, std::vector<std::string> names)
      : rank_(rank), device_(device), names_(std::move(names)) {}

  ~NcclCommunicator() override {
    cudaSetDevice(device_);
    {
      absl::MutexLock lock(&mu_);
      if (comm_ != nullptr) {
        bool finalized = false;
        const bool healthy = broken_.ok() && !aborted_.load();
        const ncclResult_t r = healthy ? ncclCommFinalize(comm_) : ncclInvalidUsage;
        if (r == ncclSuccess || r == ncclInProgress) {
          ncclResult_t state = ncclInProgress;
          finalized = Poll(
              absl::Now() + kFinalizeTimeout,
              [&] {
                if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) state = ncclInternalError;
                return state != ncclInProgress;
              },
              [] { return false; });
          finalized = finalized && state == ncclSuccess;
        }
        if (finalized) {
          ncclCommDestroy(comm_);
        } else {
          ncclCommAbort(comm_);
        }
        comm_ = nullptr;
      }
    }
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // Joins the NCCL communicator of `size` ranks and creates the stream.
  absl::Status Init(const ncclUniqueId& id, absl::Time deadline) {
    cudaError_t e = cudaSetDevice(device_);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
      return absl::UnavailableError(
          absl::StrCat(PeerName(rank_), ": CUDA device ", device_, ": ", CudaError(e)));
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // every wait polls, so deadlines hold
    absl::MutexLock lock(&mu_);
    ncclResult_t r = ncclCommInitRankConfig(&comm_, size(), id, rank_, &config);
    if (r != ncclSuccess && r != ncclInProgress) {
      const absl::Status status = NcclStatus("ncclCommInitRank", r);
      if (comm_ != nullptr) ncclCommAbort(comm_);
      comm_ = nullptr;
      return status;
    }
    ncclResult_t state = ncclInProgress;
    const bool done = Poll(
        deadline,
        [&] {
          if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) state = ncclInternalError;
          return state != ncclInProgress;
        },
        [] { return false; });
    if (done && state == ncclSuccess) return absl::OkStatus();
    const absl::Status status =
        done ? NcclStatus("ncclCommInitRank", state)
             : absl::DeadlineExceededError(absl::StrCat(
                   PeerName(rank_), ": deadline exceeded in NCCL's rendezvous (ncclCommInitRank)"));
    ncclCommAbort(comm_);
    comm_ = nullptr;
    return status;
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(names_.size()); }
  std::string PeerName(int r) const override {
    if (r < 0 || r >= size() || names_[r].empty()) return absl::StrCat("rank ", r);
    return absl::StrCat(names_[r], " (rank ", r, ")");
  }

  absl::Status AllReduce(absl::Span<float> data, ReduceOp op, absl::Time deadline) override {
    return Run("AllReduce", deadline, [&] { return Reduce(data, ncclFloat32, op, deadline); });
  }

  absl::Status AllReduce(absl::Span<int64_t> data, ReduceOp op, absl::Time deadline) override {
    return Run("AllReduce", deadline, [&] { return Reduce(data, ncclInt64, op, deadline); });
  }

  absl::Status Broadcast(absl::Span<char> data, int root, absl::Time deadline) override {
    return Run("Broadcast", deadline, [&]() -> absl::Status {
      if (root < 0 || root >= size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            PeerName(rank_), ": Broadcast root ", root, " is out of range [0, ", size(), ")"));
      }
      const size_t n = data.size();
      if (n == 0) return absl::OkStatus();
      RETURN_IF_ERROR(Stage(data.data(), n));
      RETURN_IF_ERROR(Enqueue("Broadcast", deadline,
                              ncclBroadcast(device_in_.data(), device_in_.data(), n, ncclUint8,
                                            root, comm_, stream_)));
      RETURN_IF_ERROR(Unstage(device_in_, n, "Broadcast", deadline));
      std::memcpy(data.data(), host_.data(), n);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view mine,
                                                     absl::Time deadline) override {
    std::vector<std::string> gathered(size());
    absl::Status status = Run("AllGather", deadline, [&]() -> absl::Status {
      // Buffers grow only while the stream is idle (freeing memory an
      // enqueued copy still reads would synchronise, or worse).
      const int64_t length = static_cast<int64_t>(mine.size());
      RETURN_IF_ERROR(host_.Reserve(size() * sizeof(int64_t)));
      RETURN_IF_ERROR(device_out_.Reserve(size() * sizeof(int64_t)));
      RETURN_IF_ERROR(Stage(reinterpret_cast<const char*>(&length), sizeof(length)));
      RETURN_IF_ERROR(Enqueue("AllGather", deadline,
                              ncclAllGather(device_in_.data(), device_out_.data(), 1, ncclInt64,
                                            comm_, stream_)));
      RETURN_IF_ERROR(Unstage(device_out_, size() * sizeof(int64_t), "AllGather", deadline));
      std::vector<int64_t> lengths(size());
      std::memcpy(lengths.data(), host_.data(), size() * sizeof(int64_t));
      int64_t longest = 0;
      for (int r = 0; r < size(); ++r) {
        if (lengths[r] < 0) {
          return absl::InternalError(absl::StrCat("AllGather: ", PeerName(r), " sent length ",
                                                  lengths[r]));
        }
        longest = std::max(longest, lengths[r]);
      }
      if (longest == 0) return absl::OkStatus();
      const size_t slot = static_cast<size_t>(longest);
      RETURN_IF_ERROR(host_.Reserve(slot * size()));
      RETURN_IF_ERROR(device_out_.Reserve(slot * size()));
      std::memcpy(host_.data(), mine.data(), mine.size());
      std::memset(host_.data() + mine.size(), 0, slot - mine.size());
      RETURN_IF_ERROR(Stage(host_.data(), slot));
      RETURN_IF_ERROR(Enqueue("AllGather", deadline,
                              ncclAllGather(device_in_.data(), device_out_.data(), slot, ncclUint8,
                                            comm_, stream_)));
      RETURN_IF_ERROR(Unstage(device_out_, slot * size(), "AllGather", deadline));
      for (int r = 0; r < size(); ++r) gathered[r].assign(host_.data() + r * slot, lengths[r]);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return gathered;
  }

  absl::Status Barrier(absl::Time deadline) override {
    return Run("Barrier", deadline, [&]() -> absl::Status {
      RETURN_IF_ERROR(device_in_.Reserve(sizeof(int32_t)));
      RETURN_IF_ERROR(Enqueue("Barrier", deadline,
                              ncclAllReduce(device_in_.data(), device_in_.data(), 1, ncclInt32,
                                            ncclSum, comm_, stream_)));
      return WaitFor("Barrier", deadline, /*stream_too=*/true);
    });
  }

  void Abort() override {
    aborted_.store(true);
    absl::MutexLock lock(&mu_);
    // In flight: the operation's thread aborts NCCL when it sees the flag.
    if (!in_flight_ && comm_ != nullptr) {
      cudaSetDevice(device_);
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
  }

 private:
  absl::Status Cancelled() const {
    return absl::CancelledError(absl::StrCat(PeerName(rank_), ": the communicator was aborted"));
  }

  std::string Others() const {
    std::vector<std::string> others;
    for (int r = 0; r < size(); ++r) {
      if (r != rank_) others.push_back(PeerName(r));
    }
    return absl::StrJoin(others, ", ");
  }

  absl::Status NcclStatus(absl::string_view what, ncclResult_t r) const {
    const std::string message =
        absl::StrCat(PeerName(rank_), ": ", what, ": ", ncclGetErrorString(r),
                     comm_ != nullptr ? absl::StrCat(" (", ncclGetLastError(comm_), ")") : "");
    switch (r) {
      case ncclInvalidArgument:
      case ncclInvalidUsage:
        return absl::InvalidArgumentError(message);
      case ncclTimeout:
        return absl::DeadlineExceededError(message);
      case ncclRemoteError:
      case ncclSystemError:
        // A peer died or a connection broke; NCCL does not say which peer.
        return absl::UnavailableError(absl::StrCat(message, "; peers: ", Others()));
      default:
        return absl::UnavailableError(message);
    }
  }

  // Runs one operation: refuses it on a broken or aborted communicator;
  // afterwards records a failure (aborting NCCL so that no kernel is left
  // waiting) or an Abort() that came meanwhile.
  template <typename Body>
  absl::Status Run(const char* operation, absl::Time deadline, Body body) {
    {
      absl::MutexLock lock(&mu_);
      if (aborted_.load()) return Cancelled();
      if (!broken_.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("the communicator broke earlier: ", broken_.message()));
      }
      in_flight_ = true;
    }
    absl::Status status;
    const cudaError_t e = cudaSetDevice(device_);
    if (e != cudaSuccess) {
      status = absl::UnavailableError(
          absl::StrCat(PeerName(rank_), ": CUDA device ", device_, ": ", CudaError(e)));
    } else {
      status = body();
    }
    absl::MutexLock lock(&mu_);
    in_flight_ = false;
    if (aborted_.load()) status = Cancelled();
    if (!status.ok()) {
      if (!aborted_.load()) broken_ = status;
      if (comm_ != nullptr) ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    return status;
  }

  // Waits until NCCL has enqueued the last call (non-blocking
  // communicators enqueue in the background) and, with `stream_too`, until
  // the stream has run everything.
  absl::Status WaitFor(const char* operation, absl::Time deadline, bool stream_too) {
    absl::Status error;
    const bool done = Poll(
        deadline,
        [&] {
          ncclResult_t state = ncclSuccess;
          ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
          if (r != ncclSuccess) state = r;
          if (state == ncclInProgress) return false;
          if (state != ncclSuccess) {
            error = NcclStatus(operation, state);
            return true;
          }
          if (!stream_too) return true;
          const cudaError_t e = cudaStreamQuery(stream_);
          if (e == cudaErrorNotReady) return false;
          if (e != cudaSuccess) {
            error = absl::UnavailableError(
                absl::StrCat(PeerName(rank_), ": ", operation, ": ", CudaError(e)));
          }
          return true;
        },
        [&] { return aborted_.load(); });
    if (done) return error;
    if (aborted_.load()) return Cancelled();
    return absl::DeadlineExceededError(absl::StrCat(
        PeerName(rank_), ": deadline exceeded in ", operation, " waiting for ", Others(),
        " (NCCL cannot tell which of them is late)"));
  }

  // Checks a call's immediate result, then waits until it is enqueued.
  absl::Status Enqueue(const char* operation, absl::Time deadline, ncclResult_t r) {
    if (r != ncclSuccess && r != ncclInProgress) return NcclStatus(operation, r);
    return WaitFor(operation, deadline, /*stream_too=*/false);
  }

  // Copies `bytes` host bytes into device_in_ through the pinned buffer.
  absl::Status Stage(const char* from, size_t bytes) {
    RETURN_IF_ERROR(host_.Reserve(bytes));
    RETURN_IF_ERROR(device_in_.Reserve(bytes));
    if (from != host_.data()) std::memcpy(host_.data(), from, bytes);
    const cudaError_t e =
        cudaMemcpyAsync(device_in_.data(), host_.data(), bytes, cudaMemcpyHostToDevice, stream_);
    if (e != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat(PeerName(rank_), ": copy to the device: ", CudaError(e)));
    }
    return absl::OkStatus();
  }

  // Copies `bytes` of `device` into the pinned buffer (reserved before the
  // operation's Stage) and waits for the stream (and so for the collective
  // before it).
  absl::Status Unstage(const Buffer& device, size_t bytes, const char* operation,
                       absl::Time deadline) {
    if (bytes > host_.capacity()) {
      return absl::InternalError(absl::StrCat(operation, ": the pinned buffer was not reserved"));
    }
    const cudaError_t e =
        cudaMemcpyAsync(host_.data(), device.data(), bytes, cudaMemcpyDeviceToHost, stream_);
    if (e != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat(PeerName(rank_), ": copy from the device: ", CudaError(e)));
    }
    return WaitFor(operation, deadline, /*stream_too=*/true);
  }

  template <typename T>
  absl::Status Reduce(absl::Span<T> data, ncclDataType_t type, ReduceOp op, absl::Time deadline) {
    const size_t n = data.size();
    if (n == 0) return absl::OkStatus();
    const size_t bytes = n * sizeof(T);
    RETURN_IF_ERROR(Stage(reinterpret_cast<const char*>(data.data()), bytes));
    RETURN_IF_ERROR(Enqueue("AllReduce", deadline,
                            ncclAllReduce(device_in_.data(), device_in_.data(), n, type, ncclSum,
                                          comm_, stream_)));
    RETURN_IF_ERROR(Unstage(device_in_, bytes, "AllReduce", deadline));
    std::memcpy(data.data(), host_.data(), bytes);
    if (op == ReduceOp::kMean) {
      if constexpr (std::is_floating_point_v<T>) {
        const T divisor = static_cast<T>(size());
        for (T& x : data) x /= divisor;
      } else {
        for (T& x : data) x /= size();
      }
    }
    return absl::OkStatus();
  }

  const int rank_;
  const int device_;
  const std::vector<std::string> names_;
  cudaStream_t stream_ = nullptr;
  // Staging: host bytes go host_ -> device_in_ (reduced in place) ->
  // host_; all-gathers receive into device_out_. Touched only by the
  // operation in flight.
  Buffer host_{/*pinned_host=*/true};
  Buffer device_in_{/*pinned_host=*/false};
  Buffer device_out_{/*pinned_host=*/false};

  std::atomic<bool> aborted_{false};
  absl::Mutex mu_;
  // Read without the lock by the operation in flight (nothing else changes
  // it then).
  ncclComm_t comm_ = nullptr;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // the first failure
};

std::string Key(const NcclOptions& options, absl::string_view name) {
  return absl::StrCat(options.prefix, "/", options.generation, "/", name);
}

// The ranks that never marked themselves joined (for a rendezvous that
// timed out).
std::string MissingRanks(const NcclOptions& options, const std::vector<std::string>& names) {
  std::vector<std::string> missing;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  for (int r = 0; r < options.size; ++r) {
    if (!options.store->Get(Key(options, absl::StrCat("joined/", r)), deadline).ok()) {
      missing.push_back(names[r].empty() ? absl::StrCat("rank ", r)
                                         : absl::StrCat(names[r], " (rank ", r, ")"));
    }
  }
  return missing.empty() ? "every rank joined the store; NCCL's own rendezvous did not finish"
                         : absl::StrCat("never joined: ", absl::StrJoin(missing, ", "));
}

}  // namespace

absl::StatusOr<int> NcclVisibleDevices() {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess) {
    return absl::FailedPreconditionError(absl::StrCat("no usable GPU: ", CudaError(e)));
  }
  if (devices < 1) return absl::FailedPreconditionError("no CUDA device visible");
  return devices;
}

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const NcclOptions& options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("NcclOptions.store is null");
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(absl::StrCat("NcclOptions: rank ", options.rank,
                                                   " out of range for size ", options.size));
  }
  std::vector<std::string> names = options.peer_names;
  if (names.empty()) {
    names.resize(options.size);
  } else if (static_cast<int>(names.size()) != options.size) {
    return absl::InvalidArgumentError(absl::StrCat("NcclOptions: ", names.size(),
                                                   " peer_names for size ", options.size));
  }
  auto peer_name = [&names](int r) {
    return names[r].empty() ? absl::StrCat("rank ", r) : absl::StrCat(names[r], " (rank ", r, ")");
  };
  const std::string self = peer_name(options.rank);
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat(self, ": no usable GPU: ", CudaError(e)));
  }
  if (options.device < 0 || options.device >= devices) {
    return absl::InvalidArgumentError(absl::StrCat(self, ": NcclOptions.device ", options.device,
                                                   " out of range: ", devices, " GPUs visible"));
  }
  const std::string id_key = Key(options, "nccl_id");
  ncclUniqueId id;
  if (options.rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) {
      return absl::UnavailableError(absl::StrCat(self, ": ncclGetUniqueId: ", ncclGetErrorString(r)));
    }
    RETURN_IF_ERROR(options.store->Set(
        id_key, absl::BytesToHexString(absl::string_view(id.internal, sizeof(id.internal))),
        options.deadline));
  } else {
    absl::StatusOr<std::vector<std::string>> values = options.store->Wait({id_key}, options.deadline);
    if (!values.ok()) {
      return absl::Status(values.status().code(),
                          absl::StrCat(self, ": waiting for ", peer_name(0),
                                       "'s NCCL id: ", values.status().message()));
    }
    const std::string& hex = (*values)[0];
    const bool is_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
    if (hex.size() != 2 * sizeof(id.internal) || !is_hex) {
      return absl::InvalidArgumentError(absl::StrCat(self, ": store key ", id_key,
                                                     " does not hold an NCCL id (", hex.size(),
                                                     " characters)"));
    }
    const std::string bytes = absl::HexStringToBytes(hex);
    std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
  }
  RETURN_IF_ERROR(options.store->Set(Key(options, absl::StrCat("joined/", options.rank)), "1",
                                     options.deadline));
  auto communicator = std::make_unique<NcclCommunicator>(options.rank, options.device, names);
  absl::Status status = communicator->Init(id, options.deadline);
  if (absl::IsDeadlineExceeded(status)) {
    return absl::DeadlineExceededError(
        absl::StrCat(status.message(), ": ", MissingRanks(options, names)));
  }
  RETURN_IF_ERROR(status);
  return communicator;
}

}  // namespace estuary
