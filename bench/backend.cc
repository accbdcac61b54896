#include "backend.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

namespace vgpu::bench {
namespace {

Result<std::vector<std::string>> SplitWords(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (const char character : text) {
    if (quote != 0) {
      if (character == quote) {
        quote = 0;
      } else {
        word += character;
      }
    } else if (character == '\'' || character == '"') {
      quote = character;
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(character))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += character;
      in_word = true;
    }
  }
  if (quote != 0) return MakeError(ErrorKind::kInvalidArgument, "unterminated quote in " + text);
  if (in_word) words.push_back(std::move(word));
  return words;
}

// posix_spawn does not search $PATH; a bare program name is looked up here as a shell would.
std::string ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string directories = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= directories.size()) {
    size_t end = directories.find(':', start);
    if (end == std::string::npos) end = directories.size();
    const std::string candidate = directories.substr(start, end - start) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return program;
}

constexpr std::chrono::milliseconds kConnectTimeout{5000};
// QEMU's daemon exits on its own when the frontend goes; ours keeps serving.
constexpr std::chrono::milliseconds kSelfExitGrace{500};
constexpr std::chrono::milliseconds kTerminateGrace{3000};

}  // namespace

Result<BackendSpec> BackendSpec::Parse(const std::string& argument) {
  BackendSpec spec;
  spec.text = argument;
  struct stat status {};
  if (stat(argument.c_str(), &status) == 0 && S_ISSOCK(status.st_mode)) {
    spec.kind = Kind::kSocket;
    spec.socket_path = argument;
    return spec;
  }
  Result<std::vector<std::string>> words = SplitWords(argument);
  if (!words) return ErrorOf(words);
  if (words->empty()) return MakeError(ErrorKind::kInvalidArgument, "empty BACKEND");
  (*words)[0] = ResolveProgram((*words)[0]);
  if (access((*words)[0].c_str(), X_OK) != 0) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "BACKEND '" + argument +
                         "' is neither a listening socket nor a command line whose program is "
                         "executable");
  }
  spec.kind = Kind::kCommand;
  spec.command = std::move(*words);
  return spec;
}

Result<std::unique_ptr<BackendConnection>> BackendConnection::Open(
    const BackendSpec& spec, const ConnectionOptions& options) {
  std::unique_ptr<BackendConnection> connection(new BackendConnection());
  std::string socket_path = spec.socket_path;
  if (spec.kind == BackendSpec::Kind::kCommand) {
    test::DaemonOptions daemon;
    daemon.binary = spec.command[0];
    daemon.arguments.assign(spec.command.begin() + 1, spec.command.end());
    daemon.start_timeout = options.start_timeout;
    Result<std::unique_ptr<test::DaemonProcess>> process = test::DaemonProcess::Start(daemon);
    if (!process) return ErrorOf(process);
    connection->process_ = std::move(*process);
    socket_path = connection->process_->socket_path();
  }
  Result<test::VhostUserFrontend> frontend =
      test::VhostUserFrontend::Connect(socket_path, kConnectTimeout);
  if (!frontend) return ErrorOf(frontend);
  connection->frontend_.emplace(std::move(*frontend));

  test::NegotiationOptions negotiation;
  negotiation.memory_size = options.memory_size;
  negotiation.display_options.outputs = {
      test::FakeOutput{true, options.display_width, options.display_height}};
  Result<test::Session> session = connection->frontend_->NegotiateLikeQemu10(negotiation);
  if (!session) {
    Error error = session.error();
    if (connection->process_) error.message += "; backend output:\n" + connection->BackendOutput();
    return tl::unexpected(error);
  }
  connection->session_ = std::move(*session);
  return connection;
}

BackendConnection::~BackendConnection() { Close(); }

std::optional<pid_t> BackendConnection::pid() const {
  if (!process_) return std::nullopt;
  return process_->pid();
}

std::optional<ProcessSample> BackendConnection::Sample() const {
  if (!process_) return std::nullopt;
  return SampleProcess(process_->pid());
}

bool BackendConnection::BackendRunning() { return !process_ || process_->IsRunning(); }

std::string BackendConnection::BackendOutput() const {
  if (!process_) return "";
  std::string output = process_->StderrText();
  constexpr size_t kTail = 4000;
  if (output.size() > kTail) output = "..." + output.substr(output.size() - kTail);
  return output;
}

std::string BackendConnection::Close() {
  if (closed_) return "";
  closed_ = true;
  if (process_ && !process_->IsRunning()) {
    std::optional<test::ExitStatus> status = process_->WaitForExit(std::chrono::milliseconds(0));
    return "exited during the workload: " + (status ? status->ToString() : std::string("?"));
  }
  std::string stop_error;
  if (frontend_ && session_.control_queue) {
    Result<std::vector<uint32_t>> stopped = frontend_->StopLikeQemu10(session_);
    if (!stopped) stop_error = "stopping the rings failed: " + stopped.error().message + "; ";
  }
  if (frontend_) frontend_->Close();
  session_.display.reset();
  if (!process_) return stop_error;
  if (std::optional<test::ExitStatus> status = process_->WaitForExit(kSelfExitGrace)) {
    return stop_error + "exited by itself after the frontend disconnected: " + status->ToString();
  }
  process_->Terminate();
  if (std::optional<test::ExitStatus> status = process_->WaitForExit(kTerminateGrace)) {
    return stop_error +
           "kept serving after the frontend disconnected; SIGTERM: " + status->ToString();
  }
  process_->Kill();
  return stop_error + "did not end on SIGTERM; killed";
}

}  // namespace vgpu::bench
