#include "vardp/util/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace vardp::log {
namespace {
int g_rank = 0;
bool g_all_ranks = false;
Level g_min = Level::info;
std::mutex g_mutex;

const char* level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

void emit(Level level, const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string prefix = utc_now_iso() + " ";
  if (g_all_ranks || g_rank != 0 || level == Level::error) prefix += "[rank " + std::to_string(g_rank) + "] ";
  if (level != Level::info) prefix += std::string(level_name(level)) + ": ";
  std::string out = prefix + line + "\n";
  std::FILE* f = level == Level::error ? stderr : stdout;
  std::fwrite(out.data(), 1, out.size(), f);
  std::fflush(f);
}
}  // namespace

void configure(int rank, bool all_ranks, Level min_level) {
  g_rank = rank;
  g_all_ranks = all_ranks;
  g_min = min_level;
}

void set_level(Level level) { g_min = level; }

Level level_from_string(const std::string& name) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn") return Level::warn;
  if (name == "error") return Level::error;
  throw UsageError("unknown log level '" + name + "' (debug, info, warn, error)");
}

void write(Level level, const std::string& line) {
  if (level < g_min) return;
  if (!g_all_ranks && g_rank != 0 && level < Level::warn) return;
  emit(level, line);
}

void write_any_rank(Level level, const std::string& line) {
  if (level < g_min) return;
  emit(level, line);
}

std::string utc_now_iso() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace vardp::log
