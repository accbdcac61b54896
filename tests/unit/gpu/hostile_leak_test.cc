// The leak paths of class 4 (docs/SECURITY.md), counted on the heap: each attack runs thousands of
// times against the device model in this process, and the bytes the allocator has handed out
// (mallinfo2's uordblks) must come back to where they were. The daemon-level view of the same
// paths (fds, resident memory) is tests/integration/hostile_guest_test.cc.
#include <gtest/gtest.h>
#include <malloc.h>

#include <functional>

#include "base/sanitizer_build.h"
#include "command_fixture.h"
#include "gpu/command_dispatcher.h"

namespace vgpu::gpu {
namespace {

size_t HeapBytesInUse() { return mallinfo2().uordblks; }

class HostileLeakTest : public testing::CommandFixture {
 protected:
  HostileLeakTest() {
    model_ = std::make_unique<CommandDispatcher>(DispatcherConfig{64ull << 20, true}, nullptr);
  }
  void SetUp() override {
    if (kSanitizerBuild) {
      GTEST_SKIP() << "the sanitizer's allocator does not report mallinfo2; LeakSanitizer "
                      "checks these paths in that build instead";
    }
  }
  // Warm-up (containers reach their steady capacity), then `repetitions` counted runs.
  void ExpectHeapFlat(const std::function<void()>& attack, int repetitions = 2000) {
    for (int i = 0; i < 20; ++i) attack();
    const size_t before = HeapBytesInUse();
    for (int i = 0; i < repetitions && !HasFatalFailure(); ++i) attack();
    const size_t after = HeapBytesInUse();
    RecordProperty("heap_growth_bytes", static_cast<int>(after - before));
    // Less than one byte per repetition: a leak of even the smallest allocation would show.
    EXPECT_LT(after, before + static_cast<size_t>(repetitions))
        << "heap grew by " << (after - before) << " bytes over " << repetitions << " repetitions";
  }
  ResponseType AttachTwice(uint32_t id) {
    Attach(id, kDataArea, 64 * 64 * 4);
    return Attach(id, kDataArea, 64 * 64 * 4);
  }
};

TEST_F(HostileLeakTest, FailedCreates) {
  ExpectHeapFlat([&] {
    ASSERT_EQ(Create(1, 64, 64, static_cast<Format>(0xdead)), ResponseType::kErrInvalidParameter);
    ASSERT_EQ(Create(1, 0xffffffff, 0xffffffff), ResponseType::kErrOutOfMemory);
    ASSERT_EQ(Create(0, 64, 64), ResponseType::kErrInvalidResourceId);
  });
}

TEST_F(HostileLeakTest, DoubleAttachBacking) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  ExpectHeapFlat([&] { ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kErrUnspec); });
}

TEST_F(HostileLeakTest, UnrefWithBackingAttachedAndOnAScanout) {
  ExpectHeapFlat([&] {
    ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
    ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
    ASSERT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
    ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
  });
}

TEST_F(HostileLeakTest, FailedAttachOutsideGuestMemory) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ExpectHeapFlat([&] { ASSERT_EQ(Attach(1, kMemorySize, 4096), ResponseType::kErrUnspec); });
}

TEST_F(HostileLeakTest, RepeatedSetScanout) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Create(2, 64, 64), ResponseType::kOkNodata);
  ExpectHeapFlat([&] {
    ASSERT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
    ASSERT_EQ(SetScanoutTo(0, 2, Rect{0, 0, 32, 32}), ResponseType::kOkNodata);
  });
}

TEST_F(HostileLeakTest, CursorFromAResourceThatIsNot64By64) {
  ASSERT_EQ(Create(1, 16, 16), ResponseType::kOkNodata);
  ASSERT_EQ(Create(2, 256, 256), ResponseType::kOkNodata);
  ExpectHeapFlat([&] {
    for (uint32_t id : {1u, 2u, 99u}) {
      UpdateCursor cursor{};
      cursor.hdr = Header(CommandType::kUpdateCursor);
      cursor.resource_id = id;
      RunCursor(Chain(&cursor, sizeof(cursor), 0));
    }
  });
}

}  // namespace
}  // namespace vgpu::gpu
