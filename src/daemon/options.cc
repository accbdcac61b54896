#include "daemon/options.h"

#include <dirent.h>
#include <fcntl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>

#include "base/checked_math.h"
#include "daemon/help_text.h"

namespace vgpu::daemon {
namespace {

// Every argument the parser knows. The order is the order in which value errors are reported.
enum class Argument {
  kSocketPath,
  kFd,
  kGpuMode,
  kVirgl,
  kCapset,
  kUseEgl,
  kUseGlx,
  kUseGles,
  kUseSurfaceless,
  kHeadless,
  kGpuDevice,
  kRenderNode,
  kMaxHostmem,
  kHostVisibleMemory,
  kLogLevel,
  kPrintCapabilities,
  kNoSandbox,
  kShortHelp,
  kLongHelp,
  kVersion,
};
constexpr size_t kArgumentCount = static_cast<size_t>(Argument::kVersion) + 1;

struct ArgumentSpec {
  const char* cli11_names;  // As CLI11 wants them: "-s,--socket-path".
  const char* display;      // As clap prints them in errors: "--socket-path <SOCKET>".
  bool takes_value;
  bool repeatable;
};

constexpr std::array<ArgumentSpec, kArgumentCount> kArgumentSpecs = {{
    {"-s,--socket-path", "--socket-path <SOCKET>", true, false},
    {"--fd", "--fd <FD>", true, false},
    {"-g,--gpu-mode", "--gpu-mode <GPU_MODE>", true, false},
    {"--virgl", "--virgl", false, false},
    {"-c,--capset", "--capset <CAPSET>", true, true},
    {"--use-egl", "--use-egl <USE_EGL>", true, false},
    {"--use-glx", "--use-glx <USE_GLX>", true, false},
    {"--use-gles", "--use-gles <USE_GLES>", true, false},
    {"--use-surfaceless", "--use-surfaceless <USE_SURFACELESS>", true, false},
    {"--headless", "--headless", false, false},
    {"--gpu-device", "--gpu-device <PATH>", true, false},
    {"--render-node", "--render-node <PATH>", true, false},
    {"--max-hostmem", "--max-hostmem <SIZE>", true, false},
    {"--host-visible-memory", "--host-visible-memory <SIZE>", true, false},
    {"--log-level", "--log-level <LEVEL>", true, false},
    {"--print-capabilities", "--print-capabilities", false, false},
    {"--no-sandbox", "--no-sandbox", false, false},
    {"-h", "-h", false, true},
    {"--help", "--help", false, true},
    {"-V,--version", "--version", false, true},
}};

const ArgumentSpec& Spec(Argument argument) {
  return kArgumentSpecs[static_cast<size_t>(argument)];
}

constexpr const char* kHelpHint = "\n\nFor more information, try '--help'.\n";
constexpr const char* kBoolValues = "[possible values: true, false]";
constexpr const char* kGpuModeValues = "[possible values: virglrenderer, gfxstream, null]";
constexpr const char* kCapsetValues =
    "[possible values: virgl, virgl2, venus, gfxstream-vulkan, gfxstream-gles]";
constexpr const char* kLogLevelValues = "[possible values: error, warn, info, debug, trace]";

ParseOutcome UsageError(const std::string& message) {
  ParseOutcome outcome;
  outcome.exit_code = kExitUsageError;
  outcome.standard_error = "error: " + message + kHelpHint;
  return outcome;
}

ParseOutcome ConfigurationError(const std::string& message) {
  ParseOutcome outcome;
  outcome.exit_code = kExitConfigurationError;
  outcome.standard_error = "error: " + message + "\n";
  return outcome;
}

ParseOutcome PrintAndExit(std::string text) {
  ParseOutcome outcome;
  outcome.exit_code = 0;
  outcome.standard_output = std::move(text);
  return outcome;
}

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string InvalidValue(std::string_view value, Argument argument, std::string_view detail) {
  return "invalid value " + Quoted(value) + " for " + Quoted(Spec(argument).display) + " " +
         std::string(detail);
}

std::string MissingValue(Argument argument) {
  return "a value is required for " + Quoted(Spec(argument).display) + " but none was supplied";
}

std::string CannotBeUsedWith(Argument argument, Argument other) {
  return "the argument " + Quoted(Spec(argument).display) + " cannot be used with " +
         Quoted(Spec(other).display);
}

// The long spelling of an argument, "--socket-path", or its only spelling ("-h").
std::string_view LongNameOf(const ArgumentSpec& spec) {
  std::string_view names = spec.cli11_names;
  size_t comma = names.find(',');
  return comma == std::string_view::npos ? names : names.substr(comma + 1);
}

std::string_view LongName(Argument argument) { return LongNameOf(Spec(argument)); }

// True when `word` is a long option or starts like one of our short options. CLI11 takes the word
// after an option as its value even when that word is another option; clap does not, so we
// report "a value is required" for `--socket-path --headless` as the seed does. Values that
// merely start with '-' ("-1") go on to the value checks.
bool LooksLikeOption(std::string_view word) {
  if (word.size() < 2 || word[0] != '-') return false;
  if (word[1] == '-') return true;
  // "-gnull" is -g with a value; any word starting with one of our short options counts.
  for (const ArgumentSpec& spec : kArgumentSpecs) {
    std::string_view names = spec.cli11_names;
    if (names.size() >= 2 && names[0] == '-' && names[1] != '-' && names[1] == word[1]) return true;
  }
  return false;
}

std::optional<GpuMode> ParseGpuMode(std::string_view text) {
  if (text == "virglrenderer" || text == "virgl-renderer") return GpuMode::kVirglRenderer;
  if (text == "gfxstream") return GpuMode::kGfxstream;
  if (text == "null") return GpuMode::kNull;
  return std::nullopt;
}

std::optional<Capset> ParseCapset(std::string_view text) {
  if (text == "virgl") return Capset::kVirgl;
  if (text == "virgl2") return Capset::kVirgl2;
  if (text == "venus") return Capset::kVenus;
  if (text == "gfxstream-vulkan") return Capset::kGfxstreamVulkan;
  if (text == "gfxstream-gles") return Capset::kGfxstreamGles;
  return std::nullopt;
}

// clap's bool parser accepts exactly these two words.
std::optional<bool> ParseBool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return std::nullopt;
}

std::optional<int> ParseFd(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  int64_t value = 0;
  for (char digit : text) {
    if (digit < '0' || digit > '9') return std::nullopt;
    value = value * 10 + (digit - '0');
  }
  if (value > INT_MAX) return std::nullopt;
  return static_cast<int>(value);
}

bool CapsetBelongsTo(Capset capset, GpuMode mode) {
  switch (mode) {
    case GpuMode::kVirglRenderer:
      return capset == Capset::kVirgl || capset == Capset::kVirgl2 || capset == Capset::kVenus;
    case GpuMode::kGfxstream:
      return capset == Capset::kGfxstreamVulkan || capset == Capset::kGfxstreamGles;
    case GpuMode::kNull:
      return false;
  }
  return false;
}

// The seed's defaults per mode (GpuConfigBuilder) when --capset is absent.
std::vector<Capset> DefaultCapsets(GpuMode mode) {
  switch (mode) {
    case GpuMode::kVirglRenderer:
      return {Capset::kVirgl, Capset::kVirgl2};
    case GpuMode::kGfxstream:
      return {Capset::kGfxstreamVulkan, Capset::kGfxstreamGles};
    case GpuMode::kNull:
      return {};
  }
  return {};
}

const char* CapsetsOfMode(GpuMode mode) {
  switch (mode) {
    case GpuMode::kVirglRenderer:
      return "virgl, virgl2";
    case GpuMode::kGfxstream:
      return "gfxstream-vulkan, gfxstream-gles";
    case GpuMode::kNull:
      return "none";
  }
  return "none";
}

bool ModeCompiledIn(GpuMode mode, const BuildFeatures& features) {
  switch (mode) {
    case GpuMode::kVirglRenderer:
      return features.virgl;
    case GpuMode::kGfxstream:
      return features.gfxstream;
    case GpuMode::kNull:
      return true;
  }
  return false;
}

// What CLI11 collected, before any checks.
struct RawArguments {
  std::array<std::vector<std::string>, kArgumentCount> values;
  std::array<size_t, kArgumentCount> counts{};  // Occurrences of each argument.
  std::vector<std::string> extras;

  size_t Count(Argument argument) const { return counts[static_cast<size_t>(argument)]; }
  bool Given(Argument argument) const { return Count(argument) > 0; }
  const std::vector<std::string>& Values(Argument argument) const {
    return values[static_cast<size_t>(argument)];
  }
  // The single value of a non-repeatable option (checked before use).
  const std::string& Value(Argument argument) const { return Values(argument).front(); }
};

// Turns a CLI11 exception into a clap-style one-line message. CLI11 names the option at the start
// of its message ("--socket-path: 1 required TEXT missing", "headless was given a disallowed flag
// override").
std::string DescribeCli11Error(const CLI::ParseError& error) {
  std::string_view message = error.what();
  for (size_t index = 0; index < kArgumentCount; ++index) {
    Argument argument = static_cast<Argument>(index);
    std::string_view long_name = LongName(argument);
    std::string_view bare_name = long_name.substr(long_name.find_first_not_of('-'));
    bool names_it = message.starts_with(std::string(long_name) + ":") ||
                    message.starts_with(std::string(bare_name) + " ");
    if (!names_it) continue;
    if (Spec(argument).takes_value) return MissingValue(argument);
    return "unexpected value for " + Quoted(Spec(argument).display) + ": it takes no value";
  }
  return std::string(message);
}

// CLI11 lets a flag take a value equal to its default ("--headless=true"); clap rejects any.
std::optional<std::string> FindFlagWithValue(int argc, const char* const* argv) {
  for (int index = 1; index < argc; ++index) {
    std::string_view word = argv[index];
    if (word == "--") break;
    size_t equals = word.find('=');
    if (!word.starts_with("--") || equals == std::string_view::npos) continue;
    for (const ArgumentSpec& spec : kArgumentSpecs) {
      if (!spec.takes_value && LongNameOf(spec) == word.substr(0, equals)) {
        return "unexpected value " + Quoted(word.substr(equals + 1)) + " for " +
               Quoted(spec.display) + " found; no more were expected";
      }
    }
  }
  return std::nullopt;
}

// Runs CLI11 as a tokenizer only: every option collects raw strings, unknown words land in
// `extras`, and all checks happen afterwards so that every message is ours.
Result<RawArguments> Tokenize(int argc, const char* const* argv) {
  if (std::optional<std::string> message = FindFlagWithValue(argc, argv)) {
    return MakeError(ErrorKind::kInvalidArgument, *message);
  }
  RawArguments raw;
  std::array<CLI::Option*, kArgumentCount> options{};  // Owned by `app`.
  CLI::App app("vhost-device-gpu", "vhost-device-gpu");
  app.set_help_flag();  // -h and --help print different texts; we add both below.
  app.allow_extras(true);
  for (size_t index = 0; index < kArgumentCount; ++index) {
    const ArgumentSpec& spec = kArgumentSpecs[index];
    if (spec.takes_value) {
      // One value per occurrence; `-c a b` leaves `b` as an unexpected argument as clap does.
      options[index] =
          app.add_option(spec.cli11_names, raw.values[index])->allow_extra_args(false)->take_all();
    } else {
      options[index] = app.add_flag(spec.cli11_names)->disable_flag_override();
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return MakeError(ErrorKind::kInvalidArgument, DescribeCli11Error(error));
  }
  for (size_t index = 0; index < kArgumentCount; ++index)
    raw.counts[index] = options[index]->count();
  // A lone "--" ends the options; clap accepts it silently, and anything after it is unexpected.
  for (std::string& word : app.remaining()) {
    if (word != "--") raw.extras.push_back(std::move(word));
  }
  return raw;
}

// Usage checks on the raw words: missing values, unknown words, repeats and conflicts. Returns the
// message of the first failure.
std::optional<std::string> CheckShape(const RawArguments& raw) {
  // Missing values first: in `-s --gpu-mode null` CLI11 made "--gpu-mode" the socket path and
  // "null" an extra word, but the mistake is the missing socket path.
  for (size_t index = 0; index < kArgumentCount; ++index) {
    Argument argument = static_cast<Argument>(index);
    for (const std::string& value : raw.Values(argument)) {
      if (value.empty() || LooksLikeOption(value)) return MissingValue(argument);
    }
  }
  if (!raw.extras.empty()) return "unexpected argument " + Quoted(raw.extras.front()) + " found";
  for (size_t index = 0; index < kArgumentCount; ++index) {
    const ArgumentSpec& spec = kArgumentSpecs[index];
    if (!spec.repeatable && raw.Count(static_cast<Argument>(index)) > 1) {
      return "the argument " + Quoted(spec.display) + " cannot be used multiple times";
    }
  }
  if (raw.Given(Argument::kFd) && raw.Given(Argument::kSocketPath)) {
    return CannotBeUsedWith(Argument::kFd, Argument::kSocketPath);
  }
  if (raw.Given(Argument::kRenderNode) && raw.Given(Argument::kGpuDevice)) {
    return CannotBeUsedWith(Argument::kRenderNode, Argument::kGpuDevice);
  }
  return std::nullopt;
}

// Converts the raw values into Options; every failure here is a usage error.
Result<Options> ConvertValues(const RawArguments& raw, const char* environment_log_level) {
  Options options;
  auto invalid = [](std::string message) {
    return MakeError(ErrorKind::kInvalidArgument, std::move(message));
  };
  if (raw.Given(Argument::kSocketPath)) options.socket_path = raw.Value(Argument::kSocketPath);
  if (raw.Given(Argument::kFd)) {
    std::optional<int> fd = ParseFd(raw.Value(Argument::kFd));
    if (!fd) {
      return invalid(InvalidValue(raw.Value(Argument::kFd), Argument::kFd,
                                  "[expected a non-negative file descriptor number]"));
    }
    options.inherited_fd = *fd;
  }
  if (raw.Given(Argument::kGpuMode)) {
    std::optional<GpuMode> mode = ParseGpuMode(raw.Value(Argument::kGpuMode));
    if (!mode) {
      return invalid(
          InvalidValue(raw.Value(Argument::kGpuMode), Argument::kGpuMode, kGpuModeValues));
    }
    options.gpu_mode = *mode;
  } else if (raw.Given(Argument::kVirgl)) {
    options.gpu_mode = GpuMode::kVirglRenderer;
  }
  for (const std::string& list : raw.Values(Argument::kCapset)) {
    // value_delimiter=',' in the seed: each element must name a capset.
    size_t start = 0;
    while (true) {
      size_t comma = list.find(',', start);
      std::string_view name =
          std::string_view(list).substr(start, comma == std::string::npos ? comma : comma - start);
      std::optional<Capset> capset = ParseCapset(name);
      if (!capset) return invalid(InvalidValue(name, Argument::kCapset, kCapsetValues));
      if (std::find(options.capsets.begin(), options.capsets.end(), *capset) ==
          options.capsets.end()) {
        options.capsets.push_back(*capset);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const std::pair<Argument, bool*> bool_options[] = {
      {Argument::kUseEgl, &options.use_egl},
      {Argument::kUseGlx, &options.use_glx},
      {Argument::kUseGles, &options.use_gles},
      {Argument::kUseSurfaceless, &options.use_surfaceless},
  };
  for (const auto& [argument, field] : bool_options) {
    if (!raw.Given(argument)) continue;
    std::optional<bool> value = ParseBool(raw.Value(argument));
    if (!value) return invalid(InvalidValue(raw.Value(argument), argument, kBoolValues));
    *field = *value;
  }
  options.headless = raw.Given(Argument::kHeadless);
  options.sandbox = !raw.Given(Argument::kNoSandbox);
  if (raw.Given(Argument::kGpuDevice)) options.gpu_device_path = raw.Value(Argument::kGpuDevice);
  if (raw.Given(Argument::kRenderNode)) options.gpu_device_path = raw.Value(Argument::kRenderNode);
  if (raw.Given(Argument::kMaxHostmem)) {
    std::optional<uint64_t> size = ParseByteSize(raw.Value(Argument::kMaxHostmem));
    if (!size) {
      return invalid(InvalidValue(raw.Value(Argument::kMaxHostmem), Argument::kMaxHostmem,
                                  "[expected a non-zero byte count with an optional K, M or G "
                                  "suffix that fits in 64 bits]"));
    }
    options.max_host_memory = *size;
  }
  if (raw.Given(Argument::kHostVisibleMemory)) {
    const std::string& text = raw.Value(Argument::kHostVisibleMemory);
    std::optional<uint64_t> size = text == "0" ? std::optional<uint64_t>(0) : ParseByteSize(text);
    // The VMM maps it as a PCI BAR: a power of two, in whole pages; 64G is far beyond any need.
    if (!size || (*size != 0 &&
                  (*size < (1ull << 20) || *size > (64ull << 30) || (*size & (*size - 1)) != 0))) {
      return invalid(InvalidValue(text, Argument::kHostVisibleMemory,
                                  "[expected 0 or a power of two from 1M to 64G, with an optional "
                                  "K, M or G suffix]"));
    }
    options.host_visible_memory = *size;
  }
  if (environment_log_level != nullptr) {
    // An unusable environment value is ignored rather than fatal: it may be meant for another
    // program, and the option can always override it.
    if (std::optional<LogLevel> level = ParseLogLevel(environment_log_level)) {
      options.log_level = *level;
    }
  }
  if (raw.Given(Argument::kLogLevel)) {
    std::optional<LogLevel> level = ParseLogLevel(raw.Value(Argument::kLogLevel));
    if (!level) {
      return invalid(
          InvalidValue(raw.Value(Argument::kLogLevel), Argument::kLogLevel, kLogLevelValues));
    }
    options.log_level = *level;
  }
  if (!options.socket_path && !options.inherited_fd) {
    return invalid(
        "the following required arguments were not provided: --socket-path <SOCKET> (or --fd "
        "<FD>)");
  }
  // QEMU's backend convention (vhost-user.rst, "Backend program conventions"): a GPU backend
  // started with --fd and without --virgl serves 2D. libvirt starts it so.
  if (!raw.Given(Argument::kGpuMode) && !raw.Given(Argument::kVirgl) && !options.inherited_fd) {
    return invalid("the following required arguments were not provided: --gpu-mode <GPU_MODE>");
  }
  return options;
}

// The seed's GpuConfigBuilder checks plus "fail early if a requested capability is unavailable"
// (vhost-user.rst, back-end program conventions). Fills in the default capsets.
std::optional<std::string> CheckConfiguration(const RawArguments& raw, Options& options,
                                              const BuildFeatures& features) {
  const char* mode_name = GpuModeName(options.gpu_mode);
  if (!ModeCompiledIn(options.gpu_mode, features)) {
    std::string given = raw.Given(Argument::kGpuMode) ? "--gpu-mode " + std::string(mode_name)
                                                      : std::string("--virgl");
    return Quoted(given) + " is not available: this binary was built without the " + mode_name +
           " backend";
  }
  if (raw.Given(Argument::kVirgl) && options.gpu_mode != GpuMode::kVirglRenderer) {
    return "'--virgl' cannot be used with '--gpu-mode " + std::string(mode_name) + "'";
  }
  bool capsets_given = raw.Given(Argument::kCapset);
  if (!capsets_given) options.capsets = DefaultCapsets(options.gpu_mode);
  for (Capset capset : options.capsets) {
    if (!CapsetBelongsTo(capset, options.gpu_mode)) {
      return "'--capset " + std::string(CapsetName(capset)) + "' is not supported by '--gpu-mode " +
             mode_name + "' (supported: " + CapsetsOfMode(options.gpu_mode) + ")";
    }
  }
  bool wants_gles = std::find(options.capsets.begin(), options.capsets.end(),
                              Capset::kGfxstreamGles) != options.capsets.end();
  if (wants_gles && !options.use_gles) {
    // The seed's GlesRequiredByGfxstream; it applies to the default capsets too.
    return capsets_given
               ? std::string("'--capset gfxstream-gles' requires '--use-gles true'")
               : std::string(
                     "'--gpu-mode gfxstream' enables capset gfxstream-gles by default, which "
                     "requires '--use-gles true' (or pass '--capset gfxstream-vulkan')");
  }
  if (options.gpu_device_path && options.gpu_mode != GpuMode::kVirglRenderer) {
    // --render-node is QEMU's convention, passed by libvirt in every mode whenever the host has a
    // render node: accepted and left unused. --gpu-device is the seed's, and keeps its error.
    if (raw.Given(Argument::kRenderNode)) {
      options.unused_render_node = std::move(options.gpu_device_path);
      options.gpu_device_path.reset();
    } else {
      return Quoted(LongName(Argument::kGpuDevice)) +
             " is only supported with '--gpu-mode virglrenderer', not '" + mode_name + "'";
    }
  }
  return std::nullopt;
}

// QEMU's convention: --print-capabilities prints and exits 0 "ignoring other options", so it wins
// even over words that would otherwise be errors.
bool AsksForCapabilities(int argc, const char* const* argv) {
  for (int index = 1; index < argc; ++index) {
    std::string_view word = argv[index];
    if (word == "--") return false;
    if (word == "--print-capabilities") return true;
  }
  return false;
}

}  // namespace

BuildFeatures CompiledFeatures() {
  BuildFeatures features{false, false};
#ifdef VGPU_HAVE_VIRGL
  features.virgl = true;
#endif
#ifdef VGPU_HAVE_GFXSTREAM
  features.gfxstream = true;
#endif
  return features;
}

const char* GpuModeName(GpuMode mode) {
  switch (mode) {
    case GpuMode::kVirglRenderer:
      return "virglrenderer";
    case GpuMode::kGfxstream:
      return "gfxstream";
    case GpuMode::kNull:
      return "null";
  }
  return "unknown";
}

const char* CapsetName(Capset capset) {
  switch (capset) {
    case Capset::kVirgl:
      return "virgl";
    case Capset::kVirgl2:
      return "virgl2";
    case Capset::kVenus:
      return "venus";
    case Capset::kGfxstreamVulkan:
      return "gfxstream-vulkan";
    case Capset::kGfxstreamGles:
      return "gfxstream-gles";
  }
  return "unknown";
}

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
      case 'k':
        multiplier = 1ull << 10;
        break;
      case 'M':
      case 'm':
        multiplier = 1ull << 20;
        break;
      case 'G':
      case 'g':
        multiplier = 1ull << 30;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char digit : text) {
    if (digit < '0' || digit > '9') return std::nullopt;
    std::optional<uint64_t> tens = CheckedMul<uint64_t>(value, 10u);
    if (!tens) return std::nullopt;
    std::optional<uint64_t> next = CheckedAdd<uint64_t>(*tens, digit - '0');
    if (!next) return std::nullopt;
    value = *next;
  }
  std::optional<uint64_t> bytes = CheckedMul<uint64_t>(value, multiplier);
  if (!bytes || *bytes == 0) return std::nullopt;
  return bytes;
}

std::string CapabilitiesJson(const BuildFeatures& features, bool host_has_render_node) {
  if (!features.virgl) return R"({"type":"gpu","features":[]})";
  if (!host_has_render_node) return R"({"type":"gpu","features":["virgl"]})";
  return R"({"type":"gpu","features":["render-node","virgl"]})";
}

std::string CapabilitiesJson() { return CapabilitiesJson(CompiledFeatures(), HostHasRenderNode()); }

bool HostHasRenderNode() {
  DIR* directory = opendir("/dev/dri");
  if (directory == nullptr) return false;
  bool found = false;
  while (dirent* entry = readdir(directory)) {
    if (std::string_view(entry->d_name).starts_with("renderD")) found = true;
  }
  closedir(directory);
  return found;
}

ParseOutcome ParseCommandLine(int argc, const char* const* argv, const BuildFeatures& features,
                              const char* environment_log_level) {
  if (AsksForCapabilities(argc, argv)) {
    return PrintAndExit(CapabilitiesJson(features, HostHasRenderNode()) + "\n");
  }
  Result<RawArguments> raw = Tokenize(argc, argv);
  if (!raw) return UsageError(raw.error().message);
  // clap answers help and version before it validates anything else.
  if (raw->Given(Argument::kLongHelp)) return PrintAndExit(LongHelpText(features));
  if (raw->Given(Argument::kShortHelp)) return PrintAndExit(ShortHelpText(features));
  if (raw->Given(Argument::kVersion)) return PrintAndExit(VersionText());
  if (std::optional<std::string> message = CheckShape(*raw)) return UsageError(*message);
  Result<Options> options = ConvertValues(*raw, environment_log_level);
  if (!options) return UsageError(options.error().message);
  if (std::optional<std::string> message = CheckConfiguration(*raw, *options, features)) {
    return ConfigurationError(*message);
  }
  ParseOutcome outcome;
  outcome.options = std::move(*options);
  return outcome;
}

Result<UniqueFd> OpenGpuDevice(const Options& options) {
  if (!options.gpu_device_path) return UniqueFd();
  const std::string& path = *options.gpu_device_path;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return MakeSystemError("cannot open --gpu-device '" + path + "'");
  return fd;
}

}  // namespace vgpu::daemon
