// DecodeControl / DecodeCursor: a chain's readable bytes become an owned command once, with
// sizes checked before anything is allocated, and each failure carries the kind that picks its
// VIRTIO_GPU_RESP_ERR_* (command_error.h).
#include "gpu/command_decoder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "gpu/command_error.h"

namespace vgpu::gpu {
namespace {

// A chain whose readable part is `bytes`, cut into descriptors at `cuts` (offsets into it).
class ChainBuilder {
 public:
  explicit ChainBuilder(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  virtio::DescriptorChain Build(std::vector<size_t> cuts = {}) {
    virtio::DescriptorChain chain;
    size_t start = 0;
    cuts.push_back(bytes_.size());
    for (size_t cut : cuts) {
      chain.readable.emplace_back(bytes_.data() + start, cut - start);
      start = cut;
    }
    chain.readable_length = bytes_.size();
    return chain;
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

template <class T>
std::vector<uint8_t> BytesOf(const T& value, size_t extra = 0) {
  std::vector<uint8_t> bytes(sizeof(T) + extra, 0);
  std::memcpy(bytes.data(), &value, sizeof(T));
  return bytes;
}

CtrlHdr Header(CommandType type, uint32_t flags = 0, uint64_t fence = 0) {
  CtrlHdr header{};
  header.type = static_cast<uint32_t>(type);
  header.flags = flags;
  header.fence_id = fence;
  return header;
}

constexpr DecodePolicy k2d{.three_d = false};
constexpr DecodePolicy k3d{.three_d = true};

TEST(CommandDecoderTest, ARequestShorterThanAHeaderIsMalformedWithAZeroHeader) {
  ChainBuilder builder(std::vector<uint8_t>(sizeof(CtrlHdr) - 1, 0xFF));
  DecodedCommand decoded = DecodeControl(builder.Build(), k2d);
  ASSERT_FALSE(decoded.body);
  EXPECT_EQ(decoded.body.error().failure, Failure::kMalformed);
  EXPECT_EQ(decoded.header.type, 0u);
  EXPECT_EQ(decoded.header.flags, 0u);  // Not fenced: nothing of it is trusted.
}

TEST(CommandDecoderTest, TheRequestStructIsReadWholeAcrossDescriptors) {
  ResourceCreate2d create{};
  create.hdr = Header(CommandType::kResourceCreate2d, kFlagFence, 42);
  create.resource_id = 7;
  create.format = 2;
  create.width = 640;
  create.height = 480;
  ChainBuilder builder(BytesOf(create));
  // The header itself split, and the body split again.
  DecodedCommand decoded = DecodeControl(builder.Build({5, 24, 30}), k2d);
  ASSERT_TRUE(decoded.body) << decoded.body.error().message;
  EXPECT_EQ(decoded.header.fence_id, 42u);
  const auto* request = std::get_if<ResourceCreate2d>(&*decoded.body);
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->resource_id, 7u);
  EXPECT_EQ(request->width, 640u);
  EXPECT_EQ(request->height, 480u);
  EXPECT_EQ(request->hdr.fence_id, 42u);  // The struct keeps the header it was sent with.
}

TEST(CommandDecoderTest, EveryFixedSizeRequestShorterThanItsStructIsTruncated) {
  const CommandType types[] = {CommandType::kGetEdid,
                               CommandType::kResourceCreate2d,
                               CommandType::kResourceUnref,
                               CommandType::kSetScanout,
                               CommandType::kResourceFlush,
                               CommandType::kTransferToHost2d,
                               CommandType::kResourceAttachBacking,
                               CommandType::kResourceDetachBacking,
                               CommandType::kGetCapsetInfo,
                               CommandType::kGetCapset,
                               CommandType::kResourceAssignUuid,
                               CommandType::kCtxCreate,
                               CommandType::kCtxAttachResource,
                               CommandType::kCtxDetachResource,
                               CommandType::kResourceCreate3d,
                               CommandType::kTransferToHost3d,
                               CommandType::kTransferFromHost3d,
                               CommandType::kSubmit3d};
  for (CommandType type : types) {
    // A header and three bytes more: shorter than any of these structs.
    std::vector<uint8_t> bytes = BytesOf(Header(type), 3);
    ChainBuilder builder(bytes);
    DecodedCommand decoded = DecodeControl(builder.Build(), k3d);
    ASSERT_FALSE(decoded.body) << CommandName(static_cast<uint32_t>(type));
    EXPECT_EQ(decoded.body.error().failure, Failure::kMalformed);
    EXPECT_NE(decoded.body.error().message.find("truncated"), std::string::npos)
        << decoded.body.error().message;
    EXPECT_EQ(decoded.header.type, static_cast<uint32_t>(type));
  }
}

TEST(CommandDecoderTest, HeaderOnlyCommandsNeedNothingMore) {
  ChainBuilder display(BytesOf(Header(CommandType::kGetDisplayInfo)));
  DecodedCommand decoded = DecodeControl(display.Build(), k2d);
  ASSERT_TRUE(decoded.body);
  EXPECT_TRUE(std::holds_alternative<GetDisplayInfoRequest>(*decoded.body));
  ChainBuilder destroy(BytesOf(Header(CommandType::kCtxDestroy)));
  decoded = DecodeControl(destroy.Build(), k3d);
  ASSERT_TRUE(decoded.body);
  EXPECT_TRUE(std::holds_alternative<CtxDestroyRequest>(*decoded.body));
}

TEST(CommandDecoderTest, ThreeDCommandsAreUnsupportedWithoutA3dRenderer) {
  CtxCreate create{};
  create.hdr = Header(CommandType::kCtxCreate);
  ChainBuilder builder(BytesOf(create));
  DecodedCommand decoded = DecodeControl(builder.Build(), k2d);
  ASSERT_FALSE(decoded.body);
  EXPECT_EQ(decoded.body.error().failure, Failure::kMalformed);
  EXPECT_EQ(ResponseFor(decoded.body.error().failure), ResponseType::kErrUnspec);
  decoded = DecodeControl(builder.Build(), k3d);
  ASSERT_TRUE(decoded.body);
  EXPECT_TRUE(std::holds_alternative<CtxCreate>(*decoded.body));
}

TEST(CommandDecoderTest, UnknownTypesAreUnsupported) {
  for (uint32_t type :
       {0u, 0x99u, 0x1000u, 0xFFFFFFFFu, static_cast<uint32_t>(CommandType::kUpdateCursor)}) {
    CtrlHdr header{};
    header.type = type;
    ChainBuilder builder(BytesOf(header, 64));
    DecodedCommand decoded = DecodeControl(builder.Build(), k3d);
    ASSERT_FALSE(decoded.body) << type;
    EXPECT_EQ(decoded.body.error().failure, Failure::kMalformed);
  }
}

TEST(CommandDecoderTest, AttachBackingCopiesItsEntriesOut) {
  ResourceAttachBacking attach{};
  attach.hdr = Header(CommandType::kResourceAttachBacking);
  attach.resource_id = 3;
  attach.nr_entries = 2;
  std::vector<uint8_t> bytes = BytesOf(attach, 2 * sizeof(MemEntry));
  const MemEntry entries[2] = {{0x10000, 4096, 0}, {0x30000, 8192, 0}};
  std::memcpy(bytes.data() + sizeof(attach), entries, sizeof(entries));
  ChainBuilder builder(bytes);
  DecodedCommand decoded = DecodeControl(builder.Build({40}), k2d);
  ASSERT_TRUE(decoded.body) << decoded.body.error().message;
  // The guest rewriting its request afterwards changes nothing decoded.
  std::memset(builder.bytes().data(), 0xEE, builder.bytes().size());
  const auto& request = std::get<AttachBackingRequest>(*decoded.body);
  EXPECT_EQ(request.request.resource_id, 3u);
  ASSERT_EQ(request.entries.size(), 2u);
  EXPECT_EQ(request.entries[1].addr, 0x30000u);
  EXPECT_EQ(request.entries[1].length, 8192u);
}

TEST(CommandDecoderTest, AttachBackingEntryCountIsBoundedBeforeAnythingIsAllocated) {
  ResourceAttachBacking attach{};
  attach.hdr = Header(CommandType::kResourceAttachBacking);
  attach.resource_id = 3;
  for (uint32_t count : {0u, kMaxBackingEntries + 1, 0xFFFFFFFFu}) {
    attach.nr_entries = count;
    ChainBuilder builder(BytesOf(attach, sizeof(MemEntry)));
    DecodedCommand decoded = DecodeControl(builder.Build(), k2d);
    ASSERT_FALSE(decoded.body) << count;
    EXPECT_EQ(decoded.body.error().failure, Failure::kInvalidParameter) << count;
  }
  // Within the bound but more than the request carries.
  attach.nr_entries = 3;
  ChainBuilder short_list(BytesOf(attach, 2 * sizeof(MemEntry) + 15));
  DecodedCommand decoded = DecodeControl(short_list.Build(), k2d);
  ASSERT_FALSE(decoded.body);
  EXPECT_EQ(decoded.body.error().failure, Failure::kMalformed);
}

TEST(CommandDecoderTest, SubmitCopiesItsStreamAndBoundsItsSize) {
  CmdSubmit submit{};
  submit.hdr = Header(CommandType::kSubmit3d, kFlagFence, 9);
  submit.hdr.ctx_id = 1;
  submit.size = 12;
  std::vector<uint8_t> bytes = BytesOf(submit, 12);
  for (size_t i = 0; i < 12; ++i) bytes[sizeof(submit) + i] = static_cast<uint8_t>(i + 1);
  ChainBuilder builder(bytes);
  DecodedCommand decoded = DecodeControl(builder.Build({sizeof(submit) + 5}), k3d);
  ASSERT_TRUE(decoded.body) << decoded.body.error().message;
  std::memset(builder.bytes().data(), 0, builder.bytes().size());
  const auto& request = std::get<Submit3dRequest>(*decoded.body);
  ASSERT_EQ(request.stream.size(), 12u);
  EXPECT_EQ(request.stream[0], 1);
  EXPECT_EQ(request.stream[11], 12);

  submit.size = 13;  // One byte more than it carries.
  ChainBuilder missing(BytesOf(submit, 12));
  decoded = DecodeControl(missing.Build(), k3d);
  ASSERT_FALSE(decoded.body);
  EXPECT_EQ(decoded.body.error().failure, Failure::kInvalidParameter);

  submit.size = kMaxSubmitBytes + 1;
  ChainBuilder huge(BytesOf(submit, 16));
  decoded = DecodeControl(huge.Build(), k3d);
  ASSERT_FALSE(decoded.body);
  EXPECT_EQ(decoded.body.error().failure, Failure::kInvalidParameter);
}

TEST(CommandDecoderTest, TransfersAndContextResourceCommandsKeepTheirDirection) {
  TransferHost3d transfer{};
  transfer.hdr = Header(CommandType::kTransferFromHost3d);
  ChainBuilder from(BytesOf(transfer));
  DecodedCommand decoded = DecodeControl(from.Build(), k3d);
  ASSERT_TRUE(decoded.body);
  EXPECT_FALSE(std::get<Transfer3dRequest>(*decoded.body).to_host);
  CtxResource detach{};
  detach.hdr = Header(CommandType::kCtxDetachResource);
  ChainBuilder detach_bytes(BytesOf(detach));
  decoded = DecodeControl(detach_bytes.Build(), k3d);
  ASSERT_TRUE(decoded.body);
  EXPECT_FALSE(std::get<CtxResourceRequest>(*decoded.body).attach);
}

TEST(CommandDecoderTest, CursorCommands) {
  UpdateCursor update{};
  update.hdr = Header(CommandType::kUpdateCursor);
  update.resource_id = 5;
  ChainBuilder updating(BytesOf(update));
  CommandResult<CursorCommand> command = DecodeCursor(updating.Build({10}));
  ASSERT_TRUE(command);
  EXPECT_FALSE(command->move);
  EXPECT_EQ(command->request.resource_id, 5u);

  update.hdr = Header(CommandType::kMoveCursor);
  ChainBuilder moving(BytesOf(update));
  command = DecodeCursor(moving.Build());
  ASSERT_TRUE(command);
  EXPECT_TRUE(command->move);

  update.hdr = Header(CommandType::kResourceFlush);  // A control command on the cursor queue.
  ChainBuilder wrong(BytesOf(update));
  command = DecodeCursor(wrong.Build());
  ASSERT_FALSE(command);
  EXPECT_EQ(command.error().failure, Failure::kMalformed);

  ChainBuilder truncated(std::vector<uint8_t>(sizeof(UpdateCursor) - 1, 0));
  command = DecodeCursor(truncated.Build());
  ASSERT_FALSE(command);
}

TEST(CommandErrorTest, EachFailureHasItsResponse) {
  EXPECT_EQ(ResponseFor(Failure::kMalformed), ResponseType::kErrUnspec);
  EXPECT_EQ(ResponseFor(Failure::kRefused), ResponseType::kErrUnspec);
  EXPECT_EQ(ResponseFor(Failure::kRenderer), ResponseType::kErrUnspec);
  EXPECT_EQ(ResponseFor(Failure::kUnknownResource), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(ResponseFor(Failure::kUnknownContext), ResponseType::kErrInvalidContextId);
  EXPECT_EQ(ResponseFor(Failure::kUnknownScanout), ResponseType::kErrInvalidScanoutId);
  EXPECT_EQ(ResponseFor(Failure::kInvalidParameter), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(ResponseFor(Failure::kOutOfMemory), ResponseType::kErrOutOfMemory);
}

TEST(CommandErrorTest, RendererErrorsMapByKind) {
  EXPECT_EQ(FromRenderer(Error{ErrorKind::kInvalidArgument, "x"}, "T").value().failure,
            Failure::kInvalidParameter);
  EXPECT_EQ(FromRenderer(Error{ErrorKind::kOutOfRange, "x"}, "T", Failure::kUnknownResource)
                .value()
                .failure,
            Failure::kUnknownResource);
  EXPECT_EQ(FromRenderer(Error{ErrorKind::kResourceExhausted, "x"}, "T").value().failure,
            Failure::kOutOfMemory);
  const CommandError error = FromRenderer(Error{ErrorKind::kInternal, "lost"}, "SUBMIT_3D").value();
  EXPECT_EQ(error.failure, Failure::kRenderer);
  EXPECT_EQ(error.message, "SUBMIT_3D: lost");
}

}  // namespace
}  // namespace vgpu::gpu
