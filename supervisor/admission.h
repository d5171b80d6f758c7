// Connection admission against the per-user cap and the global budget
// ([connections] global_budget). Pure: a budget view (what every user holds
// of the budget, as running totals) and the admit rule over values, so a
// decision costs O(1) per connection however many users there are.
//
// BudgetTally keeps each user's last contribution and the totals over them;
// its owner (the supervisor's loop) calls set() whenever a user's load may
// have changed and erase() when the user goes. Not thread-safe: one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "supervisor/store.h"

namespace mtw::supervisor {

// What one user holds of the global budget.
struct ConnLoad {
  std::uint64_t taken = 0;   // open + in-flight connections + lane credit not yet used
  bool demanding = false;    // has open, in-flight or held connections
  bool lane_holder = false;  // a running worker: may hold a direct lane
  friend bool operator==(const ConnLoad&, const ConnLoad&) = default;
};

// What the global budget leaves, over all users.
struct BudgetView {
  std::uint64_t used = 0;   // all users' taken
  std::uint64_t equal = 0;  // the budget split evenly among demanding users (0 without a budget)
  std::size_t lanes = 1;    // users that may hold a lane (at least 1)
  friend bool operator==(const BudgetView&, const BudgetView&) = default;
};

// The view from totals: `demanding` and `lanes` count users.
[[nodiscard]] BudgetView budget_view(std::uint64_t global_budget, std::uint64_t used,
                                     std::uint64_t demanding, std::uint64_t lanes);

class BudgetTally {
 public:
  // Replaces the user's contribution.
  void set(UserId user, ConnLoad load);
  void erase(UserId user);
  [[nodiscard]] BudgetView view(std::uint64_t global_budget) const;
  std::uint64_t used() const noexcept { return used_; }

 private:
  void add(const ConnLoad& l, int sign);
  std::unordered_map<UserId, ConnLoad> loads_;
  std::uint64_t used_ = 0, demanding_ = 0, lanes_ = 0;
};

struct AdmitInput {
  std::uint64_t taken = 0;            // this user's ConnLoad::taken
  std::uint32_t max_connections = 0;  // per-user cap; 0 = none
  std::uint32_t allowance = 0;        // fair-share allowance (fair_share, policy.h)
};

// Whether one more connection of this user may go to its (ready) worker
// now: under its cap and, with a global budget, the budget not used up and
// the user under max(its fair allowance, an equal share), so light users
// always get in.
[[nodiscard]] bool admit(const AdmitInput& user, const BudgetView& budget,
                         std::uint64_t global_budget) noexcept;

}  // namespace mtw::supervisor
