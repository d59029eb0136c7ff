// Skipping random initialisation when only shapes matter (`vardp train --dry-run` of a
// full-size config without its checkpoint builds VAR-d16..d30 just to count parameters): while
// a SkipInitScope is alive on this thread, Linear layers and trunc_normal_ leave new weights
// uninitialised, which makes building VAR-d16 several times faster.
#pragma once

namespace vardp::model {

class SkipInitScope {
 public:
  SkipInitScope();
  ~SkipInitScope();
  SkipInitScope(const SkipInitScope&) = delete;
  SkipInitScope& operator=(const SkipInitScope&) = delete;

 private:
  bool previous_;
};

bool init_skipped();

}  // namespace vardp::model
