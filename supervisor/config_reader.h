// Internal to the config loader: typed, position-aware reads from a toml++
// table that remember which keys were used, so that every key nobody asked
// for is reported as unknown. Not part of the library's interface.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/config.h"

namespace mtw::supervisor::detail {

// Collects "FILE:LINE:COL: reason" lines; loading continues after an error so
// that one run reports every problem.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void error(const toml::source_region& where, std::string_view message);
  void error(const SourcePos& where, std::string_view message);
  SourcePos pos(const toml::source_region& where) const;
  bool empty() const noexcept { return lines_.empty(); }
  std::string text() const;  // lines joined by '\n'
  const std::string& file() const noexcept { return file_; }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

class TableReader {
 public:
  // `table` must outlive the reader. `section` names it in messages ("[cells]").
  TableReader(Diagnostics& diag, const toml::table& table, std::string section)
      : diag_(diag), table_(table), section_(std::move(section)) {}

  // Marks `key` used; nullptr when absent.
  const toml::node* node(std::string_view key);
  std::optional<std::string> string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  template <class T>
  std::optional<T> number(std::string_view key, std::int64_t min = 0,
                          std::int64_t max = std::numeric_limits<T>::max()) {
    auto v = integer(key, min, max);
    if (!v) return std::nullopt;
    return static_cast<T>(*v);
  }
  // Integer (bytes) or size text ("10GiB"); "unlimited" gives 0 when allowed.
  std::optional<std::uint64_t> size(std::string_view key, bool allow_unlimited);
  // Integer (bits/s) or rate text ("20mbit"); "unlimited" gives 0 when allowed.
  std::optional<std::uint64_t> rate(std::string_view key, bool allow_unlimited,
                                    std::uint64_t min_bps);
  std::optional<proto::Endpoint> endpoint(std::string_view key);

  // Reports every key that no getter asked for.
  void finish();

  void error(const toml::node& n, std::string_view message);
  const toml::table& table() const noexcept { return table_; }
  const std::string& section() const noexcept { return section_; }
  Diagnostics& diag() noexcept { return diag_; }

 private:
  std::string where(std::string_view key) const;  // "server.state_dir"
  std::optional<std::uint64_t> quantity(std::string_view key, bool allow_unlimited, bool is_rate,
                                        std::uint64_t min);

  Diagnostics& diag_;
  const toml::table& table_;
  std::string section_;
  std::set<std::string, std::less<>> used_;
};

// Where each top-level section starts, for errors about a whole section.
using SectionPositions = std::map<std::string, SourcePos, std::less<>>;

// Limit keys shared by [defaults] and [[user]]; unset keys stay unset.
LimitOverrides read_limit_keys(TableReader& r);

}  // namespace mtw::supervisor::detail
