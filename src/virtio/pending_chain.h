// PendingChain and InFlightChains: who may write into a chain popped from a queue and return it
// to the driver, and when (docs/ARCHITECTURE.md, "Guest buffers have one owner").
//
//   InFlightChains in_flight;                 // One per queue, living as long as the device.
//   in_flight.Start(queue);                   // The queue started.
//   PendingChain pending = in_flight.Admit(head, std::move(chain.writable), length);
//   ...                                       // Moved to wherever the answer will come from.
//   pending.Complete(response);               // Writes it and returns the chain: at most once.
//   in_flight.Stop();                         // The queue stops: every chain still out goes back
//                                             // with nothing written; their handles go dead.
//
// The writable buffers of a chain live only here, in the in-flight entry, from Admit until the
// chain is returned; a PendingChain is a token for that entry. Returning the chain (Complete,
// Cancel, Stop) erases the entry, so a handle that outlives it, in a late reply, timeout or
// fence, finds nothing to write into. That is what makes a write into a buffer the driver owns
// again impossible, instead of something each caller must remember to check.
//
// A disabled queue (SET_VRING_ENABLE 0, vhost-user "started but disabled") is processed without
// side effects: answers that come meanwhile are parked, and written and returned when the queue
// is enabled again, or dropped when it stops.
//
// Device thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "virtio/guest_memory.h"
#include "virtio/span_list.h"
#include "virtio/split_virtqueue.h"

namespace vgpu::virtio {

class InFlightChains;

// The one way to answer a popped chain. Move-only; destroying an unanswered handle cancels it.
class PendingChain {
 public:
  PendingChain() = default;  // Answers nothing.
  PendingChain(PendingChain&& other) noexcept;
  PendingChain& operator=(PendingChain&& other) noexcept;
  PendingChain(const PendingChain&) = delete;
  PendingChain& operator=(const PendingChain&) = delete;
  ~PendingChain() { Cancel(); }

  // Writes `first` then `second` into the chain's writable buffers and returns the chain with
  // their length. A response that does not fit is not written at all and the chain goes back
  // with length 0 (virtio-gpu has no partial responses, §5.7.6.7). Returns the length written,
  // 0 also when the chain went back already.
  uint32_t Complete(std::span<const uint8_t> first, std::span<const uint8_t> second = {});
  // Returns the chain with nothing written.
  void Cancel();
  // Holds back the queue's later chains until this one goes back: commands answered in order
  // although this one waits for someone else (the VMM).
  void HoldQueueUntilReturned();

  // Whether the chain went back (or this handle never had one).
  bool returned() const;
  // Room for a response; 0 once returned.
  uint64_t writable_length() const;

 private:
  friend class InFlightChains;
  PendingChain(InFlightChains* owner, uint64_t token) : owner_(owner), token_(token) {}

  InFlightChains* owner_ = nullptr;
  uint64_t token_ = 0;
};

class InFlightChains {
 public:
  InFlightChains() = default;
  InFlightChains(const InFlightChains&) = delete;
  InFlightChains& operator=(const InFlightChains&) = delete;

  // Called (once per hold) when a chain that held the queue back goes back.
  void set_on_released(std::function<void()> on_released) { on_released_ = std::move(on_released); }

  // The queue whose chains come next: returned there from now on.
  void Start(UsedRing* queue, bool enabled);
  // Returns every chain still out with length 0 and nothing written (parked answers dropped);
  // their handles do nothing from now on. Notifies the driver if it wants to be.
  void Stop();
  // Enabled again: parked answers are written and their chains returned, in the order they came.
  void SetEnabled(bool enabled);

  // Takes a popped chain's writable part, which points into the queue's current memory.
  PendingChain Admit(uint16_t head, SpanList writable, uint64_t writable_length);
  // The queue's memory was replaced by a new table: `old` stays mapped while chains that point
  // into it are out, and is let go when none is. (The queue keeps its current memory alive, so
  // chains cost no reference count of their own.)
  void KeepMemory(std::shared_ptr<const GuestMemory> old);

  // While an answer is on its way from outside (the VMM), later chains wait.
  bool held() const { return holds_ > 0; }
  size_t size() const { return entries_.size(); }

  // Chains returned within a batch signal the driver once, at its end (a queue drained in one
  // turn of the event loop); outside any batch each return signals at once.
  class Batch {
   public:
    explicit Batch(InFlightChains& chains) : chains_(chains) { ++chains_.batch_depth_; }
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    InFlightChains& chains_;
  };

 private:
  friend class PendingChain;
  struct Entry {
    uint64_t token = 0;
    uint16_t head = 0;
    SpanList writable;
    uint64_t writable_length = 0;
    bool holds_queue = false;
    bool parked = false;
    std::vector<uint8_t> parked_response;
  };

  Entry* Find(uint64_t token);
  uint32_t Complete(uint64_t token, std::span<const uint8_t> first,
                    std::span<const uint8_t> second);
  void Cancel(uint64_t token);
  void Hold(uint64_t token);
  // Writes into the entry's buffers (the caller checked the length), pushes it used and erases it.
  void Return(std::vector<Entry>::iterator entry, uint32_t used_length);
  void Notify();

  UsedRing* queue_ = nullptr;
  bool enabled_ = true;
  // By token, in token order: nearly every chain is answered at once and erased from the end,
  // so the vector (its capacity kept) spares the hot path an allocation.
  std::vector<Entry> entries_;
  // Memories replaced while chains were out (KeepMemory); empty once no chain is.
  std::vector<std::shared_ptr<const GuestMemory>> kept_memories_;
  uint64_t next_token_ = 1;
  uint32_t holds_ = 0;
  uint32_t batch_depth_ = 0;
  bool notify_pending_ = false;
  std::function<void()> on_released_;
};

}  // namespace vgpu::virtio
