// The ring record (VHOST_DEVICE_GPU_RECORD_VIRTQUEUE): the rings as they are, then the indirect
// tables and readable buffers of the chains made available, and nothing when none is.
#include "virtio/ring_record.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "memory_fixture.h"

namespace vgpu::virtio {
namespace {

using testing::HostPointer;
using testing::kAvailable;
using testing::kDescriptors;
using testing::MakeMemory;
using testing::WriteDescriptor;

constexpr uint64_t kIndirectTable = 0x4000;
constexpr uint16_t kSize = 8;

struct ParsedRecord {
  RingRecordHeader header{};
  std::vector<uint8_t> table;
  std::vector<uint8_t> available;
  std::vector<uint8_t> used;
  std::map<uint64_t, std::vector<uint8_t>> pieces;
};

ParsedRecord Parse(const std::vector<uint8_t>& record) {
  ParsedRecord parsed;
  size_t offset = 0;
  auto take = [&](size_t length) {
    EXPECT_LE(offset + length, record.size());
    std::vector<uint8_t> bytes(record.begin() + offset, record.begin() + offset + length);
    offset += length;
    return bytes;
  };
  std::memcpy(&parsed.header, take(sizeof(RingRecordHeader)).data(), sizeof(RingRecordHeader));
  const size_t size = parsed.header.queue_size;
  parsed.table = take(16 * size);
  parsed.available = take(6 + 2 * size);
  parsed.used = take(6 + 8 * size);
  for (uint32_t i = 0; i < parsed.header.piece_count; ++i) {
    RingRecordPiece piece{};
    std::memcpy(&piece, take(sizeof(piece)).data(), sizeof(piece));
    parsed.pieces[piece.guest_address] = take(piece.length);
  }
  EXPECT_EQ(offset, record.size());
  return parsed;
}

class RingRecordTest : public ::testing::Test {
 protected:
  std::unique_ptr<SplitVirtqueue> MakeQueue(uint16_t next_available) {
    auto queue =
        SplitVirtqueue::Create(memory_, testing::RingLayout(kSize), {true, true}, next_available);
    EXPECT_TRUE(queue) << queue.error().message;
    return std::move(*queue);
  }
  void Fill(uint64_t address, size_t length, uint8_t value) {
    std::memset(HostPointer(*memory_, address, length), value, length);
  }
  void SetAvailable(uint16_t index, std::vector<uint16_t> heads, uint16_t first_slot) {
    for (size_t i = 0; i < heads.size(); ++i) {
      std::memcpy(HostPointer(*memory_, kAvailable + 4 + 2 * ((first_slot + i) % kSize), 2),
                  &heads[i], 2);
    }
    std::memcpy(HostPointer(*memory_, kAvailable + 2, 2), &index, 2);
  }

  std::shared_ptr<const GuestMemory> memory_ = MakeMemory({{0, 0x10000}});
};

TEST_F(RingRecordTest, RecordsRingsIndirectTablesAndReadableBuffersOfAvailableChains) {
  // Chain at head 2: an indirect table of a 24-byte request and a writable response. Chain at
  // head 5: a 40-byte request chained to a writable buffer. Head 7 was used before: not recorded.
  WriteDescriptor(*memory_, kDescriptors, 2,
                  VirtqDescriptor{kIndirectTable, 32, kDescriptorFlagIndirect, 0});
  WriteDescriptor(*memory_, kIndirectTable, 0, VirtqDescriptor{0x5000, 24, kDescriptorFlagNext, 1});
  WriteDescriptor(*memory_, kIndirectTable, 1,
                  VirtqDescriptor{0x6000, 24, kDescriptorFlagWrite, 0});
  WriteDescriptor(*memory_, kDescriptors, 5, VirtqDescriptor{0x7000, 40, kDescriptorFlagNext, 6});
  WriteDescriptor(*memory_, kDescriptors, 6, VirtqDescriptor{0x8000, 64, kDescriptorFlagWrite, 0});
  WriteDescriptor(*memory_, kDescriptors, 7, VirtqDescriptor{0x9000, 16, 0, 0});
  Fill(0x5000, 24, 0x11);
  Fill(0x6000, 24, 0x22);
  Fill(0x7000, 40, 0x33);
  Fill(0x9000, 16, 0x44);
  SetAvailable(/*index=*/11, {7, 2, 5}, /*first_slot=*/8);  // Slots 0 (7), 1 (2) and 2 (5).
  auto queue = MakeQueue(/*next_available=*/9);             // Heads 2 and 5 are pending.

  const ParsedRecord record = Parse(EncodeRingRecord(*queue, 1));

  EXPECT_EQ(record.header.queue_index, 1);
  EXPECT_EQ(record.header.queue_size, kSize);
  EXPECT_EQ(record.header.flags, kRingRecordIndirect | kRingRecordEventIndex);
  EXPECT_EQ(record.header.next_available, 9);
  EXPECT_EQ(0, std::memcmp(record.table.data(), HostPointer(*memory_, kDescriptors, 16 * kSize),
                           record.table.size()));
  EXPECT_EQ(0, std::memcmp(record.available.data(),
                           HostPointer(*memory_, kAvailable, record.available.size()),
                           record.available.size()));
  ASSERT_EQ(record.pieces.size(), 3u);
  EXPECT_EQ(record.pieces.at(kIndirectTable).size(), 32u);
  EXPECT_EQ(record.pieces.at(0x5000), std::vector<uint8_t>(24, 0x11));
  EXPECT_EQ(record.pieces.at(0x7000), std::vector<uint8_t>(40, 0x33));
  EXPECT_FALSE(record.pieces.contains(0x6000));  // Writable: its descriptor is enough.
  EXPECT_FALSE(record.pieces.contains(0x9000));  // Not available any more.
}

TEST_F(RingRecordTest, NothingAvailableOrALoopingChainIsBounded) {
  SetAvailable(/*index=*/0, {}, 0);
  EXPECT_TRUE(EncodeRingRecord(*MakeQueue(0), 0).empty());

  // A chain that loops on itself and a readable buffer outside guest memory: recorded as far as
  // they go, once each.
  WriteDescriptor(*memory_, kDescriptors, 0, VirtqDescriptor{0x5000, 8, kDescriptorFlagNext, 1});
  WriteDescriptor(*memory_, kDescriptors, 1, VirtqDescriptor{0x5000, 8, kDescriptorFlagNext, 0});
  WriteDescriptor(*memory_, kDescriptors, 3, VirtqDescriptor{0x100000, 8, 0, 0});
  SetAvailable(/*index=*/2, {0, 3}, 0);
  const ParsedRecord record = Parse(EncodeRingRecord(*MakeQueue(0), 0));
  EXPECT_EQ(record.pieces.size(), 1u);
  EXPECT_TRUE(record.pieces.contains(0x5000));
}

}  // namespace
}  // namespace vgpu::virtio
