#include "daemon/options.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vgpu::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr BuildFeatures kAllBackends{true, true};
constexpr BuildFeatures kNullOnly{false, false};

ParseOutcome Parse(std::vector<std::string> arguments, const BuildFeatures& features = kAllBackends,
                   const char* environment_log_level = nullptr) {
  std::vector<const char*> argv = {"vhost-device-gpu"};
  for (const std::string& argument : arguments) argv.push_back(argument.c_str());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data(), features,
                          environment_log_level);
}

// Parses arguments that must be accepted and returns the options.
Options ParseValid(std::vector<std::string> arguments, const BuildFeatures& features = kAllBackends,
                   const char* environment_log_level = nullptr) {
  ParseOutcome outcome = Parse(std::move(arguments), features, environment_log_level);
  EXPECT_TRUE(outcome.options.has_value()) << outcome.standard_error;
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_THAT(outcome.standard_error, IsEmpty());
  EXPECT_THAT(outcome.standard_output, IsEmpty());
  return outcome.options.value_or(Options{});
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// Usage errors: exit 2, "error: ..." naming `option` on the first line, then clap's hint.
void ExpectUsageError(std::vector<std::string> arguments, const std::string& option,
                      const BuildFeatures& features = kAllBackends) {
  std::string joined;
  for (const std::string& argument : arguments) joined += argument + " ";
  SCOPED_TRACE("arguments: " + joined);
  ParseOutcome outcome = Parse(std::move(arguments), features);
  EXPECT_FALSE(outcome.options.has_value());
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(outcome.standard_output, IsEmpty());
  EXPECT_THAT(outcome.standard_error, StartsWith("error: "));
  EXPECT_THAT(FirstLine(outcome.standard_error), HasSubstr(option));
  EXPECT_EQ(outcome.standard_error,
            FirstLine(outcome.standard_error) + "\n\nFor more information, try '--help'.\n");
}

// Configuration errors: exit 1, exactly one line "error: ..." naming `option`.
void ExpectConfigurationError(std::vector<std::string> arguments, const std::string& option,
                              const BuildFeatures& features = kAllBackends) {
  std::string joined;
  for (const std::string& argument : arguments) joined += argument + " ";
  SCOPED_TRACE("arguments: " + joined);
  ParseOutcome outcome = Parse(std::move(arguments), features);
  EXPECT_FALSE(outcome.options.has_value());
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.standard_output, IsEmpty());
  EXPECT_THAT(outcome.standard_error, StartsWith("error: "));
  EXPECT_THAT(outcome.standard_error, HasSubstr(option));
  EXPECT_EQ(outcome.standard_error, FirstLine(outcome.standard_error) + "\n");
}

TEST(OptionsTest, MinimalCommandLineRuns) {
  Options options = ParseValid({"--socket-path", "/tmp/gpu.socket", "--gpu-mode", "null"});
  EXPECT_EQ(options.socket_path, "/tmp/gpu.socket");
  EXPECT_FALSE(options.inherited_fd.has_value());
  EXPECT_EQ(options.gpu_mode, GpuMode::kNull);
}

TEST(OptionsTest, DefaultsMatchTheSeed) {
  Options options = ParseValid({"-s", "/tmp/gpu.socket", "-g", "virglrenderer"});
  EXPECT_EQ(options.gpu_mode, GpuMode::kVirglRenderer);
  EXPECT_TRUE(options.use_egl);
  EXPECT_FALSE(options.use_glx);
  EXPECT_TRUE(options.use_gles);
  EXPECT_TRUE(options.use_surfaceless);
  EXPECT_FALSE(options.headless);
  EXPECT_FALSE(options.gpu_device_path.has_value());
  EXPECT_EQ(options.max_host_memory, 256ull << 20);
  EXPECT_EQ(options.log_level, LogLevel::kInfo);
  EXPECT_FALSE(options.print_capabilities);
  EXPECT_TRUE(options.sandbox);
}

TEST(OptionsTest, AcceptsEqualsAndAttachedShortValues) {
  Options options = ParseValid({"--socket-path=/tmp/a", "-gnull"});
  EXPECT_EQ(options.socket_path, "/tmp/a");
  EXPECT_EQ(options.gpu_mode, GpuMode::kNull);
}

TEST(OptionsTest, AcceptsTheSeedsVirglRendererAlias) {
  EXPECT_EQ(ParseValid({"-s", "/tmp/a", "-g", "virgl-renderer"}).gpu_mode, GpuMode::kVirglRenderer);
  EXPECT_EQ(ParseValid({"-s", "/tmp/a", "-g", "gfxstream"}).gpu_mode, GpuMode::kGfxstream);
}

struct BoolOptionCase {
  const char* name;
  bool Options::*field;
};

class BoolOptionTest : public ::testing::TestWithParam<BoolOptionCase> {};

TEST_P(BoolOptionTest, TakesTrueAndFalse) {
  for (bool value : {true, false}) {
    Options options = ParseValid(
        {"-s", "/tmp/a", "-g", "virglrenderer", GetParam().name, value ? "true" : "false"});
    EXPECT_EQ(options.*GetParam().field, value) << GetParam().name;
  }
}

TEST_P(BoolOptionTest, RejectsOtherWordsNamingTheOption) {
  for (const char* value : {"yes", "1", "TRUE", "on"}) {
    ExpectUsageError({"-s", "/tmp/a", "-g", "null", GetParam().name, value},
                     std::string("invalid value '") + value + "' for '" + GetParam().name);
  }
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", GetParam().name}, GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(AllBoolOptions, BoolOptionTest,
                         ::testing::Values(BoolOptionCase{"--use-egl", &Options::use_egl},
                                           BoolOptionCase{"--use-glx", &Options::use_glx},
                                           BoolOptionCase{"--use-gles", &Options::use_gles},
                                           BoolOptionCase{"--use-surfaceless",
                                                          &Options::use_surfaceless}));

TEST(OptionsTest, HeadlessIsAFlag) {
  EXPECT_TRUE(ParseValid({"-s", "/tmp/a", "-g", "null", "--headless"}).headless);
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--headless=true"}, "--headless");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--headless", "--headless"}, "--headless");
}

// An extension, like --fd: the seed has no sandbox to turn off.
TEST(OptionsTest, NoSandboxIsAFlagThatTurnsTheSandboxOff) {
  EXPECT_TRUE(ParseValid({"-s", "/tmp/a", "-g", "null"}).sandbox);
  EXPECT_FALSE(ParseValid({"-s", "/tmp/a", "-g", "null", "--no-sandbox"}).sandbox);
  EXPECT_FALSE(ParseValid({"--no-sandbox", "--fd", "3", "--virgl"}).sandbox);
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--no-sandbox=true"}, "--no-sandbox");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--no-sandbox", "--no-sandbox"},
                   "the argument '--no-sandbox' cannot be used multiple times");
}

TEST(OptionsTest, CapsetsDefaultPerMode) {
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "virglrenderer"}).capsets,
              ElementsAre(Capset::kVirgl, Capset::kVirgl2));
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "gfxstream"}).capsets,
              ElementsAre(Capset::kGfxstreamVulkan, Capset::kGfxstreamGles));
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "null"}).capsets, IsEmpty());
}

TEST(OptionsTest, ExplicitCapsetsKeepOrderWithoutDuplicates) {
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "virglrenderer", "-c", "virgl2,virgl"}).capsets,
              ElementsAre(Capset::kVirgl2, Capset::kVirgl));
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "virglrenderer", "--capset", "virgl2"}).capsets,
              ElementsAre(Capset::kVirgl2));
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "gfxstream", "-c", "gfxstream-gles", "-c",
                          "gfxstream-vulkan,gfxstream-gles"})
                  .capsets,
              ElementsAre(Capset::kGfxstreamGles, Capset::kGfxstreamVulkan));
}

TEST(OptionsTest, CapsetIdsAreTheVirtioOnes) {
  EXPECT_EQ(static_cast<uint32_t>(Capset::kVirgl), 1u);
  EXPECT_EQ(static_cast<uint32_t>(Capset::kVirgl2), 2u);
  EXPECT_EQ(static_cast<uint32_t>(Capset::kGfxstreamVulkan), 3u);
  EXPECT_EQ(static_cast<uint32_t>(Capset::kGfxstreamGles), 8u);
  EXPECT_STREQ(CapsetName(Capset::kGfxstreamVulkan), "gfxstream-vulkan");
  EXPECT_STREQ(GpuModeName(GpuMode::kVirglRenderer), "virglrenderer");
}

TEST(OptionsTest, InheritedFdReplacesTheSocketPath) {
  Options options = ParseValid({"--fd", "3", "-g", "null"});
  EXPECT_EQ(options.inherited_fd, 3);
  EXPECT_FALSE(options.socket_path.has_value());
  EXPECT_EQ(ParseValid({"--fd=0", "-g", "null"}).inherited_fd, 0);
}

TEST(OptionsTest, QemuConventionOptionsAreAliases) {
  Options options = ParseValid({"--fd=4", "--virgl", "--render-node=/dev/dri/renderD128"});
  EXPECT_EQ(options.gpu_mode, GpuMode::kVirglRenderer);
  EXPECT_EQ(options.gpu_device_path, "/dev/dri/renderD128");
  EXPECT_EQ(ParseValid({"-s", "/tmp/a", "-g", "virglrenderer", "--virgl"}).gpu_mode,
            GpuMode::kVirglRenderer);
}

TEST(OptionsTest, GpuDeviceWithVirglRenderer) {
  EXPECT_EQ(
      ParseValid({"-s", "/tmp/a", "-g", "virglrenderer", "--gpu-device", "/dev/dri/renderD128"})
          .gpu_device_path,
      "/dev/dri/renderD128");
}

TEST(OptionsUsageErrorTest, UnknownOptionOrArgument) {
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--frobnicate"}, "'--frobnicate'");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "-x"}, "'-x'");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "stray"}, "'stray'");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--", "stray"}, "'stray'");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "-c", "virgl", "virgl2"}, "'virgl2'");
}

TEST(OptionsUsageErrorTest, UnknownGpuMode) {
  ExpectUsageError({"-s", "/tmp/a", "-g", "foo"},
                   "invalid value 'foo' for '--gpu-mode <GPU_MODE>' [possible values: "
                   "virglrenderer, gfxstream, null]");
}

TEST(OptionsUsageErrorTest, BadCapsetName) {
  ExpectUsageError({"-s", "/tmp/a", "-g", "virglrenderer", "-c", "vulkan"},
                   "invalid value 'vulkan' for '--capset <CAPSET>'");
  ExpectUsageError({"-s", "/tmp/a", "-g", "virglrenderer", "-c", "virgl,,virgl2"},
                   "invalid value '' for '--capset <CAPSET>'");
  ExpectUsageError({"-s", "/tmp/a", "-g", "virglrenderer", "-c", "virgl,"}, "--capset");
}

TEST(OptionsUsageErrorTest, MissingSocketPath) {
  ExpectUsageError({"-g", "null"}, "--socket-path <SOCKET>");
  ExpectUsageError({"-g", "null", "-s"}, "a value is required for '--socket-path <SOCKET>'");
  ExpectUsageError({"-g", "null", "-s", ""}, "--socket-path <SOCKET>");
  ExpectUsageError({"-s", "--gpu-mode", "null"}, "--socket-path <SOCKET>");
}

TEST(OptionsUsageErrorTest, MissingGpuMode) {
  ExpectUsageError({"-s", "/tmp/a"}, "--gpu-mode <GPU_MODE>");
  ExpectUsageError({"-s", "/tmp/a", "--gpu-mode"}, "--gpu-mode <GPU_MODE>");
}

TEST(OptionsUsageErrorTest, FdTogetherWithSocketPath) {
  ExpectUsageError({"-s", "/tmp/a", "--fd", "3", "-g", "null"},
                   "the argument '--fd <FD>' cannot be used with '--socket-path <SOCKET>'");
}

TEST(OptionsUsageErrorTest, BadFd) {
  for (const char* value : {"-1", "abc", "3x", "2147483648", "99999999999"}) {
    ExpectUsageError({"--fd", value, "-g", "null"},
                     std::string("invalid value '") + value + "' for '--fd <FD>'");
  }
}

TEST(OptionsUsageErrorTest, RepeatedSingleValueOption) {
  ExpectUsageError({"-s", "/tmp/a", "-s", "/tmp/b", "-g", "null"},
                   "'--socket-path <SOCKET>' cannot be used multiple times");
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "-g", "null"}, "--gpu-mode <GPU_MODE>");
}

TEST(OptionsUsageErrorTest, GpuDeviceTogetherWithRenderNode) {
  ExpectUsageError(
      {"-s", "/tmp/a", "-g", "virglrenderer", "--gpu-device", "/dev/a", "--render-node", "/dev/b"},
      "'--render-node <PATH>' cannot be used with '--gpu-device <PATH>'");
}

TEST(OptionsConfigurationErrorTest, ModeNotCompiledIn) {
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "virglrenderer"}, "--gpu-mode virglrenderer",
                           kNullOnly);
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "gfxstream"}, "--gpu-mode gfxstream", kNullOnly);
  ExpectConfigurationError({"--fd", "3", "--virgl"}, "--virgl", kNullOnly);
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "gfxstream"}, "--gpu-mode gfxstream",
                           BuildFeatures{true, false});
  EXPECT_EQ(ParseValid({"-s", "/tmp/a", "-g", "null"}, kNullOnly).gpu_mode, GpuMode::kNull);
}

TEST(OptionsConfigurationErrorTest, CapsetOfAnotherMode) {
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "virglrenderer", "-c", "gfxstream-vulkan"},
                           "--capset gfxstream-vulkan");
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "gfxstream", "-c", "virgl2"}, "--capset virgl2");
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "null", "-c", "virgl"}, "--capset virgl");
}

TEST(OptionsConfigurationErrorTest, GpuDeviceOutsideVirglRenderer) {
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "null", "--gpu-device", "/dev/dri/renderD128"},
                           "--gpu-device");
}

// QEMU's convention: --render-node is accepted in every mode (libvirt passes it whenever the host
// has a render node, 2D included) and left unused where nothing renders on a GPU.
TEST(OptionsTest, RenderNodeIsAcceptedAndUnusedOutsideVirglRenderer) {
  for (std::vector<std::string> arguments :
       {std::vector<std::string>{"-s", "/tmp/a", "-g", "gfxstream", "--render-node", "/dev/x"},
        std::vector<std::string>{"--fd=3", "--render-node=/dev/x"},
        std::vector<std::string>{"-s", "/tmp/a", "-g", "null", "--render-node", "/dev/x"}}) {
    Options options = ParseValid(arguments);
    EXPECT_FALSE(options.gpu_device_path.has_value());
    EXPECT_EQ(options.unused_render_node, "/dev/x");
  }
  Options virgl = ParseValid({"--fd=3", "--virgl", "--render-node=/dev/x"});
  EXPECT_EQ(virgl.gpu_device_path, "/dev/x");
  EXPECT_FALSE(virgl.unused_render_node.has_value());
}

// libvirt's 2D command line is `BINARY --fd=N`: no mode given means 2D (null mode). The seed's
// own CLI, with a socket path, still needs --gpu-mode.
TEST(OptionsTest, InheritedFdWithoutAModeServes2d) {
  Options options = ParseValid({"--fd=3"});
  EXPECT_EQ(options.gpu_mode, GpuMode::kNull);
  EXPECT_EQ(options.inherited_fd, 3);
  EXPECT_TRUE(options.capsets.empty());
  EXPECT_EQ(ParseValid({"--fd=3", "--virgl"}).gpu_mode, GpuMode::kVirglRenderer);
  ExpectUsageError({"-s", "/tmp/a"}, "--gpu-mode <GPU_MODE>");
}

TEST(OptionsConfigurationErrorTest, GfxstreamGlesNeedsGles) {
  ExpectConfigurationError(
      {"-s", "/tmp/a", "-g", "gfxstream", "-c", "gfxstream-gles", "--use-gles", "false"},
      "--use-gles");
  // The seed applies the check to the mode's default capsets too.
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "gfxstream", "--use-gles", "false"},
                           "--use-gles");
  EXPECT_THAT(ParseValid({"-s", "/tmp/a", "-g", "gfxstream", "-c", "gfxstream-vulkan", "--use-gles",
                          "false"})
                  .capsets,
              ElementsAre(Capset::kGfxstreamVulkan));
}

TEST(OptionsConfigurationErrorTest, VirglFlagWithAnotherMode) {
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "gfxstream", "--virgl"}, "--virgl");
}

TEST(OptionsTest, UsageErrorsComeBeforeConfigurationErrors) {
  ExpectUsageError({"-s", "/tmp/a", "-g", "virglrenderer", "--use-egl", "maybe"}, "--use-egl",
                   kNullOnly);
}

TEST(OptionsTest, PrintCapabilities) {
  ParseOutcome outcome = Parse({"--print-capabilities"});
  EXPECT_FALSE(outcome.options.has_value());
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.standard_output,
            HostHasRenderNode() ? "{\"type\":\"gpu\",\"features\":[\"render-node\",\"virgl\"]}\n"
                                : "{\"type\":\"gpu\",\"features\":[\"virgl\"]}\n");
  EXPECT_THAT(outcome.standard_error, IsEmpty());

  EXPECT_EQ(Parse({"--print-capabilities"}, kNullOnly).standard_output,
            "{\"type\":\"gpu\",\"features\":[]}\n");
  EXPECT_EQ(CapabilitiesJson(BuildFeatures{true, false}, true),
            R"({"type":"gpu","features":["render-node","virgl"]})");
  // Without a render node on the host, "render-node" would make libvirt refuse the domain.
  EXPECT_EQ(CapabilitiesJson(BuildFeatures{true, false}, false),
            R"({"type":"gpu","features":["virgl"]})");
  EXPECT_EQ(CapabilitiesJson(BuildFeatures{false, false}, true), R"({"type":"gpu","features":[]})");
  EXPECT_EQ(CapabilitiesJson(), CapabilitiesJson(CompiledFeatures(), HostHasRenderNode()));
}

TEST(OptionsTest, PrintCapabilitiesIgnoresOtherOptions) {
  for (std::vector<std::string> arguments :
       {std::vector<std::string>{"-s", "/tmp/a", "--print-capabilities", "-g", "bogus"},
        std::vector<std::string>{"--frobnicate", "--print-capabilities"},
        std::vector<std::string>{"--fd", "3", "-s", "/tmp/a", "--print-capabilities"}}) {
    ParseOutcome outcome = Parse(arguments);
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_FALSE(outcome.options.has_value());
    EXPECT_EQ(outcome.standard_output, CapabilitiesJson(kAllBackends, HostHasRenderNode()) + "\n");
  }
}

TEST(OptionsTest, ShortAndLongHelpDiffer) {
  ParseOutcome short_help = Parse({"-h"});
  ParseOutcome long_help = Parse({"--help"});
  EXPECT_EQ(short_help.exit_code, 0);
  EXPECT_EQ(long_help.exit_code, 0);
  EXPECT_FALSE(short_help.options.has_value());
  EXPECT_FALSE(long_help.options.has_value());
  EXPECT_THAT(short_help.standard_error, IsEmpty());
  EXPECT_NE(short_help.standard_output, long_help.standard_output);
  EXPECT_LT(short_help.standard_output.size(), long_help.standard_output.size());
  EXPECT_THAT(short_help.standard_output, HasSubstr("(see more with '--help')"));
  EXPECT_THAT(long_help.standard_output, HasSubstr("(see a summary with '-h')"));
  // Help wins over otherwise invalid command lines, as in clap.
  EXPECT_EQ(Parse({"-g", "bogus", "--help"}).standard_output, long_help.standard_output);
}

TEST(OptionsTest, ShortHelpHasOneLinePerOption) {
  std::string help = Parse({"-h"}).standard_output;
  std::string text = help.substr(help.find("\nOptions:\n"));
  for (const char* option :
       {"--socket-path <SOCKET>", "--gpu-mode <GPU_MODE>", "--capset <CAPSET>", "--use-egl",
        "--use-glx", "--use-gles", "--use-surfaceless", "--headless", "--gpu-device <PATH>",
        "--fd <FD>", "--max-hostmem <SIZE>", "--log-level <LEVEL>", "--print-capabilities",
        "--no-sandbox", "--help", "--version"}) {
    size_t at = text.find(option);
    ASSERT_NE(at, std::string::npos) << option;
    size_t line_start = text.rfind('\n', at) + 1;
    size_t line_end = text.find('\n', at);
    std::string line = text.substr(line_start, line_end - line_start);
    // The description is on the same line as the option.
    EXPECT_GT(line.size(), line.find(option) + std::string(option).size() + 2) << line;
  }
}

TEST(OptionsTest, LongHelpHasEverySeedOptionAndValue) {
  std::string text = Parse({"--help"}).standard_output;
  for (const char* expected : {
           "  -s, --socket-path <SOCKET>\n          vhost-user Unix domain socket\n",
           "  -g, --gpu-mode <GPU_MODE>\n",
           "[possible values: virglrenderer, gfxstream, null]",
           "  -c, --capset <CAPSET>\n          Comma separated list of enabled capsets\n",
           "- virgl:            [virglrenderer] OpenGL implementation, superseded by Virgl2",
           "- virgl2:           [virglrenderer] OpenGL implementation",
           "- gfxstream-vulkan: [gfxstream] Vulkan implementation (partial support only)",
           "- gfxstream-gles:   [gfxstream] OpenGL ES implementation (partial support only)",
           "NOTE: Can only be used for 2D display output for now, there is no hardware "
           "acceleration yet",
           "      --use-egl <USE_EGL>\n          Enable backend to use EGL\n\n          [default: "
           "true]\n          [possible values: true, false]\n",
           "      --use-glx <USE_GLX>\n          Enable backend to use GLX\n\n          [default: "
           "false]\n          [possible values: true, false]\n",
           "      --use-gles <USE_GLES>\n          Enable backend to use GLES\n\n          "
           "[default: true]\n",
           "      --use-surfaceless <USE_SURFACELESS>\n          Enable surfaceless backend "
           "option\n\n          [default: true]\n",
           "      --headless\n          Enable headless mode (no display output)\n",
           "      --gpu-device <PATH>\n          GPU device path (e.g., /dev/dri/renderD128)\n",
           "Only\n          applicable when using the virglrenderer backend.",
           "  -h, --help\n          Print help (see a summary with '-h')\n",
           "  -V, --version\n          Print version\n",
           "      --fd <FD>\n",
           "      --print-capabilities\n",
           "      --max-hostmem <SIZE>\n",
           "[default: 256M]",
           "      --log-level <LEVEL>\n",
           "[env: VHOST_DEVICE_GPU_LOG=]",
           "[possible values: error, warn, info, debug, trace]",
           "      --no-sandbox\n          Do not confine the daemon with its seccomp filter (for "
           "debugging)\n",
           "any other unlisted call fails with EPERM",
       }) {
    EXPECT_THAT(text, HasSubstr(expected));
  }
}

TEST(OptionsTest, Version) {
  for (const char* flag : {"-V", "--version"}) {
    ParseOutcome outcome = Parse({flag});
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_FALSE(outcome.options.has_value());
    EXPECT_EQ(outcome.standard_output, std::string("vhost-device-gpu ") + VGPU_VERSION + "\n");
  }
}

TEST(OptionsTest, LogLevelFromOptionAndEnvironment) {
  const std::vector<std::string> base = {"-s", "/tmp/a", "-g", "null"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> arguments = base;
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return arguments;
  };
  EXPECT_EQ(ParseValid(with({"--log-level", "debug"})).log_level, LogLevel::kDebug);
  EXPECT_EQ(ParseValid(with({"--log-level=error"})).log_level, LogLevel::kError);
  EXPECT_EQ(ParseValid(with({"--log-level", "warn"})).log_level, LogLevel::kWarning);
  EXPECT_EQ(ParseValid(base, kAllBackends, "trace").log_level, LogLevel::kTrace);
  // The option wins over the environment.
  EXPECT_EQ(ParseValid(with({"--log-level", "error"}), kAllBackends, "trace").log_level,
            LogLevel::kError);
  // An unusable environment value leaves the default.
  EXPECT_EQ(ParseValid(base, kAllBackends, "loud").log_level, LogLevel::kInfo);
  EXPECT_EQ(ParseValid(base, kAllBackends, "").log_level, LogLevel::kInfo);
  ExpectUsageError(with({"--log-level", "loud"}), "invalid value 'loud' for '--log-level <LEVEL>'");
}

TEST(OptionsTest, MaxHostmemSizes) {
  auto size_of = [](const char* text) {
    return ParseValid({"-s", "/tmp/a", "-g", "null", "--max-hostmem", text}).max_host_memory;
  };
  EXPECT_EQ(size_of("256M"), 256ull << 20);
  EXPECT_EQ(size_of("1G"), 1ull << 30);
  EXPECT_EQ(size_of("64k"), 64ull << 10);
  EXPECT_EQ(size_of("4096"), 4096u);
  EXPECT_EQ(size_of("17179869183G"), 17179869183ull << 30);
  EXPECT_EQ(size_of("18446744073709551615"), UINT64_MAX);
}

TEST(OptionsTest, MaxHostmemGarbageAndOverflow) {
  for (const char* value : {"12X", "M", "0", "0M", "-1", "1.5G", " 1G", "1G ", "1GB", "0x10",
                            "18446744073709551616", "17179869184G", "99999999999999999999999"}) {
    ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--max-hostmem", value},
                     std::string("invalid value '") + value + "' for '--max-hostmem <SIZE>'");
  }
  ExpectUsageError({"-s", "/tmp/a", "-g", "null", "--max-hostmem", ""}, "--max-hostmem <SIZE>");
}

TEST(OptionsTest, HostVisibleMemorySizes) {
  auto size_of = [](std::vector<std::string> extra) {
    std::vector<std::string> arguments = {"-s", "/tmp/a", "-g", "virglrenderer"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return ParseValid(arguments).host_visible_memory;
  };
  EXPECT_EQ(size_of({}), 4ull << 30);
  EXPECT_EQ(size_of({"--host-visible-memory", "1M"}), 1ull << 20);
  EXPECT_EQ(size_of({"--host-visible-memory", "256M"}), 256ull << 20);
  EXPECT_EQ(size_of({"--host-visible-memory", "64G"}), 64ull << 30);
  EXPECT_EQ(size_of({"--host-visible-memory", "0"}), 0u);
  // Not a power of two, under a megabyte, over 64G, garbage.
  for (const char* value : {"3M", "1536M", "512K", "4096", "128G", "1.5G", "G", "-1", "0M"}) {
    ExpectUsageError(
        {"-s", "/tmp/a", "-g", "virglrenderer", "--host-visible-memory", value},
        std::string("invalid value '") + value + "' for '--host-visible-memory <SIZE>'");
  }
}

TEST(OptionsTest, VenusIsAVirglrendererCapset) {
  EXPECT_EQ(ParseValid({"-s", "/tmp/a", "-g", "virglrenderer", "-c", "virgl2,venus"}).capsets,
            (std::vector<Capset>{Capset::kVirgl2, Capset::kVenus}));
  ExpectConfigurationError({"-s", "/tmp/a", "-g", "gfxstream", "-c", "venus"},
                           "'--capset venus' is not supported by '--gpu-mode gfxstream'");
}

TEST(OpenGpuDeviceTest, NoDeviceGivesNoFd) {
  Options options;
  Result<UniqueFd> fd = OpenGpuDevice(options);
  ASSERT_TRUE(fd.has_value());
  EXPECT_FALSE(fd->valid());
}

TEST(OpenGpuDeviceTest, OpensTheDeviceReadWriteAndCloseOnExec) {
  Options options;
  options.gpu_device_path = "/dev/null";
  Result<UniqueFd> fd = OpenGpuDevice(options);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  ASSERT_TRUE(fd->valid());
  int status_flags = fcntl(fd->get(), F_GETFL);
  EXPECT_EQ(status_flags & O_ACCMODE, O_RDWR);
  EXPECT_NE(status_flags & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(OpenGpuDeviceTest, MissingDeviceNamesThePath) {
  Options options;
  options.gpu_device_path = "/nonexistent/dri/renderD999";
  Result<UniqueFd> fd = OpenGpuDevice(options);
  ASSERT_FALSE(fd.has_value());
  EXPECT_EQ(fd.error().kind, ErrorKind::kSystem);
  EXPECT_EQ(fd.error().system_errno, ENOENT);
  EXPECT_THAT(fd.error().message, HasSubstr("/nonexistent/dri/renderD999"));
  EXPECT_THAT(fd.error().message, HasSubstr("--gpu-device"));
}

}  // namespace
}  // namespace vgpu::daemon
