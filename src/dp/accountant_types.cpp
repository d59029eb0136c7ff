#include "vardp/dp/accountant_types.hpp"

#include <cmath>
#include <limits>

#include "vardp/util/error.hpp"

namespace vardp::dp {

AccountantKind parse_accountant(const std::string& name) {
  if (name == "rdp") return AccountantKind::rdp;
  if (name == "prv") return AccountantKind::prv;
  if (name == "gdp") return AccountantKind::gdp;
  throw UsageError(str("unknown accountant '", name, "' (expected rdp, prv or gdp)"), "accountant");
}

std::string to_string(AccountantKind kind) {
  switch (kind) {
    case AccountantKind::rdp: return "rdp";
    case AccountantKind::prv: return "prv";
    case AccountantKind::gdp: return "gdp";
  }
  return "unknown";
}

bool is_guarantee(AccountantKind kind) { return kind != AccountantKind::gdp; }

int64_t steps_from_epochs(double epochs, double sample_rate) {
  if (!(std::isfinite(epochs) && epochs > 0.0)) {
    throw Error(str("epochs must be a positive number, got ", epochs), "steps_from_epochs");
  }
  if (!(std::isfinite(sample_rate) && sample_rate > 0.0 && sample_rate <= 1.0)) {
    throw Error(str("sample rate must be in (0, 1], got ", sample_rate), "steps_from_epochs");
  }
  // IEEE division is correctly rounded, exactly like Python's float division; the cast then
  // truncates toward zero like Python's int().
  const double quotient = epochs / sample_rate;
  if (quotient >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
    throw Error(str("epochs / sample_rate = ", quotient, " steps overflows"), "steps_from_epochs");
  }
  return static_cast<int64_t>(quotient);
}

void validate_segment(const Segment& s, const std::string& context) {
  if (!(s.sample_rate >= 0.0 && s.sample_rate <= 1.0)) {
    throw Error(str("sample rate must be in [0, 1], got ", s.sample_rate), context);
  }
  if (!(s.noise_multiplier >= 0.0 && std::isfinite(s.noise_multiplier))) {
    throw Error(str("noise multiplier must be finite and >= 0, got ", s.noise_multiplier), context);
  }
  if (s.steps < 0) throw Error(str("steps must be >= 0, got ", s.steps), context);
}

void validate_delta(double delta, const std::string& context) {
  if (!(delta > 0.0 && delta < 1.0)) {
    throw Error(str("delta must be in (0, 1), got ", delta), context);
  }
}

}  // namespace vardp::dp
