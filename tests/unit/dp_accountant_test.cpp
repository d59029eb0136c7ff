// The accountants against reference values computed with Opacus' own code
// (shared/fixtures/accountant_reference.json; its meta.conventions give every convention).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_paths.hpp"
#include "vardp/dp/accountant.hpp"
#include "vardp/dp/accountant_gdp.hpp"
#include "vardp/dp/calibration.hpp"
#include "vardp/dp/prv.hpp"
#include "vardp/dp/rdp.hpp"

namespace vardp::dp {
namespace {

using nlohmann::json;

const json& reference() {
  static const json j = [] {
    std::ifstream in(test::fixture("accountant_reference.json"));
    if (!in) return json();
    return json::parse(in);
  }();
  return j;
}

const json& cases(const char* key) {
  static const json empty = json::array();
  const json& r = reference();
  return r.is_object() && r.contains(key) ? r.at(key) : empty;
}

double rel_err(double got, double want) {
  return std::fabs(got - want) / std::max(std::fabs(want), 1e-300);
}

TEST(AccountantReference, FixtureIsPresent) {
  ASSERT_TRUE(reference().is_object()) << "cannot read " << test::fixture("accountant_reference.json");
  EXPECT_FALSE(cases("epsilon_cases").empty());
  EXPECT_FALSE(cases("noise_multiplier_cases").empty());
  EXPECT_FALSE(cases("rdp_curves_one_step").empty());
  EXPECT_FALSE(cases("prv_vs_microsoft_prv_accountant").empty());
}

TEST(AccountantReference, DefaultOrdersAreOpacusDefaultAlphas) {
  const auto want = reference().at("rdp_default_orders").get<std::vector<double>>();
  const auto& got = default_rdp_orders();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "order " << i;
}

TEST(AccountantReference, RdpCurvesOneStepPerOrder) {
  double worst = 0.0;
  for (const auto& c : cases("rdp_curves_one_step")) {
    const auto orders = c.at("orders").get<std::vector<double>>();
    const auto want = c.at("rdp").get<std::vector<double>>();
    const Segment s{c.at("q").get<double>(), c.at("noise_multiplier").get<double>(),
                    c.at("steps").get<int64_t>()};
    const auto got = rdp_subsampled_gaussian(s, orders);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double e = rel_err(got[i], want[i]);
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-6) << "q=" << s.sample_rate << " sigma=" << s.noise_multiplier
                         << " order=" << orders[i] << ": " << got[i] << " vs " << want[i];
    }
  }
  RecordProperty("max_rel_err", std::to_string(worst));
  std::cout << "[ rdp curves ] max relative error " << worst << "\n";
}

TEST(AccountantReference, RdpEpsilonCases) {
  double worst = 0.0;
  for (const auto& c : cases("epsilon_cases")) {
    const Segment s{c.at("q").get<double>(), c.at("noise_multiplier").get<double>(),
                    c.at("steps").get<int64_t>()};
    const RdpEpsilon e = rdp_epsilon({s}, c.at("delta").get<double>());
    const double err = rel_err(e.epsilon, c.at("eps_rdp").get<double>());
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-6) << c.at("id");
    EXPECT_EQ(e.best_order, c.at("rdp_best_alpha").get<double>()) << c.at("id");
    EXPECT_EQ(e.best_order_at_edge, c.at("rdp_best_alpha_at_boundary").get<bool>()) << c.at("id");
  }
  std::cout << "[ rdp epsilon ] max relative error " << worst << "\n";
}

TEST(AccountantReference, PrvEpsilonCasesWithinOpacusBounds) {
  double worst = 0.0;
  for (const auto& c : cases("epsilon_cases")) {
    const Segment s{c.at("q").get<double>(), c.at("noise_multiplier").get<double>(),
                    c.at("steps").get<int64_t>()};
    const PrvEpsilon e = prv_epsilon({s}, c.at("delta").get<double>());
    const double ref_upper = c.at("eps_prv").get<double>();
    const double ref_lower = c.at("prv_eps_lower").get<double>();
    const double ref_estimate = c.at("prv_eps_estimate").get<double>();
    // Acceptance: inside Opacus' reported bounds ...
    EXPECT_GE(e.upper, ref_lower) << c.at("id");
    EXPECT_LE(e.upper, ref_upper + 1e-5) << c.at("id");
    // ... and, as a port, close to Opacus' numbers (their quadrature of the PRV mean is accurate
    // to ~1e-10, multiplied by the number of steps).
    EXPECT_NEAR(e.upper, ref_upper, 1e-5) << c.at("id");
    EXPECT_NEAR(e.lower, ref_lower, 1e-5) << c.at("id");
    EXPECT_NEAR(e.estimate, ref_estimate, 1e-5) << c.at("id");
    EXPECT_EQ(e.domain_size, c.at("prv_domain_size").get<int64_t>()) << c.at("id");
    EXPECT_LE(e.lower, e.estimate);
    EXPECT_LE(e.estimate, e.upper);
    worst = std::max(worst, std::fabs(e.upper - ref_upper));
  }
  std::cout << "[ prv epsilon ] max |upper - opacus| " << worst << "\n";
}

TEST(AccountantReference, PrvMatchesMicrosoftPrvAccountantValues) {
  for (const auto& c : cases("prv_vs_microsoft_prv_accountant")) {
    const Segment s{c.at("q").get<double>(), c.at("noise_multiplier").get<double>(),
                    c.at("steps").get<int64_t>()};
    const PrvEpsilon e = prv_epsilon({s}, c.at("delta").get<double>());
    EXPECT_NEAR(e.upper, c.at("eps_opacus_prv").get<double>(), 1e-6) << c.dump();
    EXPECT_NEAR(e.upper, c.at("eps_msr_prv_accountant").get<double>(), 1e-6) << c.dump();
  }
}

TEST(AccountantReference, GdpCltCases) {
  for (const auto& c : cases("epsilon_cases")) {
    const Segment s{c.at("q").get<double>(), c.at("noise_multiplier").get<double>(),
                    c.at("steps").get<int64_t>()};
    const double got = gdp_epsilon({s}, c.at("delta").get<double>());
    EXPECT_LE(rel_err(got, c.at("eps_gdp_poisson_clt").get<double>()), 1e-9) << c.at("id");
  }
}

TEST(AccountantReference, StepsFromEpochs) {
  EXPECT_EQ(steps_from_epochs(90, 0.04), 2250);  // 90 // 0.04 would give 2249
  for (const auto& c : cases("noise_multiplier_cases")) {
    if (c.at("epochs").is_null()) continue;
    EXPECT_EQ(steps_from_epochs(c.at("epochs").get<double>(), c.at("sample_rate").get<double>()),
              c.at("steps").get<int64_t>())
        << c.at("id");
  }
  EXPECT_THROW(steps_from_epochs(0, 0.1), Error);
  EXPECT_THROW(steps_from_epochs(10, 0.0), Error);
}

// One test per calibration case: the PRV searches take seconds to a minute each.
std::vector<std::string> calibration_ids() {
  std::vector<std::string> ids;
  for (const auto& c : cases("noise_multiplier_cases")) ids.push_back(c.at("id").get<std::string>());
  if (ids.empty()) ids.push_back("fixture_missing");
  return ids;
}

class CalibrationReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CalibrationReference, SigmaMatchesOpacusSearch) {
  const json* found = nullptr;
  for (const auto& c : cases("noise_multiplier_cases")) {
    if (c.at("id").get<std::string>() == GetParam()) found = &c;
  }
  ASSERT_NE(found, nullptr) << "no calibration case " << GetParam();
  const json& c = *found;
  CalibrationRequest req;
  req.target_epsilon = c.at("target_epsilon").get<double>();
  req.delta = c.at("target_delta").get<double>();
  req.sample_rate = c.at("sample_rate").get<double>();
  req.steps = c.at("epochs").is_null()
                  ? c.at("steps").get<int64_t>()
                  : steps_from_epochs(c.at("epochs").get<double>(), req.sample_rate);
  req.accountant = parse_accountant(c.at("accountant").get<std::string>());
  req.epsilon_tolerance = c.at("epsilon_tolerance").get<double>();
  const CalibrationResult r = calibrate_noise_multiplier(req);
  const double sigma = c.at("sigma").get<double>();
  // The same search over the same epsilon function lands on the same dyadic sigma.
  EXPECT_NEAR(r.noise_multiplier, sigma, 1e-9);
  EXPECT_NEAR(r.noise_multiplier, sigma, 1e-2);  // the acceptance tolerance
  EXPECT_LE(r.report.epsilon, req.target_epsilon);
  EXPECT_LE(req.target_epsilon - r.report.epsilon, req.epsilon_tolerance);
  EXPECT_NEAR(r.report.epsilon, c.at("eps_at_sigma").get<double>(),
              req.accountant == AccountantKind::prv ? 1e-5 : 1e-8);
  EXPECT_EQ(r.prv_breakdowns, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixture, CalibrationReference, ::testing::ValuesIn(calibration_ids()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (auto& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace vardp::dp
