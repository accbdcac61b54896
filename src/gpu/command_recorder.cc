#include "gpu/command_recorder.h"

#include <fcntl.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/log.h"

namespace vgpu::gpu {

CommandRecorder CommandRecorder::FromEnvironment(const char* variable) {
  const char* path = std::getenv(variable);
  if (path == nullptr || *path == '\0') return CommandRecorder();
  return ToFile(path, variable);
}

CommandRecorder CommandRecorder::ToFile(const std::string& path, const char* variable) {
  UniqueFd file(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!file.valid()) {
    LogWarning("%s: cannot open %s (%s); not recording", variable, path.c_str(),
               std::strerror(errno));
    return CommandRecorder();
  }
  LogInfo("recording to %s (%s)", path.c_str(), variable);
  return CommandRecorder(std::move(file), variable);
}

void CommandRecorder::Append(std::span<const uint8_t> request, std::span<const uint8_t> payload) {
  if (request.size() > kMaxRecordLength || payload.size() > kMaxRecordLength - request.size()) {
    LogWarning("%s: a record of %zu bytes is over the limit (%u); not written", variable_,
               request.size() + payload.size(), kMaxRecordLength);
    return;
  }
  const RecordHeader header{kRecordMagic, static_cast<uint32_t>(request.size() + payload.size())};
  iovec parts[3] = {
      {const_cast<RecordHeader*>(&header), sizeof(header)},
      {const_cast<uint8_t*>(request.data()), request.size()},
      {const_cast<uint8_t*>(payload.data()), payload.size()},
  };
  const size_t total = sizeof(header) + request.size() + payload.size();
  // One writev with O_APPEND: a record is never interleaved with another writer's. A short write
  // (full disk) would leave a torn record, so it ends recording like an error does.
  ssize_t written;
  do {
    written = writev(file_.get(), parts, 3);
  } while (written < 0 && errno == EINTR);
  if (written != static_cast<ssize_t>(total)) {
    LogWarning("%s: write failed (%s); no longer recording", variable_,
               written < 0 ? std::strerror(errno) : "short write");
    file_.reset();
  }
}

}  // namespace vgpu::gpu
