// GfxstreamLibrary against the stand-in library and a variant of it that lacks a symbol.
#include "renderer/gfxstream/gfxstream_library.h"

#include <gtest/gtest.h>

#include "renderer/gfxstream/gfxstream_backend.h"
#include "standin.h"

namespace vgpu::renderer::gfxstream {
namespace {

using test::ClearStandinEnvironment;

class GfxstreamLibraryTest : public ::testing::Test {
 protected:
  void SetUp() override { ClearStandinEnvironment(); }
  void TearDown() override { ClearStandinEnvironment(); }
};

TEST_F(GfxstreamLibraryTest, PathIsTheSonameUnlessTheEnvironmentNamesOne) {
  EXPECT_EQ(GfxstreamLibraryPath(), "libgfxstream_backend.so.0");
  setenv("VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY", "/opt/gfxstream/lib/libgfxstream_backend.so", 1);
  EXPECT_EQ(GfxstreamLibraryPath(), "/opt/gfxstream/lib/libgfxstream_backend.so");
  setenv("VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY", "", 1);
  EXPECT_EQ(GfxstreamLibraryPath(), "libgfxstream_backend.so.0");
}

TEST_F(GfxstreamLibraryTest, MissingSonameErrorNamesItAndTheEnvironmentVariable) {
  Result<std::unique_ptr<GfxstreamLibrary>> library =
      GfxstreamLibrary::Load("libgfxstream_backend_absent_for_this_test.so.0");
  ASSERT_FALSE(library);
  const std::string& message = library.error().message;
  EXPECT_NE(message.find("'libgfxstream_backend_absent_for_this_test.so.0'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot open shared object file"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
}

TEST_F(GfxstreamLibraryTest, MissingPathFromTheEnvironmentIsNamedWithItsSource) {
  setenv("VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY", "/nonexistent/libgfxstream_backend.so.0", 1);
  Result<std::unique_ptr<GfxstreamLibrary>> library =
      GfxstreamLibrary::Load(GfxstreamLibraryPath());
  ASSERT_FALSE(library);
  EXPECT_NE(
      library.error().message.find(
          "'/nonexistent/libgfxstream_backend.so.0' (from VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY)"),
      std::string::npos)
      << library.error().message;
}

TEST_F(GfxstreamLibraryTest, MissingSymbolIsNamed) {
  Result<std::unique_ptr<GfxstreamLibrary>> library =
      GfxstreamLibrary::Load(test::StandinWithoutCreateFencePath());
  ASSERT_FALSE(library);
  const std::string& message = library.error().message;
  EXPECT_NE(message.find("lacks stream_renderer_create_fence ("), std::string::npos) << message;
  EXPECT_NE(message.find(test::StandinWithoutCreateFencePath()), std::string::npos) << message;
}

TEST_F(GfxstreamLibraryTest, StandinProvidesEveryEntryPoint) {
  Result<std::unique_ptr<GfxstreamLibrary>> library = GfxstreamLibrary::Load(test::StandinPath());
  ASSERT_TRUE(library) << library.error().message;
  const StreamRendererApi& api = (*library)->api();
  EXPECT_TRUE(api.init && api.teardown && api.resource_create && api.resource_unref &&
              api.context_create && api.context_destroy && api.submit_cmd &&
              api.transfer_read_iov && api.transfer_write_iov && api.get_cap_set && api.fill_caps &&
              api.resource_attach_iov && api.resource_detach_iov && api.ctx_attach_resource &&
              api.ctx_detach_resource && api.create_fence);
}

TEST_F(GfxstreamLibraryTest, BackendWithoutTheLibraryFailsWithTheLoaderMessage) {
  GfxstreamOptions options;
  options.library_path = "libgfxstream_backend_absent_for_this_test.so.0";
  Result<std::unique_ptr<Renderer>> backend = GfxstreamBackend::Create(options);
  ASSERT_FALSE(backend);
  EXPECT_NE(backend.error().message.find("cannot load the gfxstream library"), std::string::npos)
      << backend.error().message;
}

}  // namespace
}  // namespace vgpu::renderer::gfxstream
