// The texts that -h, --help and -V/--version print, in clap's layout so that the daemon reads
// like the seed (rust-vmm vhost-device-gpu): -h is one line per option, --help adds each option's
// notes, defaults and possible values.
#pragma once

#include <string>

#include "daemon/options.h"

namespace vgpu::daemon {

std::string ShortHelpText(const BuildFeatures& features);
std::string LongHelpText(const BuildFeatures& features);
std::string VersionText();  // "vhost-device-gpu 0.1.0\n"

}  // namespace vgpu::daemon
