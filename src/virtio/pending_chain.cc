#include "virtio/pending_chain.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vgpu::virtio {

PendingChain::PendingChain(PendingChain&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), token_(std::exchange(other.token_, 0)) {}

PendingChain& PendingChain::operator=(PendingChain&& other) noexcept {
  if (this != &other) {
    Cancel();
    owner_ = std::exchange(other.owner_, nullptr);
    token_ = std::exchange(other.token_, 0);
  }
  return *this;
}

uint32_t PendingChain::Complete(std::span<const uint8_t> first, std::span<const uint8_t> second) {
  InFlightChains* owner = std::exchange(owner_, nullptr);
  if (owner == nullptr) return 0;
  return owner->Complete(token_, first, second);
}

void PendingChain::Cancel() {
  InFlightChains* owner = std::exchange(owner_, nullptr);
  if (owner != nullptr) owner->Cancel(token_);
}

void PendingChain::HoldQueueUntilReturned() {
  if (owner_ != nullptr) owner_->Hold(token_);
}

bool PendingChain::returned() const { return owner_ == nullptr || owner_->Find(token_) == nullptr; }

uint64_t PendingChain::writable_length() const {
  if (owner_ == nullptr) return 0;
  const InFlightChains::Entry* entry = owner_->Find(token_);
  return entry != nullptr ? entry->writable_length : 0;
}

InFlightChains::Batch::~Batch() {
  if (--chains_.batch_depth_ == 0 && chains_.notify_pending_) {
    chains_.notify_pending_ = false;
    if (chains_.queue_ != nullptr) chains_.queue_->NotifyIfNeeded();
  }
}

void InFlightChains::Start(UsedRing* queue, bool enabled) {
  Stop();  // A queue restarted without a stop first: nothing of the old one stays out.
  queue_ = queue;
  enabled_ = enabled;
}

void InFlightChains::Stop() {
  if (queue_ != nullptr) {
    for (const Entry& entry : entries_) queue_->PushUsed(entry.head, 0);
    if (!entries_.empty()) queue_->NotifyIfNeeded();
  }
  entries_.clear();
  kept_memories_.clear();
  holds_ = 0;
  notify_pending_ = false;
  queue_ = nullptr;
}

void InFlightChains::SetEnabled(bool enabled) {
  enabled_ = enabled;
  if (!enabled) return;
  Batch batch(*this);
  // In token order; Return erases, so look the next one up afresh each time.
  for (size_t index = 0; index < entries_.size();) {
    Entry& entry = entries_[index];
    if (!entry.parked) {
      ++index;
      continue;
    }
    std::vector<uint8_t> response = std::move(entry.parked_response);
    uint64_t written = 0;
    for (std::span<uint8_t> span : entry.writable) {
      if (written == response.size()) break;
      const size_t length = std::min<uint64_t>(span.size(), response.size() - written);
      std::memcpy(span.data(), response.data() + written, length);
      written += length;
    }
    Return(entries_.begin() + static_cast<ptrdiff_t>(index), static_cast<uint32_t>(written));
  }
}

PendingChain InFlightChains::Admit(uint16_t head, SpanList writable, uint64_t writable_length) {
  const uint64_t token = next_token_++;
  entries_.push_back(Entry{.token = token,
                           .head = head,
                           .writable = std::move(writable),
                           .writable_length = writable_length});
  return PendingChain(this, token);
}

void InFlightChains::KeepMemory(std::shared_ptr<const GuestMemory> old) {
  if (!entries_.empty()) kept_memories_.push_back(std::move(old));
}

InFlightChains::Entry* InFlightChains::Find(uint64_t token) {
  // Tokens only grow, so the vector is sorted; the one asked for is nearly always the last.
  if (!entries_.empty() && entries_.back().token == token) return &entries_.back();
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), token,
                       [](const Entry& entry, uint64_t value) { return entry.token < value; });
  return it != entries_.end() && it->token == token ? &*it : nullptr;
}

uint32_t InFlightChains::Complete(uint64_t token, std::span<const uint8_t> first,
                                  std::span<const uint8_t> second) {
  Entry* entry = Find(token);
  if (entry == nullptr) return 0;  // Returned already: the queue stopped or the device reset.
  const auto position = entries_.begin() + (entry - entries_.data());
  const uint64_t length = first.size() + second.size();
  if (length > entry->writable_length) {
    Return(position, 0);
    return 0;
  }
  if (!enabled_) {
    entry->parked = true;
    entry->parked_response.assign(first.begin(), first.end());
    entry->parked_response.insert(entry->parked_response.end(), second.begin(), second.end());
    return static_cast<uint32_t>(length);
  }
  size_t span_index = 0;
  size_t offset = 0;
  for (std::span<const uint8_t> part : {first, second}) {
    while (!part.empty()) {
      std::span<uint8_t> span = entry->writable[span_index];
      const size_t length_here = std::min(span.size() - offset, part.size());
      std::memcpy(span.data() + offset, part.data(), length_here);
      part = part.subspan(length_here);
      offset += length_here;
      if (offset == span.size()) {
        ++span_index;
        offset = 0;
      }
    }
  }
  Return(position, static_cast<uint32_t>(length));
  return static_cast<uint32_t>(length);
}

void InFlightChains::Cancel(uint64_t token) {
  Entry* entry = Find(token);
  if (entry == nullptr) return;
  Return(entries_.begin() + (entry - entries_.data()), 0);
}

void InFlightChains::Hold(uint64_t token) {
  Entry* entry = Find(token);
  if (entry == nullptr || entry->holds_queue) return;
  entry->holds_queue = true;
  ++holds_;
}

void InFlightChains::Return(std::vector<Entry>::iterator entry, uint32_t used_length) {
  const bool released_hold = entry->holds_queue;
  queue_->PushUsed(entry->head, used_length);
  entries_.erase(entry);
  if (entries_.empty()) kept_memories_.clear();
  Notify();
  if (released_hold && --holds_ == 0 && on_released_) on_released_();
}

void InFlightChains::Notify() {
  if (batch_depth_ > 0) {
    notify_pending_ = true;
    return;
  }
  queue_->NotifyIfNeeded();
}

}  // namespace vgpu::virtio
