// Asserting that a call fails with a given message, not just with any exception.
#pragma once
#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <string>

namespace vardp::test {

// Fails the test unless f() throws a std::exception whose what() contains `needle`.
inline void expect_error_containing(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace vardp::test
