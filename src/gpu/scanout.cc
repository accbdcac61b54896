#include "gpu/scanout.h"

#include <cstdarg>

#include "base/log.h"

namespace vgpu::gpu {

void LogScanoutPath(Scanout& scanout, ScanoutPath path, const char* format, ...) {
  if (scanout.logged_path == path) return;
  scanout.logged_path = path;
  if (!LogEnabled(LogLevel::kInfo)) return;
  va_list arguments;
  va_start(arguments, format);
  LogMessageV(LogLevel::kInfo, format, arguments);
  va_end(arguments);
}

}  // namespace vgpu::gpu
