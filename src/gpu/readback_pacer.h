// ReadbackPacer: how often a 3D scanout is read back for the VMM's display.
//
//   ReadbackPacer pacer(loop, std::chrono::milliseconds(16), [&](uint32_t scanout, Rect damage) {
//     SendUpdate(scanout, damage);                    // Read back and send now.
//   });
//   pacer.Flushed(scanout, resource, damage, now);    // At a RESOURCE_FLUSH of a read-back
//   scanout.
//
// A guest renders as fast as the GPU lets it (glmark2: hundreds of frames a second), but the VMM
// shows the UPDATEs it gets at its display's refresh rate (QEMU's non-GL displays redraw every
// 30 ms), so reading back every flush mostly produces pixels nobody sees, and on a software
// renderer each read-back costs as much as the frame. A flush of a scanout read back less than
// `interval` ago is not read back now: its damage is kept (merged with later flushes'), and read
// back once the interval has passed. The newest frame is always the one shown, at most one
// interval later; a flush after a quiet interval is read back at once, so a single frame's latency
// is unchanged. The flush itself is answered at once either way, as a display that draws later
// does (docs/ARCHITECTURE.md, "A frame's way").
//
// Device thread only. With a zero interval every flush is read back at once.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <optional>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "gpu/protocol.h"

namespace vgpu::gpu {

class ReadbackPacer {
 public:
  using Clock = std::chrono::steady_clock;
  // Reads back `damage` (resource coordinates) of what scanout `scanout_id` shows and sends it.
  using SendFn = std::function<void(uint32_t scanout_id, const Rect& damage)>;

  // `loop` is where the timer for deferred read-backs is watched; null (no display) or a zero
  // `interval` makes every flush go at once.
  ReadbackPacer(EventLoop* loop, std::chrono::nanoseconds interval, SendFn send);
  ~ReadbackPacer();
  ReadbackPacer(const ReadbackPacer&) = delete;
  ReadbackPacer& operator=(const ReadbackPacer&) = delete;

  // A flush of `damage` on a scanout that shows `resource` by read-back: sent now, or kept.
  void Flushed(uint32_t scanout_id, ResourceId resource, const Rect& damage,
               Clock::time_point now = Clock::now());
  // The scanout was sent whole by other means (SET_SCANOUT): what was kept is covered.
  void SentWhole(uint32_t scanout_id, Clock::time_point now = Clock::now());
  // The scanout shows something else, or nothing: what was kept for it is dropped.
  void Forget(uint32_t scanout_id);
  void Reset();

  // Sends what is due at `now` (the timer's callback; public for tests).
  void Tick(Clock::time_point now);
  // When the next kept damage is due; nullopt when nothing is kept.
  std::optional<Clock::time_point> next_due() const;
  // Kept damage of a scanout (tests, diagnostics).
  std::optional<Rect> kept(uint32_t scanout_id) const { return scanouts_[scanout_id].damage; }

 private:
  struct State {
    std::optional<Clock::time_point> last_sent;
    ResourceId resource;
    std::optional<Rect> damage;
  };
  bool Due(const State& state, Clock::time_point now) const;
  void Send(uint32_t scanout_id, const Rect& damage, Clock::time_point now);
  void ArmTimer();

  EventLoop* const loop_;
  const std::chrono::nanoseconds interval_;
  const SendFn send_;
  std::array<State, kMaxScanouts> scanouts_{};
  UniqueFd timer_;
  std::optional<WatchId> timer_watch_;
};

}  // namespace vgpu::gpu
