#include "netns/names.h"

#include <algorithm>

namespace mtw::netns {
namespace {

bool is_id_char(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); }

bool is_prefix_char(char c) noexcept { return is_id_char(c) || c == '-' || c == '_'; }

}  // namespace

std::string short_id(std::uint64_t n) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  do {
    out.push_back(kDigits[n % 36]);
    n /= 36;
  } while (n != 0);
  std::reverse(out.begin(), out.end());
  return out;
}

bool valid_ifname(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxIfnameLen || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || c == '\0' || c == ' ' || c == '\t' || c == '\n';
  });
}

base::Result<CellNames> make_names(std::string_view prefix, std::string_view id,
                                   std::string_view cell_if) {
  if (prefix.empty() || !std::all_of(prefix.begin(), prefix.end(), is_prefix_char)) {
    return base::fail(base::Errc::kBadInput,
                      "cell prefix must be [0-9a-z_-]+ prefix=" + std::string(prefix));
  }
  if (id.empty() || !std::all_of(id.begin(), id.end(), is_id_char)) {
    return base::fail(base::Errc::kBadInput, "cell id must be [0-9a-z]+ id=" + std::string(id));
  }
  std::string name = std::string(prefix) + std::string(id);
  if (name.size() > kMaxIfnameLen) {
    return base::fail(base::Errc::kBadInput, "interface name longer than IFNAMSIZ-1 (15) name=" +
                                                 name + " len=" + std::to_string(name.size()));
  }
  if (!valid_ifname(cell_if)) {
    return base::fail(base::Errc::kBadInput, "bad cell interface name " + std::string(cell_if));
  }
  return CellNames{name, name, std::string(cell_if)};
}

bool is_cell_name(std::string_view prefix, std::string_view name) noexcept {
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return false;
  std::string_view id = name.substr(prefix.size());
  return std::all_of(id.begin(), id.end(), is_id_char);
}

}  // namespace mtw::netns
