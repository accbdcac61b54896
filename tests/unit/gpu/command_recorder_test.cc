// The command recorder's file format (records of magic, length, request bytes), its off state,
// its limit, and the display channel's recording (VHOST_DEVICE_GPU_RECORD_DISPLAY).
#include "gpu/command_recorder.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "base/event_loop.h"
#include "gpu/display_channel.h"
#include "gpu/display_protocol.h"
#include "gpu/protocol.h"

namespace vgpu::gpu {
namespace {

std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// The records of a recording, checking each one's magic.
std::vector<std::vector<uint8_t>> ReadRecords(const std::string& path) {
  const std::vector<uint8_t> bytes = ReadWholeFile(path);
  std::vector<std::vector<uint8_t>> records;
  size_t offset = 0;
  while (offset + sizeof(RecordHeader) <= bytes.size()) {
    RecordHeader header{};
    std::memcpy(&header, bytes.data() + offset, sizeof(header));
    EXPECT_EQ(header.magic, kRecordMagic);
    offset += sizeof(header);
    EXPECT_LE(offset + header.length, bytes.size());
    records.emplace_back(bytes.begin() + offset, bytes.begin() + offset + header.length);
    offset += header.length;
  }
  EXPECT_EQ(offset, bytes.size());
  return records;
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

TEST(CommandRecorderTest, RecordsOverTheLimitAreLeftOutAndRecordingGoesOn) {
  const std::string path = ::testing::TempDir() + "command-recorder-limit.rec";
  unlink(path.c_str());
  {
    CommandRecorder recorder = CommandRecorder::ToFile(path, kRecordVirtqueueEnvironmentVariable);
    recorder.RecordBytes(std::vector<uint8_t>(kMaxRecordLength + 1));
    const uint8_t raw[2] = {5, 6};
    recorder.RecordBytes(raw);
    EXPECT_TRUE(recorder.enabled());
  }
  const std::vector<std::vector<uint8_t>> records = ReadRecords(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0], (std::vector<uint8_t>{5, 6}));
  unlink(path.c_str());
}

TEST(CommandRecorderTest, DisplayChannelRecordsEachAttachAndTheBytesTheVmmSends) {
  const std::string path = ::testing::TempDir() + "command-recorder-display.rec";
  unlink(path.c_str());
  EventLoop loop;
  ASSERT_TRUE(loop.Init());
  // The reply to the handshake's GET_PROTOCOL_FEATURES: EDID | DMABUF2.
  const display::MessageHeader header{static_cast<uint32_t>(display::Request::kGetProtocolFeatures),
                                      display::kReplyFlag, sizeof(uint64_t)};
  const uint64_t features = 0x3;
  std::vector<uint8_t> reply(sizeof(header) + sizeof(features));
  std::memcpy(reply.data(), &header, sizeof(header));
  std::memcpy(reply.data() + sizeof(header), &features, sizeof(features));
  {
    ASSERT_EQ(setenv(kRecordDisplayEnvironmentVariable, path.c_str(), 1), 0);
    DisplayChannel channel(loop);
    unsetenv(kRecordDisplayEnvironmentVariable);
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    UniqueFd vmm(pair[1]);
    channel.Attach(UniqueFd(pair[0]));
    ASSERT_EQ(send(vmm.get(), reply.data(), reply.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(reply.size()));
    for (int turn = 0; turn < 100 && !channel.handshake_done(); ++turn) loop.RunOnce(50);
    EXPECT_TRUE(channel.handshake_done());
  }
  const std::vector<std::vector<uint8_t>> records = ReadRecords(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(records[0].empty());  // The attach.
  EXPECT_EQ(records[1], reply);
  unlink(path.c_str());
}

}  // namespace
}  // namespace vgpu::gpu
