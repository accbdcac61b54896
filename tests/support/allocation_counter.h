// AllocationCounter: counts calls of the global operator new in this process, for tests that
// prove a path allocates nothing. Link a test executable with allocation_counter.cc (it replaces
// the global operator new/delete) and give it nothing else to test: every new in it is counted.
//
//   AllocationCounter counter;
//   RunTheHotPath();
//   EXPECT_EQ(counter.count(), 0u);
#pragma once

#include <cstddef>

namespace vgpu::test {

// operator new calls since the process started.
size_t AllocationsSoFar();

class AllocationCounter {
 public:
  AllocationCounter() : start_(AllocationsSoFar()) {}
  size_t count() const { return AllocationsSoFar() - start_; }

 private:
  size_t start_;
};

}  // namespace vgpu::test
