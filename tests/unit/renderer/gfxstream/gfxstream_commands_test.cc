#include "renderer/gfxstream/gfxstream_commands.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace vgpu::renderer::gfxstream {
namespace {

std::vector<uint8_t> Stream(const std::vector<uint32_t>& words) {
  std::vector<uint8_t> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

TEST(GfxstreamCommandsTest, ContextCreateNamesItsRing) {
  const GfxstreamCommand command = DecodeGfxstreamCommand(Stream({0x1001, 42}));
  ASSERT_TRUE(std::holds_alternative<GfxstreamContextCreate>(command));
  EXPECT_EQ(std::get<GfxstreamContextCreate>(command).ring, ResourceId{42});
}

TEST(GfxstreamCommandsTest, ResourceCreate3dCarriesItsShapeAndTheLow32BitsOfItsBlobId) {
  const GfxstreamCommand command = DecodeGfxstreamCommand(
      Stream({0xa003, 2, 67, 1u << 1, 640, 480, 1, 3, 4, 0, 9, 0, 0x12345678, 0xabcdef01}));
  ASSERT_TRUE(std::holds_alternative<GfxstreamResourceCreate3d>(command));
  const auto& create = std::get<GfxstreamResourceCreate3d>(command);
  EXPECT_EQ(create.shape.target, 2u);
  EXPECT_EQ(create.shape.format, 67u);
  EXPECT_EQ(create.shape.bind, 1u << 1);
  EXPECT_EQ(create.shape.width, 640u);
  EXPECT_EQ(create.shape.height, 480u);
  EXPECT_EQ(create.shape.depth, 1u);
  EXPECT_EQ(create.shape.array_size, 3u);
  EXPECT_EQ(create.shape.last_level, 4u);
  EXPECT_EQ(create.shape.flags, 9u);
  EXPECT_EQ(create.blob_id, 0x12345678u);
}

TEST(GfxstreamCommandsTest, ShortStreamsReadAsZerosAfterTheirEnd) {
  const GfxstreamCommand command = DecodeGfxstreamCommand(Stream({0xa003, 2, 67, 2, 640}));
  ASSERT_TRUE(std::holds_alternative<GfxstreamResourceCreate3d>(command));
  EXPECT_EQ(std::get<GfxstreamResourceCreate3d>(command).shape.width, 640u);
  EXPECT_EQ(std::get<GfxstreamResourceCreate3d>(command).shape.height, 0u);
  const GfxstreamCommand ring = DecodeGfxstreamCommand(Stream({0x1001}));
  ASSERT_TRUE(std::holds_alternative<GfxstreamContextCreate>(ring));
  EXPECT_EQ(std::get<GfxstreamContextCreate>(ring).ring, ResourceId{0});
}

TEST(GfxstreamCommandsTest, OtherOpcodesAndStreamsWithoutOneAreNotLookedInto) {
  EXPECT_TRUE(
      std::holds_alternative<std::monostate>(DecodeGfxstreamCommand(Stream({0xf002, 0, 0}))));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(DecodeGfxstreamCommand(Stream({0x1002, 5}))));
  const std::vector<uint8_t> three = {0x01, 0x10, 0x00};
  EXPECT_TRUE(std::holds_alternative<std::monostate>(DecodeGfxstreamCommand(three)));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(DecodeGfxstreamCommand({})));
}

}  // namespace
}  // namespace vgpu::renderer::gfxstream
