#include "renderer/virgl/exported_memory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "renderer/virgl/virgl_api.h"

namespace vgpu::renderer::virgl {
namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

Result<MemoryFdLayout> LayoutOfExportedFd(int fd, uint32_t fd_type) {
  if (fd_type == VIRGL_RENDERER_BLOB_FD_TYPE_SHM || fd_type == VIRGL_RENDERER_BLOB_FD_TYPE_DMABUF) {
    // A dmabuf's size is its lseek end; shared memory's too.
    const off_t end = lseek(fd, 0, SEEK_END);
    if (end <= 0) return MakeSystemError("lseek(exported blob)", errno);
    return MemoryFdLayout{.offset = 0, .size = static_cast<uint64_t>(end)};
  }
  if (fd_type != VIRGL_RENDERER_BLOB_FD_TYPE_OPAQUE) {
    return MakeError(ErrorKind::kUnsupported, "exported fd of type " + std::to_string(fd_type));
  }
  struct stat status {};
  if (fstat(fd, &status) != 0) return MakeSystemError("fstat(exported blob)", errno);
  uint64_t header[2] = {};
  if (lseek(fd, 0, SEEK_SET) != 0 ||
      read(fd, header, sizeof(header)) != static_cast<ssize_t>(sizeof(header))) {
    return MakeError(ErrorKind::kUnsupported, "an opaque memory fd that cannot be read");
  }
  const uint64_t file_size = static_cast<uint64_t>(status.st_size);
  const uint64_t offset = header[1];
  if (header[0] != file_size || offset == 0 || offset % kPage != 0 || offset >= file_size) {
    return MakeError(ErrorKind::kUnsupported,
                     "an opaque memory fd whose layout is not Mesa's (the VMM cannot map it)");
  }
  return MemoryFdLayout{.offset = offset, .size = file_size - offset};
}

}  // namespace vgpu::renderer::virgl
