// Exceptions with context. The library throws; only src/app/main.cpp decides how a job ends.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace vardp {

// Base error. `context` names the file, key, path or rank the message is about.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string context = {})
      : std::runtime_error(context.empty() ? message : context + ": " + message),
        message_(message), context_(std::move(context)) {}
  const std::string& message() const { return message_; }
  const std::string& context() const { return context_; }

 private:
  std::string message_;
  std::string context_;
};

// A usage error (bad option, bad config): the CLI exits with code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// An error that every rank is known to have seen (it was agreed on through a collective, or it
// comes from input that every rank reads identically). main() ends the job without MPI_Abort.
class CollectiveError : public Error {
 public:
  explicit CollectiveError(const std::string& message, std::string context = {}, bool usage = false)
      : Error(message, std::move(context)), usage_(usage) {}
  bool usage() const { return usage_; }

 private:
  bool usage_;
};

// String concatenation through an ostream: str("step ", 3, " of ", 10).
template <class... Args>
std::string str(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

}  // namespace vardp

#define VARDP_CHECK(cond, ...)                                                      \
  do {                                                                              \
    if (!(cond)) throw ::vardp::Error(::vardp::str(__VA_ARGS__));                   \
  } while (0)
