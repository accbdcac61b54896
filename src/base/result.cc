#include "base/result.h"

#include <cstring>

namespace vgpu {

std::string ErrnoText(int error_number) {
  char buffer[128] = {};
  // GNU strerror_r may return a static string instead of filling the buffer.
  const char* text = strerror_r(error_number, buffer, sizeof(buffer));
  return std::string(text);
}

tl::unexpected<Error> MakeSystemError(const std::string& what, int error_number) {
  return tl::unexpected<Error>(
      Error{ErrorKind::kSystem, what + ": " + ErrnoText(error_number), error_number});
}

}  // namespace vgpu
