// Connection admission (admission.h).
#include "supervisor/admission.h"

#include <algorithm>

namespace mtw::supervisor {

BudgetView budget_view(std::uint64_t global_budget, std::uint64_t used, std::uint64_t demanding,
                       std::uint64_t lanes) {
  BudgetView b;
  if (global_budget == 0) return b;
  b.used = used;
  b.equal = global_budget / std::max<std::uint64_t>(demanding, 1);
  b.lanes = static_cast<std::size_t>(std::max<std::uint64_t>(lanes, 1));
  return b;
}

void BudgetTally::add(const ConnLoad& l, int sign) {
  if (sign > 0) {
    used_ += l.taken;
    demanding_ += l.demanding ? 1 : 0;
    lanes_ += l.lane_holder ? 1 : 0;
  } else {
    used_ -= l.taken;
    demanding_ -= l.demanding ? 1 : 0;
    lanes_ -= l.lane_holder ? 1 : 0;
  }
}

void BudgetTally::set(UserId user, ConnLoad load) {
  auto [it, fresh] = loads_.try_emplace(user, load);
  if (!fresh) {
    if (it->second == load) return;
    add(it->second, -1);
    it->second = load;
  }
  add(load, +1);
}

void BudgetTally::erase(UserId user) {
  auto it = loads_.find(user);
  if (it == loads_.end()) return;
  add(it->second, -1);
  loads_.erase(it);
}

BudgetView BudgetTally::view(std::uint64_t global_budget) const {
  return budget_view(global_budget, used_, demanding_, lanes_);
}

bool admit(const AdmitInput& u, const BudgetView& b, std::uint64_t global_budget) noexcept {
  if (u.max_connections != 0 && u.taken >= u.max_connections) return false;
  if (global_budget == 0) return true;
  if (b.used >= global_budget) return false;
  return u.taken < std::max<std::uint64_t>(u.allowance, b.equal);
}

}  // namespace mtw::supervisor
