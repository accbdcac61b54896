// A recorded 3D command stream (the daemon's VHOST_DEVICE_GPU_RECORD_3D file,
// src/gpu/command_recorder.h) and the plan to replay it: what runs once, and the per-frame
// virgl commands a workload resubmits.
//
//   Result<std::vector<RecordedCommand>> commands = LoadRecording("bench/streams/gl_draw.virgl");
//   Result<ReplayPlan> plan = PlanReplay(*commands);
//   for (const RecordedCommand& command : plan->setup) { ... run command.bytes ... }
//   Submit3d(plan->context_id, plan->frame_words);   // Every frame.
//
// The frame is the last SUBMIT_3D that draws or clears in the first session of the first
// context that does; the setup is that context's creation, the 3D resources it uses, its
// attachments, transfers and submits up to and including the frame's (so every object the frame
// uses exists). The per-frame stream is the frame's submit without the commands that create or
// destroy objects, sub-contexts or linked programs: a guest creates those once, and replaying a
// creation would make the renderer replace (or leak) an object every frame.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "gpu/protocol.h"

namespace vgpu::bench {

struct RecordedCommand {
  std::vector<uint8_t> bytes;  // The request as the guest sent it, CtrlHdr first.
  // Set in a ReplayPlan's setup: the guest fenced this command. The plan clears the guest's fence
  // flag and id in `bytes`; the replay fences with ids of its own.
  bool fenced = false;

  gpu::CtrlHdr header() const;
  gpu::CommandType type() const { return static_cast<gpu::CommandType>(header().type); }
};

// Reads every record of `path`; an error names the offset of a bad record.
Result<std::vector<RecordedCommand>> LoadRecording(const std::string& path);

struct ReplayPlan {
  uint32_t context_id = 0;
  // To run once, in recorded order (fence flags cleared, `fenced` set).
  std::vector<RecordedCommand> setup;
  // The RESOURCE_CREATE_3D requests among `setup` (each needs guest backing).
  std::vector<gpu::ResourceCreate3d> resources;
  std::vector<uint32_t> frame_words;  // The per-frame virgl commands.
  uint32_t frame_commands = 0;        // Virgl commands in frame_words.
  uint32_t frame_draws = 0;
  uint32_t frame_clears = 0;
  uint32_t one_time_commands = 0;  // Left out of the frame (creations, destructions).
  // What the frame clears: colour buffer 0's resource and the clear colour (x8r8g8b8), when the
  // frame's submit creates that surface, binds it and clears it (for a sanity check of the
  // replay); 0 / nullopt otherwise.
  uint32_t render_target = 0;
  std::optional<uint32_t> clear_colour;
};

Result<ReplayPlan> PlanReplay(const std::vector<RecordedCommand>& commands);

}  // namespace vgpu::bench
