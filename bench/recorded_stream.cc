#include "recorded_stream.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include "gpu/command_recorder.h"
#include "virgl_commands.h"

namespace vgpu::bench {
namespace {

// The virgl words of a SUBMIT_3D request; nullopt if it is malformed.
std::optional<std::vector<uint32_t>> SubmitWords(const RecordedCommand& command) {
  if (command.bytes.size() < sizeof(gpu::CmdSubmit)) return std::nullopt;
  gpu::CmdSubmit submit;
  std::memcpy(&submit, command.bytes.data(), sizeof(submit));
  if (submit.size % 4 != 0 || submit.size > command.bytes.size() - sizeof(submit)) {
    return std::nullopt;
  }
  std::vector<uint32_t> words(submit.size / 4);
  std::memcpy(words.data(), command.bytes.data() + sizeof(submit), submit.size);
  return words;
}

bool DrawsOrClears(const RecordedCommand& command) {
  if (command.type() != gpu::CommandType::kSubmit3d) return false;
  std::optional<std::vector<uint32_t>> words = SubmitWords(command);
  if (!words) return false;
  std::optional<std::vector<VirglCommand>> split = SplitVirglStream(*words);
  if (!split) return false;
  return std::any_of(split->begin(), split->end(), [](const VirglCommand& virgl) {
    return virgl.opcode == VirglOpcode::kDrawVbo || virgl.opcode == VirglOpcode::kClear;
  });
}

// Commands a guest sends once per object, not per frame.
bool IsOneTime(VirglOpcode opcode) {
  switch (opcode) {
    case VirglOpcode::kCreateObject:
    case VirglOpcode::kDestroyObject:
    case VirglOpcode::kCreateSubContext:
    case VirglOpcode::kDestroySubContext:
    case VirglOpcode::kPipeResourceCreate:
    case VirglOpcode::kLinkShader:
      return true;
    default:
      return false;
  }
}

uint8_t ColourChannel(uint32_t float_bits) {
  const float value = std::clamp(std::bit_cast<float>(float_bits), 0.0f, 1.0f);
  return static_cast<uint8_t>(std::lround(value * 255.0f));
}

// Follows the frame's surfaces into its framebuffer and its colour clear.
void FindClear(const std::vector<VirglCommand>& commands, ReplayPlan& plan) {
  std::map<uint32_t, uint32_t> surface_resources;  // Surface handle -> resource.
  uint32_t colour_buffer = 0;
  for (const VirglCommand& virgl : commands) {
    const std::span<const uint32_t> body = virgl.body;
    if (virgl.opcode == VirglOpcode::kCreateObject && virgl.object_type == kVirglObjectSurface &&
        body.size() >= 2) {
      surface_resources[body[0]] = body[1];  // VIRGL_OBJ_SURFACE_HANDLE, _RES_HANDLE.
    } else if (virgl.opcode == VirglOpcode::kSetFramebufferState && body.size() >= 3 &&
               body[0] >= 1) {
      colour_buffer = body[2];  // VIRGL_SET_FRAMEBUFFER_STATE_CBUF_HANDLE(0).
    } else if (virgl.opcode == VirglOpcode::kClear && body.size() >= 5 &&
               (body[0] & kPipeClearColor0) != 0 && surface_resources.contains(colour_buffer)) {
      plan.render_target = surface_resources[colour_buffer];
      plan.clear_colour = uint32_t{ColourChannel(body[1])} << 16 |
                          uint32_t{ColourChannel(body[2])} << 8 | ColourChannel(body[3]);
    }
  }
}

uint32_t ResourceIdOf(const RecordedCommand& command) {
  // CTX_ATTACH/DETACH_RESOURCE and RESOURCE_CREATE_3D: the id follows the header.
  uint32_t id = 0;
  if (command.bytes.size() >= sizeof(gpu::CtrlHdr) + sizeof(id)) {
    std::memcpy(&id, command.bytes.data() + sizeof(gpu::CtrlHdr), sizeof(id));
  }
  return id;
}

}  // namespace

gpu::CtrlHdr RecordedCommand::header() const {
  gpu::CtrlHdr header{};
  std::memcpy(&header, bytes.data(), std::min(bytes.size(), sizeof(header)));
  return header;
}

Result<std::vector<RecordedCommand>> LoadRecording(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return MakeSystemError("opening the recorded stream " + path);
  const std::vector<uint8_t> data((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());
  std::vector<RecordedCommand> commands;
  size_t offset = 0;
  while (offset < data.size()) {
    gpu::RecordHeader header;
    if (data.size() - offset < sizeof(header)) {
      return MakeError(ErrorKind::kMalformed,
                       path + ": truncated record at " + std::to_string(offset));
    }
    std::memcpy(&header, data.data() + offset, sizeof(header));
    offset += sizeof(header);
    if (header.magic != gpu::kRecordMagic || header.length < sizeof(gpu::CtrlHdr) ||
        header.length > data.size() - offset) {
      return MakeError(ErrorKind::kMalformed,
                       path + ": bad record at " + std::to_string(offset - sizeof(header)));
    }
    commands.push_back(RecordedCommand{
        std::vector<uint8_t>(data.begin() + static_cast<ptrdiff_t>(offset),
                             data.begin() + static_cast<ptrdiff_t>(offset + header.length))});
    offset += header.length;
  }
  return commands;
}

Result<ReplayPlan> PlanReplay(const std::vector<RecordedCommand>& commands) {
  // 1. The context: the first that draws or clears. Its first session ends where it is
  //    destroyed or created again (a file may hold several runs).
  auto first_drawing = std::find_if(commands.begin(), commands.end(), DrawsOrClears);
  if (first_drawing == commands.end()) {
    return MakeError(ErrorKind::kInvalidArgument, "the recording has no SUBMIT_3D that draws");
  }
  ReplayPlan plan;
  plan.context_id = first_drawing->header().ctx_id;
  auto created = std::find_if(commands.begin(), first_drawing, [&](const RecordedCommand& c) {
    return c.type() == gpu::CommandType::kCtxCreate && c.header().ctx_id == plan.context_id;
  });
  if (created == first_drawing) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "the recording does not create context " + std::to_string(plan.context_id));
  }
  auto session_end = std::find_if(created + 1, commands.end(), [&](const RecordedCommand& c) {
    return (c.type() == gpu::CommandType::kCtxCreate ||
            c.type() == gpu::CommandType::kCtxDestroy) &&
           c.header().ctx_id == plan.context_id;
  });
  // 2. The frame: the session's last drawing submit.
  auto frame = first_drawing;
  for (auto command = first_drawing; command != session_end; ++command) {
    if (command->header().ctx_id == plan.context_id && DrawsOrClears(*command)) frame = command;
  }
  // 3. The setup: the context, the resources it attaches, and its commands up to the frame.
  std::vector<uint32_t> attached;
  for (auto command = created; command <= frame; ++command) {
    if (command->type() == gpu::CommandType::kCtxAttachResource &&
        command->header().ctx_id == plan.context_id) {
      attached.push_back(ResourceIdOf(*command));
    }
  }
  for (auto command = commands.begin(); command <= frame; ++command) {
    const bool ours = command >= created && command->header().ctx_id == plan.context_id &&
                      command->type() != gpu::CommandType::kCtxDestroy;
    const bool used_resource =
        command->type() == gpu::CommandType::kResourceCreate3d &&
        std::find(attached.begin(), attached.end(), ResourceIdOf(*command)) != attached.end();
    if (!ours && !used_resource) continue;
    RecordedCommand copy = *command;
    // The guest's fences are its own; the workload fences as it measures.
    gpu::CtrlHdr header = copy.header();
    copy.fenced = (header.flags & gpu::kFlagFence) != 0;
    header.flags &= ~gpu::kFlagFence;
    header.fence_id = 0;
    std::memcpy(copy.bytes.data(), &header, sizeof(header));
    if (used_resource) {
      if (copy.bytes.size() < sizeof(gpu::ResourceCreate3d)) {
        return MakeError(ErrorKind::kMalformed, "truncated RESOURCE_CREATE_3D in the recording");
      }
      gpu::ResourceCreate3d create;
      std::memcpy(&create, copy.bytes.data(), sizeof(create));
      plan.resources.push_back(create);
    }
    plan.setup.push_back(std::move(copy));
  }
  // 4. The per-frame stream.
  std::optional<std::vector<uint32_t>> words = SubmitWords(*frame);
  std::optional<std::vector<VirglCommand>> split;
  if (words) split = SplitVirglStream(*words);
  if (!split) return MakeError(ErrorKind::kMalformed, "the frame's SUBMIT_3D is malformed");
  FindClear(*split, plan);
  for (const VirglCommand& virgl : *split) {
    if (IsOneTime(virgl.opcode)) {
      ++plan.one_time_commands;
      continue;
    }
    ++plan.frame_commands;
    plan.frame_draws += virgl.opcode == VirglOpcode::kDrawVbo;
    plan.frame_clears += virgl.opcode == VirglOpcode::kClear;
    plan.frame_words.push_back(virgl.header);
    plan.frame_words.insert(plan.frame_words.end(), virgl.body.begin(), virgl.body.end());
  }
  return plan;
}

}  // namespace vgpu::bench
