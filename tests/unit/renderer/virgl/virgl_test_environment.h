// The one VirglRenderer of the virgl_unit_tests process, shared by every test.
//
//   class MyTest : public VirglTest {};
//   TEST_F(MyTest, Works) {
//     VirglRenderer& renderer = Renderer();          // SetUp skipped the test if virgl is absent.
//     const ResourceId id = NextResourceId();   // Ids never repeat across tests.
//   }
//
// virglrenderer keeps process-global state and initialises once per process, so a
// ::testing::Environment creates the renderer before the first test (EGL, surfaceless: what runs
// on Mesa llvmpipe without a render node) and destroys it after the last one.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_renderer.h"

namespace vgpu::renderer::virgl {

class VirglTestEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;

  static VirglRenderer* renderer();
  // Why the renderer could not be created, for GTEST_SKIP.
  static const std::string& failure();
};

class VirglTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  VirglRenderer& Renderer() { return *VirglTestEnvironment::renderer(); }

  static ResourceId NextResourceId();
  static ContextId NextContextId();
  // A width x height 2D render target of `format` (B8G8R8X8 by default), as a guest's GBM
  // buffer: RESOURCE_CREATE_3D with PIPE_TEXTURE_2D and VIRGL_BIND_RENDER_TARGET.
  Result<void> CreateTarget(ResourceId id, uint32_t width, uint32_t height, uint32_t flags = 0,
                            uint32_t format = 2) {
    return Renderer().CreateResource(ResourceParams{.id = id,
                                                    .target = kPipeTexture2d,
                                                    .format = format,
                                                    .bind = kBindRenderTarget,
                                                    .width = width,
                                                    .height = height,
                                                    .depth = 1,
                                                    .array_size = 1,
                                                    .flags = flags});
  }

  // Polls PollFd() and calls Poll() until `done` holds or 5 s pass; true when it held.
  template <class Predicate>
  bool PollUntil(Predicate done);
  bool WaitForPollFd(int timeout_ms);
};

template <class Predicate>
bool VirglTest::PollUntil(Predicate done) {
  for (int round = 0; round < 100 && !done(); ++round) {
    if (WaitForPollFd(50)) Renderer().Poll();
  }
  return done();
}

}  // namespace vgpu::renderer::virgl
