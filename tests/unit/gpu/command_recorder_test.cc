// The command recorder's file format (records of magic, length, request bytes) and its off state.
#include "gpu/command_recorder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "gpu/protocol.h"

namespace vgpu::gpu {
namespace {

std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TEST(CommandRecorderTest, RecordsAreMagicLengthThenTheRequestWithItsPayload) {
  const std::string path = ::testing::TempDir() + "command-recorder-test.rec";
  unlink(path.c_str());
  {
    CommandRecorder recorder = CommandRecorder::ToFile(path);
    ASSERT_TRUE(recorder.enabled());
    CmdSubmit submit{};
    submit.hdr.type = static_cast<uint32_t>(CommandType::kSubmit3d);
    submit.size = 4;
    const uint8_t stream[4] = {1, 2, 3, 4};
    recorder.Record(submit, stream);
    const uint8_t raw[3] = {9, 8, 7};
    recorder.RecordBytes(raw);
  }
  const std::vector<uint8_t> bytes = ReadWholeFile(path);
  ASSERT_EQ(bytes.size(), 2 * sizeof(RecordHeader) + sizeof(CmdSubmit) + 4 + 3);
  RecordHeader first{};
  std::memcpy(&first, bytes.data(), sizeof(first));
  EXPECT_EQ(first.magic, kRecordMagic);
  EXPECT_EQ(first.length, sizeof(CmdSubmit) + 4);
  EXPECT_EQ(bytes[sizeof(RecordHeader) + sizeof(CmdSubmit)], 1);
  RecordHeader second{};
  std::memcpy(&second, bytes.data() + sizeof(RecordHeader) + first.length, sizeof(second));
  EXPECT_EQ(second.magic, kRecordMagic);
  EXPECT_EQ(second.length, 3u);
  EXPECT_EQ(bytes.back(), 7);
  unlink(path.c_str());
}

TEST(CommandRecorderTest, OffWithoutTheVariableOrWithAFileThatCannotBeOpened) {
  unsetenv(kRecordControlEnvironmentVariable);
  EXPECT_FALSE(CommandRecorder::FromEnvironment(kRecordControlEnvironmentVariable).enabled());
  CommandRecorder unopenable = CommandRecorder::ToFile("/nonexistent-directory/recording");
  EXPECT_FALSE(unopenable.enabled());
  const uint8_t raw[1] = {0};
  unopenable.RecordBytes(raw);  // A no-op, not a crash.
}

}  // namespace
}  // namespace vgpu::gpu
