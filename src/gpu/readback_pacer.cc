#include "gpu/readback_pacer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/log.h"

namespace vgpu::gpu {

ReadbackPacer::ReadbackPacer(EventLoop* loop, std::chrono::nanoseconds interval, SendFn send)
    : loop_(loop),
      interval_(loop != nullptr ? interval : std::chrono::nanoseconds(0)),
      send_(std::move(send)) {}

ReadbackPacer::~ReadbackPacer() {
  if (timer_watch_) loop_->Unwatch(*timer_watch_);
}

bool ReadbackPacer::Due(const State& state, Clock::time_point now) const {
  return !state.last_sent || now - *state.last_sent >= interval_;
}

void ReadbackPacer::Flushed(uint32_t scanout_id, ResourceId resource, const Rect& damage,
                            Clock::time_point now) {
  State& state = scanouts_[scanout_id];
  if (state.damage && state.resource != resource) state.damage.reset();
  if (interval_.count() == 0 || (!state.damage && Due(state, now))) {
    Send(scanout_id, damage, now);
    return;
  }
  // Read back less than an interval ago: keep the damage for when the interval has passed.
  state.resource = resource;
  state.damage = state.damage ? Union(*state.damage, damage) : damage;
  ArmTimer();
}

void ReadbackPacer::SentWhole(uint32_t scanout_id, Clock::time_point now) {
  State& state = scanouts_[scanout_id];
  state.damage.reset();
  state.last_sent = now;
  ArmTimer();
}

void ReadbackPacer::Forget(uint32_t scanout_id) {
  scanouts_[scanout_id] = State{};
  ArmTimer();
}

void ReadbackPacer::Reset() {
  scanouts_ = {};
  ArmTimer();
}

void ReadbackPacer::Send(uint32_t scanout_id, const Rect& damage, Clock::time_point now) {
  State& state = scanouts_[scanout_id];
  state.last_sent = now;
  state.damage.reset();
  send_(scanout_id, damage);
}

void ReadbackPacer::Tick(Clock::time_point now) {
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    State& state = scanouts_[i];
    if (state.damage && Due(state, now)) Send(i, *state.damage, now);
  }
  ArmTimer();
}

std::optional<ReadbackPacer::Clock::time_point> ReadbackPacer::next_due() const {
  std::optional<Clock::time_point> due;
  for (const State& state : scanouts_) {
    if (!state.damage) continue;
    const Clock::time_point at =
        state.last_sent ? *state.last_sent + interval_ : Clock::time_point{};
    if (!due || at < *due) due = at;
  }
  return due;
}

void ReadbackPacer::ArmTimer() {
  if (loop_ == nullptr || interval_.count() == 0) return;
  const std::optional<Clock::time_point> due = next_due();
  if (!timer_.valid()) {
    if (!due) return;
    timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!timer_.valid()) {
      LogError("display: timerfd_create for paced read-backs: %s", ErrnoText(errno).c_str());
      return;
    }
    Result<WatchId> watch = loop_->Watch(timer_.get(), EPOLLIN, [this](uint32_t) {
      uint64_t expirations = 0;
      (void)!read(timer_.get(), &expirations, sizeof(expirations));
      Tick(Clock::now());
    });
    if (!watch) {
      LogError("display: %s", watch.error().message.c_str());
      timer_.reset();
      return;
    }
    timer_watch_ = *watch;
  }
  itimerspec spec{};  // Zero: disarmed.
  if (due) {
    // steady_clock is CLOCK_MONOTONIC on Linux; 1 ns rather than 0, which would disarm.
    const int64_t at = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::nanoseconds>(due->time_since_epoch()).count());
    spec.it_value.tv_sec = static_cast<time_t>(at / 1000000000);
    spec.it_value.tv_nsec = static_cast<long>(at % 1000000000);
  }
  if (timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    LogError("display: timerfd_settime for paced read-backs: %s", ErrnoText(errno).c_str());
  }
}

}  // namespace vgpu::gpu
