// The shared-memory channel on its own (one process, both ends): counters,
// their wrap-around, and the values the two sides sleep on.
#include "common/collective/ring/shm_channel.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace estuary::ring_internal {
namespace {

std::unique_ptr<ShmChannel> NewChannel() {
  ShmCookie cookie{};
  cookie[0] = 7;
  std::string name;
  auto c = ShmChannel::Create(cookie, &name);
  EXPECT_TRUE(c.ok()) << c.status();
  ShmChannel::Unlink(name);
  return c.ok() ? *std::move(c) : nullptr;
}

// How long ShmSleep(word, value, timeout) slept.
absl::Duration Slept(std::atomic<uint32_t>* word, std::atomic<uint32_t>* sleepers,
                     uint32_t value, absl::Duration timeout) {
  const absl::Time start = absl::Now();
  ShmSleep(word, sleepers, value, timeout);
  return absl::Now() - start;
}

// The 64 MiB deadlock of issue 10: the producer found the ring full, then
// (before it read the value to sleep on) the consumer emptied all of it and
// went to wait for the producer. A producer that sleeps on a fresh load of
// tail waits for a move that never comes; FullTail (from head) does not.
TEST(ShmChannelTest, ProducerThatFoundTheRingFullDoesNotSleepOnceItWasEmptied) {
  auto c = NewChannel();
  ASSERT_NE(c, nullptr);
  ShmControl& k = c->control();
  for (uint32_t i = 0; i < kShmSlots; ++i) {
    ASSERT_TRUE(c->CanProduce());
    c->Publish();
  }
  ASSERT_FALSE(c->CanProduce());  // the producer decides to wait ...
  for (uint32_t i = 0; i < kShmSlots; ++i) {
    ASSERT_TRUE(c->CanConsume());
    c->Release();  // ... while the consumer empties the ring
  }
  ASSERT_FALSE(c->CanConsume());
  EXPECT_LT(Slept(&k.tail, &k.tail_sleepers, c->FullTail(), absl::Seconds(5)),
            absl::Seconds(1));
  // What the deadlocked code did: a fresh tail.load() sleeps out its whole
  // timeout (in the ring: every slice until the call's deadline).
  EXPECT_GE(Slept(&k.tail, &k.tail_sleepers, k.tail.load(), absl::Milliseconds(100)),
            absl::Milliseconds(90));
  // And the consumer's value: it sleeps while the ring stays empty and not
  // once something is published.
  EXPECT_GE(Slept(&k.head, &k.head_sleepers, c->EmptyHead(), absl::Milliseconds(100)),
            absl::Milliseconds(90));
  c->Publish();
  EXPECT_LT(Slept(&k.head, &k.head_sleepers, c->EmptyHead(), absl::Seconds(5)),
            absl::Seconds(1));
  EXPECT_EQ(k.head_sleepers.load(), 0u);
  EXPECT_EQ(k.tail_sleepers.load(), 0u);
}

TEST(ShmChannelTest, CountersWrapAround) {
  auto c = NewChannel();
  ASSERT_NE(c, nullptr);
  ShmControl& k = c->control();
  const uint32_t start = UINT32_MAX - 5;
  k.head.store(start);
  k.tail.store(start);
  for (uint32_t round = 0; round < 3; ++round) {
    for (uint32_t i = 0; i < kShmSlots; ++i) {
      ASSERT_TRUE(c->CanProduce()) << round << " " << i;
      std::memset(c->slot(c->head()), static_cast<int>(i + 1), 64);
      c->Publish();
    }
    EXPECT_FALSE(c->CanProduce());
    EXPECT_EQ(k.tail.load(), c->FullTail());
    for (uint32_t i = 0; i < kShmSlots; ++i) {
      ASSERT_TRUE(c->CanConsume());
      EXPECT_EQ(c->slot(c->tail())[0], static_cast<char>(i + 1));
      c->Release();
    }
    EXPECT_FALSE(c->CanConsume());
    EXPECT_EQ(k.head.load(), c->EmptyHead());
  }
}

}  // namespace
}  // namespace estuary::ring_internal
