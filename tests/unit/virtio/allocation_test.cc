// The per-command path of a queue allocates nothing: popping a chain (an indirect table of three
// descriptors, as Linux's virtio-gpu driver sends a command), admitting it, answering it and
// returning it (docs/PERFORMANCE.md, "Per command").
#include <gtest/gtest.h>

#include <cstring>

#include "memory_fixture.h"
#include "support/allocation_counter.h"
#include "virtio/pending_chain.h"
#include "virtio/split_virtqueue.h"

namespace vgpu::virtio {
namespace {

using testing::HostPointer;
using testing::kAvailable;
using testing::kDescriptors;
using testing::MakeMemory;
using testing::WriteDescriptor;

constexpr uint16_t kSize = 64;
constexpr uint64_t kIndirect = 0x8000;
constexpr uint64_t kRequest = 0x9000;
constexpr uint64_t kResponse = 0xa000;

TEST(QueueAllocationTest, PopAdmitAnswerAndReturnAllocateNothing) {
  std::shared_ptr<const GuestMemory> memory = MakeMemory({{0, 0x10000}});
  auto queue = SplitVirtqueue::Create(memory, testing::RingLayout(kSize),
                                      {.indirect_descriptors = true, .event_index = true}, 0);
  ASSERT_TRUE(queue);
  // Head 0: an indirect table of a 24-byte request, a 32-byte payload and a 24-byte response.
  WriteDescriptor(*memory, kDescriptors, 0,
                  VirtqDescriptor{kIndirect, 48, kDescriptorFlagIndirect, 0});
  WriteDescriptor(*memory, kIndirect, 0, VirtqDescriptor{kRequest, 24, kDescriptorFlagNext, 1});
  WriteDescriptor(*memory, kIndirect, 1,
                  VirtqDescriptor{kRequest + 24, 32, kDescriptorFlagNext, 2});
  WriteDescriptor(*memory, kIndirect, 2, VirtqDescriptor{kResponse, 24, kDescriptorFlagWrite, 0});
  InFlightChains in_flight;
  in_flight.Start(queue->get(), true);
  uint16_t* available_index = reinterpret_cast<uint16_t*>(HostPointer(*memory, kAvailable + 2, 2));
  const uint8_t response[24] = {1};
  auto one_command = [&] {
    *reinterpret_cast<uint16_t*>(
        HostPointer(*memory, kAvailable + 4 + 2 * (*available_index % kSize), 2)) = 0;
    ++*available_index;
    std::optional<PoppedChain> popped = (*queue)->Pop();
    ASSERT_TRUE(popped && popped->chain);
    DescriptorChain& chain = *popped->chain;
    PendingChain pending =
        in_flight.Admit(chain.head_index, std::move(chain.writable), chain.writable_length);
    ASSERT_EQ(pending.Complete(response), 24u);
    ASSERT_FALSE((*queue)->EnableKickAndRecheck());
  };
  test::AllocationCounter warm_up_counter;
  for (int warm_up = 0; warm_up < 4; ++warm_up) one_command();
  EXPECT_GT(warm_up_counter.count(), 0u)
      << "the counter counts (the in-flight table grows once)";  // The in-flight table's capacity.
  test::AllocationCounter counter;
  for (int command = 0; command < 1000; ++command) one_command();
  EXPECT_EQ(counter.count(), 0u) << "allocations in 1000 commands";
}

}  // namespace
}  // namespace vgpu::virtio
