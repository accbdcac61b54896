#include "renderer/gfxstream/host_preparation.h"

#define VK_NO_PROTOTYPES
#include <dlfcn.h>
#include <vulkan/vulkan.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/log.h"

namespace vgpu::renderer::gfxstream {
namespace {

constexpr char kVulkanLoader[] = "libvulkan.so.1";

// dlclose on every path out of the probe.
class LoadedLibrary {
 public:
  explicit LoadedLibrary(void* handle) : handle_(handle) {}
  ~LoadedLibrary() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  LoadedLibrary(const LoadedLibrary&) = delete;
  LoadedLibrary& operator=(const LoadedLibrary&) = delete;
  void* get() const { return handle_; }

 private:
  void* handle_;
};

bool Wants(const GfxstreamOptions& options, uint32_t capset) {
  return std::find(options.capsets.begin(), options.capsets.end(), capset) != options.capsets.end();
}

}  // namespace

Result<VulkanDeviceLimits> ProbeVulkanDevice() {
  const auto missing = [](const std::string& why) {
    return MakeError(ErrorKind::kUnsupported,
                     "gfxstream-vulkan needs a host Vulkan driver, and " + why +
                         " (install one, e.g. Mesa's lavapipe from mesa-vulkan-drivers, or leave "
                         "gfxstream-vulkan out of --capset)");
  };
  LoadedLibrary loader(dlopen(kVulkanLoader, RTLD_NOW | RTLD_LOCAL));
  if (loader.get() == nullptr) return missing(std::string("the Vulkan loader ") + dlerror());
  auto get_proc =
      reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(loader.get(), "vkGetInstanceProcAddr"));
  if (get_proc == nullptr) return missing("the Vulkan loader lacks vkGetInstanceProcAddr");
  auto create_instance =
      reinterpret_cast<PFN_vkCreateInstance>(get_proc(nullptr, "vkCreateInstance"));
  if (create_instance == nullptr) return missing("the Vulkan loader lacks vkCreateInstance");

  const VkApplicationInfo application{.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                                      .pApplicationName = "vhost-device-gpu",
                                      .apiVersion = VK_API_VERSION_1_1};
  const VkInstanceCreateInfo create_info{.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                         .pApplicationInfo = &application};
  VkInstance instance = VK_NULL_HANDLE;
  if (VkResult result = create_instance(&create_info, nullptr, &instance); result != VK_SUCCESS) {
    return missing("no Vulkan instance can be created (VkResult " + std::to_string(result) +
                   ": no driver is installed, or none the loader can load)");
  }
  auto destroy_instance =
      reinterpret_cast<PFN_vkDestroyInstance>(get_proc(instance, "vkDestroyInstance"));
  auto enumerate = reinterpret_cast<PFN_vkEnumeratePhysicalDevices>(
      get_proc(instance, "vkEnumeratePhysicalDevices"));
  auto properties = reinterpret_cast<PFN_vkGetPhysicalDeviceProperties>(
      get_proc(instance, "vkGetPhysicalDeviceProperties"));
  uint32_t count = 0;
  VkResult enumerated = VK_ERROR_INITIALIZATION_FAILED;
  std::vector<VkPhysicalDevice> devices;
  if (enumerate != nullptr && properties != nullptr) {
    enumerated = enumerate(instance, &count, nullptr);
    if (enumerated == VK_SUCCESS && count > 0) {
      devices.resize(count);
      enumerated = enumerate(instance, &count, devices.data());
      devices.resize(count);
    }
  }
  // gfxstream picks one of them: the smallest limit holds for whichever it is.
  uint32_t max_dimension = UINT32_MAX;
  for (VkPhysicalDevice device : devices) {
    VkPhysicalDeviceProperties device_properties{};
    properties(device, &device_properties);
    max_dimension = std::min(max_dimension, device_properties.limits.maxImageDimension2D);
  }
  if (destroy_instance != nullptr) destroy_instance(instance, nullptr);
  if ((enumerated != VK_SUCCESS && enumerated != VK_INCOMPLETE) || devices.empty()) {
    return missing("the Vulkan loader finds no physical device");
  }
  return VulkanDeviceLimits{.max_image_dimension = max_dimension};
}

Result<void> PrepareGfxstreamHost(GfxstreamOptions& options) {
  if (options.use_egl && options.use_surfaceless) {
    if (const char* platform = std::getenv("EGL_PLATFORM"); platform == nullptr) {
      setenv("EGL_PLATFORM", "surfaceless", /*overwrite=*/0);
      LogDebug("gfxstream: EGL_PLATFORM=surfaceless (--use-surfaceless)");
    } else {
      LogDebug("gfxstream: EGL_PLATFORM=%s, as set in the environment", platform);
    }
  }
  if (!Wants(options, kCapsetGfxstreamVulkan)) return {};
  Result<VulkanDeviceLimits> limits = ProbeVulkanDevice();
  if (!limits) return ErrorOf(limits);
  options.max_image_dimension = std::min(options.max_image_dimension, limits->max_image_dimension);
  return {};
}

}  // namespace vgpu::renderer::gfxstream
