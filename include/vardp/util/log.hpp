// Line-buffered, timestamped logging to stdout. Rank 0 logs by default; batch logs are files,
// so every line is flushed whole and no carriage returns are used.
#pragma once
#include <string>

#include "vardp/util/error.hpp"

namespace vardp::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// Called once the rank is known. all_ranks: every rank logs, lines prefixed "[rank N]".
void configure(int rank, bool all_ranks, Level min_level = Level::info);
void set_level(Level level);
Level level_from_string(const std::string& name);

void write(Level level, const std::string& line);
// Logs from any rank regardless of the rank filter (errors, per-rank diagnostics).
void write_any_rank(Level level, const std::string& line);

template <class... Args>
void debug(Args&&... args) { write(Level::debug, str(std::forward<Args>(args)...)); }
template <class... Args>
void info(Args&&... args) { write(Level::info, str(std::forward<Args>(args)...)); }
template <class... Args>
void warn(Args&&... args) { write(Level::warn, str(std::forward<Args>(args)...)); }
template <class... Args>
void error(Args&&... args) { write_any_rank(Level::error, str(std::forward<Args>(args)...)); }

// ISO-8601 UTC timestamp with seconds, e.g. 2026-11-27T12:00:00Z.
std::string utc_now_iso();

}  // namespace vardp::log
