#include "common/collective/ring/shm_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <fstream>
#include <new>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"

namespace estuary::ring_internal {
namespace {

constexpr uint64_t kShmMagic = 0x4d48534745525245ull;  // "ERREGSHM"
// The control block gets a page of its own; the slots follow.
constexpr size_t kShmDataOffset = 4096;
static_assert(sizeof(ShmControl) <= kShmDataOffset, "control block");
constexpr size_t kShmBytes = kShmDataOffset + kShmSlots * kShmSlotBytes;

uint32_t* Word(std::atomic<uint32_t>* a) { return reinterpret_cast<uint32_t*>(a); }

// A shared (not FUTEX_PRIVATE) futex: the two sides are processes.
void FutexWake(std::atomic<uint32_t>* word) {
  (void)syscall(SYS_futex, Word(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

}  // namespace

ShmChannel::ShmChannel(void* base, size_t bytes)
    : base_(base),
      bytes_(bytes),
      control_(static_cast<ShmControl*>(base)),
      data_(static_cast<char*>(base) + kShmDataOffset) {}

ShmChannel::~ShmChannel() { munmap(base_, bytes_); }

absl::StatusOr<std::unique_ptr<ShmChannel>> ShmChannel::Create(const ShmCookie& cookie,
                                                                 std::string* name) {
  absl::StatusOr<std::string> random = RandomBytes(16);
  if (!random.ok()) return random.status();
  *name = absl::StrCat(kShmNamePrefix, getpid(), "-", absl::BytesToHexString(*random));
  const int fd = shm_open(name->c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(Errno("shm_open"));
  auto fail = [&](const char* what) {
    const std::string message = Errno(what);
    close(fd);
    shm_unlink(name->c_str());
    return absl::UnavailableError(message);
  };
  if (ftruncate(fd, static_cast<off_t>(kShmBytes)) != 0) return fail("ftruncate");
  // Reserve the pages now: a full /dev/shm fails here, not with SIGBUS at
  // the first write into a hole.
  if (const int e = posix_fallocate(fd, 0, static_cast<off_t>(kShmBytes)); e != 0) {
    errno = e;
    return fail("posix_fallocate");
  }
  void* base = mmap(nullptr, kShmBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail("mmap");
  close(fd);
  auto* control = new (base) ShmControl{};
  control->cookie = cookie;
  control->slots = kShmSlots;
  control->slot_bytes = static_cast<uint32_t>(kShmSlotBytes);
  control->head.store(0);
  control->tail.store(0);
  control->head_sleepers.store(0);
  control->tail_sleepers.store(0);
  // Published last: an opener that sees the magic sees the rest (the TCP
  // message carrying the name orders it anyway).
  std::atomic_thread_fence(std::memory_order_release);
  control->magic = kShmMagic;
  return std::unique_ptr<ShmChannel>(new ShmChannel(base, kShmBytes));
}

absl::StatusOr<std::unique_ptr<ShmChannel>> ShmChannel::Open(const std::string& name,
                                                               const ShmCookie& cookie) {
  if (!absl::StartsWith(name, kShmNamePrefix) || name.find('/', 1) != std::string::npos ||
      name.size() > 100) {
    return absl::InvalidArgumentError(absl::StrCat("bad shared-memory segment name '", name, "'"));
  }
  const int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(Errno("shm_open"));
  // Nobody else needs the name: from now on the mapping alone keeps the
  // segment, and it goes with the last process that maps it.
  shm_unlink(name.c_str());
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size != static_cast<off_t>(kShmBytes)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("shared-memory segment ", name, " has ", st.st_size, " bytes, not ", kShmBytes));
  }
  void* base = mmap(nullptr, kShmBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) return absl::UnavailableError(Errno("mmap"));
  auto channel = std::unique_ptr<ShmChannel>(new ShmChannel(base, kShmBytes));
  const ShmControl& c = channel->control();
  if (c.magic != kShmMagic || c.cookie != cookie || c.slots != kShmSlots ||
      c.slot_bytes != kShmSlotBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("shared-memory segment ", name, " is not the one the peer created"));
  }
  return channel;
}

void ShmChannel::Unlink(const std::string& name) {
  if (!name.empty()) shm_unlink(name.c_str());
}

void ShmChannel::Publish() {
  // seq_cst store, then the sleeper count: with the consumer's increment of
  // the count before its re-check of head (ShmSleep), one of the two sees
  // the other, so a wake-up is never lost (and FUTEX_WAIT re-checks the
  // value itself).
  control_->head.store(control_->head.load(std::memory_order_relaxed) + 1);
  if (control_->head_sleepers.load() != 0) FutexWake(&control_->head);
}

void ShmChannel::Release() {
  control_->tail.store(control_->tail.load(std::memory_order_relaxed) + 1);
  if (control_->tail_sleepers.load() != 0) FutexWake(&control_->tail);
}

void ShmChannel::WakeAll() {
  FutexWake(&control_->head);
  FutexWake(&control_->tail);
}

void ShmSleep(std::atomic<uint32_t>* word, std::atomic<uint32_t>* sleepers, uint32_t value,
              absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return;
  sleepers->fetch_add(1);
  if (word->load() == value) {
    const timespec ts = absl::ToTimespec(timeout);
    (void)syscall(SYS_futex, Word(word), FUTEX_WAIT, value, &ts, nullptr, 0);
  }
  sleepers->fetch_sub(1);
}

std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!std::getline(in, id)) return "";
  return id;
}

}  // namespace estuary::ring_internal
