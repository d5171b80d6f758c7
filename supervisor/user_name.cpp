#include "supervisor/user_name.h"

namespace mtw::supervisor {
namespace {

// ASCII only: std::isalnum would follow the process locale.
constexpr bool name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

bool addressable_user_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxUserNameLength) return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

bool valid_user_name(std::string_view name) noexcept {
  return addressable_user_name(name) && name[0] != '.' && name[0] != '-';
}

}  // namespace mtw::supervisor
