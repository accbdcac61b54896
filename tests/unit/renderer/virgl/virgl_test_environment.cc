#include "virgl_test_environment.h"

#include <poll.h>

#include "renderer/virgl/virgl_api.h"

namespace vgpu::renderer::virgl {
namespace {

std::unique_ptr<VirglRenderer>& SharedRenderer() {
  static std::unique_ptr<VirglRenderer> renderer;
  return renderer;
}

std::string& SharedFailure() {
  static std::string failure = "the virgl test environment did not run";
  return failure;
}

// Registered before main() runs RUN_ALL_TESTS (gtest_main): gtest owns and deletes it.
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new VirglTestEnvironment);

}  // namespace

void VirglTestEnvironment::SetUp() {
  Result<std::unique_ptr<VirglRenderer>> created = VirglRenderer::Create(VirglOptions{
      .use_egl = true,
      .use_surfaceless = true,
      .capsets = {kCapsetVirgl, kCapsetVirgl2},
  });
  if (!created) {
    SharedFailure() =
        "virglrenderer cannot start here (EGL surfaceless): " + created.error().message;
    return;
  }
  SharedRenderer() = std::move(*created);
  SharedFailure().clear();
}

void VirglTestEnvironment::TearDown() { SharedRenderer().reset(); }

VirglRenderer* VirglTestEnvironment::renderer() { return SharedRenderer().get(); }

const std::string& VirglTestEnvironment::failure() { return SharedFailure(); }

void VirglTest::SetUp() {
  if (VirglTestEnvironment::renderer() == nullptr) GTEST_SKIP() << VirglTestEnvironment::failure();
}

void VirglTest::TearDown() {
  if (VirglTestEnvironment::renderer() != nullptr) Renderer().SetFenceHandler(nullptr);
}

ResourceId VirglTest::NextResourceId() {
  static uint32_t next = 1000;
  return ResourceId{next++};
}

ContextId VirglTest::NextContextId() {
  static uint32_t next = 100;
  return ContextId{next++};
}

bool VirglTest::WaitForPollFd(int timeout_ms) {
  pollfd entry{.fd = Renderer().PollFd(), .events = POLLIN, .revents = 0};
  if (entry.fd < 0) {
    // Without THREAD_SYNC there is nothing to wait on: poll on a timer, as the daemon would.
    ::poll(nullptr, 0, timeout_ms);
    return true;
  }
  return ::poll(&entry, 1, timeout_ms) == 1 && (entry.revents & POLLIN) != 0;
}

}  // namespace vgpu::renderer::virgl
