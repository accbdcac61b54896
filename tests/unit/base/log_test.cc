#include "base/log.h"

#include <gtest/gtest.h>

namespace vgpu {
namespace {

TEST(Log, ParsesEveryLevelName) {
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("info"), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("trace"), LogLevel::kTrace);
  EXPECT_FALSE(ParseLogLevel("verbose"));
}

TEST(Log, RateLimitSuppressesAfterTheBurst) {
  SetLogLevel(LogLevel::kError);  // The messages below are errors and get printed; keep it short.
  RateLimitedLog limited(2, std::chrono::hours(1));
  for (int i = 0; i < 10; ++i) limited.Log(LogLevel::kError, "rate limit test %d", i);
  EXPECT_EQ(limited.suppressed_total(), 8u);
  SetLogLevel(LogLevel::kInfo);
}

}  // namespace
}  // namespace vgpu
