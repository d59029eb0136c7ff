// vardp accountant: epsilon of T DP-SGD steps (Poisson-subsampled Gaussian), or the noise
// multiplier for a target epsilon, under the RDP, PRV or (approximate) GDP accountant.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/dp/accountant.hpp"
#include "vardp/dp/calibration.hpp"
#include "vardp/dp/rdp.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/exit_codes.hpp"

namespace vardp::app {
namespace {

constexpr const char* kAccountantUsage =
    "vardp accountant --sample-rate Q (--noise-multiplier S | --target-epsilon E) "
    "(--steps T | --epochs N) --delta D [--accountant rdp|prv|gdp] [--json]\n\n"
    "Prints epsilon spent by T steps of DP-SGD (Poisson sampling rate Q, noise multiplier S), or\n"
    "a noise multiplier whose epsilon is <= E and within --epsilon-tolerance of E (Opacus'\n"
    "bracketing + bisection).\n"
    "rdp: Renyi DP over Opacus' default orders (warns when the best order is at the list edge);\n"
    "prv: PRV accountant, prints the upper bound (estimate + eps-error); when PRV cannot give a\n"
    "bound it says so and exits 1; gdp: CLT approximation, not a guarantee.";

std::string fmt(double v) {
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

// JSON numbers must be finite; +inf (no noise) becomes null with "epsilon_infinite": true.
nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

void warn_rdp_edge(const dp::EpsilonReport& r) {
  if (r.accountant != dp::AccountantKind::rdp || !r.rdp_best_order_at_edge) return;
  const auto& orders = dp::default_rdp_orders();
  const bool largest = r.rdp_best_order == orders.back();
  std::cerr << "warning: the optimal RDP order (" << fmt(r.rdp_best_order) << ") is the "
            << (largest ? "largest" : "smallest")
            << " of the order list: epsilon is limited by the order grid (still a valid but "
               "loose bound); the PRV accountant is tighter here\n";
}

void describe_report(nlohmann::json& j, const dp::EpsilonReport& r) {
  j["guarantee"] = r.guarantee;
  switch (r.accountant) {
    case dp::AccountantKind::rdp:
      j["rdp_best_order"] = number_or_null(r.rdp_best_order);
      j["rdp_best_order_at_edge"] = r.rdp_best_order_at_edge;
      break;
    case dp::AccountantKind::prv:
      j["epsilon_lower"] = number_or_null(r.prv_lower);
      j["epsilon_estimate"] = number_or_null(r.prv_estimate);
      j["prv_domain_size"] = r.prv_domain_size;
      break;
    case dp::AccountantKind::gdp:
      break;
  }
}

std::string report_note(const dp::EpsilonReport& r) {
  switch (r.accountant) {
    case dp::AccountantKind::rdp:
      return "rdp, best order " + fmt(r.rdp_best_order);
    case dp::AccountantKind::prv:
      return "prv upper bound; estimate " + fmt(r.prv_estimate) + ", lower bound " + fmt(r.prv_lower);
    case dp::AccountantKind::gdp:
      return "gdp CLT approximation, NOT a guarantee";
  }
  return "";
}

int run_accountant(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("sample-rate", po::value<double>()->value_name("Q"),
       "Poisson sampling rate q in (0, 1] (required)")
      ("noise-multiplier", po::value<double>()->value_name("S"),
       "noise multiplier sigma: print the epsilon it spends (give this or --target-epsilon)")
      ("target-epsilon", po::value<double>()->value_name("E"),
       "print the noise multiplier reaching this epsilon (give this or --noise-multiplier)")
      ("steps", po::value<int64_t>()->value_name("T"), "number of DP-SGD steps (give this or --epochs)")
      ("epochs", po::value<double>()->value_name("N"),
       "number of epochs: steps = int(N / Q) in double precision, as Opacus (or --steps)")
      ("delta", po::value<double>()->value_name("D"), "target delta in (0, 1) (required)")
      ("accountant", po::value<std::string>()->default_value("rdp")->value_name("NAME"),
       "rdp | prv | gdp (gdp: CLT approximation, not a guarantee)")
      ("epsilon-tolerance", po::value<double>()->default_value(0.01, "0.01")->value_name("TOL"),
       "calibration stops when target - epsilon(sigma) <= TOL")
      ("eps-error", po::value<double>()->default_value(0.01, "0.01")->value_name("E"),
       "PRV: epsilon discretisation error (upper bound = estimate + E)")
      ("delta-error", po::value<double>()->value_name("D"),
       "PRV: delta error (default: delta / 1000)")
      ("prv-max-domain", po::value<int64_t>()->default_value(int64_t{1} << 24)->value_name("N"),
       "PRV: refuse discretisations with more than N points")
      ("json", po::bool_switch(), "print one JSON object (epsilon, noise_multiplier, sample_rate, "
                                  "steps, delta, accountant, ...) instead of text");
  po::variables_map vm;
  if (!parse_command_line(args, kAccountantUsage, options, vm)) return kExitSuccess;

  const std::string ctx = "vardp accountant";
  auto need = [&](const char* name) {
    if (!vm.count(name)) throw UsageError(str("--", name, " is required (see --help)"), ctx);
  };
  need("sample-rate");
  need("delta");
  if (vm.count("noise-multiplier") == vm.count("target-epsilon")) {
    throw UsageError("give exactly one of --noise-multiplier and --target-epsilon", ctx);
  }
  if (vm.count("steps") == vm.count("epochs")) {
    throw UsageError("give exactly one of --steps and --epochs", ctx);
  }
  const double q = vm["sample-rate"].as<double>();
  const double delta = vm["delta"].as<double>();
  if (!(q > 0.0 && q <= 1.0)) throw UsageError(str("--sample-rate must be in (0, 1], got ", q), ctx);
  if (!(delta > 0.0 && delta < 1.0)) throw UsageError(str("--delta must be in (0, 1), got ", delta), ctx);
  const dp::AccountantKind kind = dp::parse_accountant(vm["accountant"].as<std::string>());

  std::optional<double> epochs;
  int64_t steps = 0;
  if (vm.count("epochs")) {
    epochs = vm["epochs"].as<double>();
    if (!(*epochs > 0.0)) throw UsageError(str("--epochs must be > 0, got ", *epochs), ctx);
    steps = dp::steps_from_epochs(*epochs, q);
  } else {
    steps = vm["steps"].as<int64_t>();
    if (steps < 0) throw UsageError(str("--steps must be >= 0, got ", steps), ctx);
  }

  dp::AccountantOptions acc;
  acc.prv.eps_error = vm["eps-error"].as<double>();
  if (!(acc.prv.eps_error > 0.0)) throw UsageError("--eps-error must be > 0", ctx);
  if (vm.count("delta-error")) {
    acc.prv.delta_error = vm["delta-error"].as<double>();
    if (!(acc.prv.delta_error > 0.0 && acc.prv.delta_error < delta)) {
      throw UsageError("--delta-error must be in (0, delta)", ctx);
    }
  }
  acc.prv.max_domain_size = vm["prv-max-domain"].as<int64_t>();
  const bool json = vm["json"].as<bool>();

  nlohmann::json out;
  out["sample_rate"] = q;
  out["steps"] = steps;
  out["delta"] = delta;
  out["accountant"] = dp::to_string(kind);
  if (epochs) out["epochs"] = *epochs;
  if (kind == dp::AccountantKind::prv) {
    out["eps_error"] = acc.prv.eps_error;
    out["delta_error"] = acc.prv.delta_error > 0.0 ? acc.prv.delta_error : delta / 1000.0;
  }
  if (kind == dp::AccountantKind::gdp) {
    std::cerr << "warning: the gdp accountant is a central-limit approximation that can "
                 "UNDER-estimate epsilon; it is not a privacy guarantee\n";
  }

  if (vm.count("noise-multiplier")) {
    const double sigma = vm["noise-multiplier"].as<double>();
    if (!(sigma >= 0.0 && std::isfinite(sigma))) {
      throw UsageError(str("--noise-multiplier must be finite and >= 0, got ", sigma), ctx);
    }
    out["mode"] = "epsilon";
    out["noise_multiplier"] = sigma;
    dp::EpsilonReport r;
    try {
      r = dp::compute_epsilon(q, sigma, steps, delta, kind, acc);
    } catch (const dp::PrvBreakdownError& e) {
      std::cerr << "vardp accountant: the PRV accountant gives no bound for q=" << fmt(q)
                << ", sigma=" << fmt(sigma) << ", steps=" << steps << ", delta=" << fmt(delta)
                << " (" << dp::to_string(e.reason()) << "): " << e.message()
                << "\nuse --accountant rdp for a valid (looser) bound\n";
      if (json) {
        out["epsilon"] = nullptr;
        out["bound"] = false;
        out["prv_breakdown"] = dp::to_string(e.reason());
        out["reason"] = e.message();
        std::cout << out.dump(2) << std::endl;
      }
      return kExitError;
    }
    warn_rdp_edge(r);
    out["bound"] = true;
    out["epsilon"] = number_or_null(r.epsilon);
    if (!std::isfinite(r.epsilon)) out["epsilon_infinite"] = true;
    describe_report(out, r);
    if (json) {
      std::cout << out.dump(2) << std::endl;
    } else {
      std::cout << "epsilon = " << fmt(r.epsilon) << "  (" << report_note(r) << "; delta = "
                << fmt(delta) << ", q = " << fmt(q) << ", sigma = " << fmt(sigma)
                << ", steps = " << steps << ")\n";
    }
    return kExitSuccess;
  }

  dp::CalibrationRequest req;
  req.target_epsilon = vm["target-epsilon"].as<double>();
  req.delta = delta;
  req.sample_rate = q;
  req.steps = steps;
  req.accountant = kind;
  req.epsilon_tolerance = vm["epsilon-tolerance"].as<double>();
  req.options = acc;
  if (!(req.target_epsilon > 0.0)) throw UsageError("--target-epsilon must be > 0", ctx);
  if (steps < 1) throw UsageError("calibration needs at least one step", ctx);
  const dp::CalibrationResult res = dp::calibrate_noise_multiplier(req);
  if (res.prv_breakdowns > 0) {
    std::cerr << "note: the PRV accountant gave no bound at " << res.prv_breakdowns
              << " probed noise multiplier(s); they were treated as above the target\n";
  }
  warn_rdp_edge(res.report);
  out["mode"] = "calibrate";
  out["target_epsilon"] = req.target_epsilon;
  out["epsilon_tolerance"] = req.epsilon_tolerance;
  out["noise_multiplier"] = res.noise_multiplier;
  out["epsilon"] = number_or_null(res.report.epsilon);
  out["bound"] = true;
  out["evaluations"] = res.evaluations;
  out["prv_breakdowns"] = res.prv_breakdowns;
  describe_report(out, res.report);
  if (json) {
    std::cout << out.dump(2) << std::endl;
  } else {
    std::cout << "noise_multiplier = " << fmt(res.noise_multiplier) << "  (epsilon "
              << fmt(res.report.epsilon) << " <= target " << fmt(req.target_epsilon) << "; "
              << report_note(res.report) << "; delta = " << fmt(delta) << ", q = " << fmt(q)
              << ", steps = " << steps << ")\n";
  }
  return kExitSuccess;
}

}  // namespace

VARDP_COMMAND("accountant", "privacy accounting: epsilon of DP-SGD, or sigma for a target epsilon",
              run_accountant);

}  // namespace vardp::app
