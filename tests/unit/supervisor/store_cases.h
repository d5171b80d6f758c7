// The store's behaviour that both engines share, as value-parameterised
// cases (store_cases.cpp). A test binary instantiates them with a
// StoreTarget: store_test.cpp with SQLite files, store_pg_privileged_test.cpp
// with databases of a real PostgreSQL server.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "supervisor/store.h"

namespace mtw::supervisor::storetest {

// One fresh, empty database per test; every open() reaches the same one.
class StoreTarget {
 public:
  virtual ~StoreTarget() = default;
  // Opens the store as host `host`, migrated to `schema_version`.
  [[nodiscard]] virtual base::Result<Store> open(const std::string& host,
                                                 int schema_version = kSchemaVersion) = 0;
  // Runs one SQL statement behind the store's back (the engine's dialect).
  virtual void exec(const std::string& sql) = 0;
};

struct StoreParam {
  std::string name;  // the engine, for test names
  // nullptr when the engine cannot run here; `skip` then says why (an
  // empty reason makes that a failure).
  std::function<std::unique_ptr<StoreTarget>()> make;
  std::function<std::string()> skip = [] { return std::string(); };
};

// gtest prints a parameter with this (not as raw bytes).
inline void PrintTo(const StoreParam& p, std::ostream* os) { *os << p.name; }

inline std::string param_name(const ::testing::TestParamInfo<StoreParam>& info) {
  return info.param.name;
}

class StoreCases : public ::testing::TestWithParam<StoreParam> {
 protected:
  void SetUp() override {
    if (const std::string why = GetParam().skip(); !why.empty()) GTEST_SKIP() << why;
    target_ = GetParam().make();
    ASSERT_NE(target_, nullptr) << "the " << GetParam().name << " target is not available";
  }
  void TearDown() override { target_.reset(); }

  Store open(const std::string& host = "h1") {
    auto s = target_->open(host);
    EXPECT_TRUE(s) << s.error().to_string();
    if (!s) throw std::runtime_error("open failed: " + s.error().to_string());
    return std::move(*s);
  }

  static StoredUser user(std::string name, std::string secret) {
    StoredUser u;
    u.name = std::move(name);
    u.secrets = {std::move(secret)};
    return u;
  }

  static UnixSeconds utc(int y, unsigned m, unsigned d, int hour = 0) {
    using namespace std::chrono;
    return sys_seconds(sys_days(year{y} / month{m} / day{d})).time_since_epoch().count() +
           hour * 3600;
  }

  static constexpr UnixSeconds kDay = 86400;
  std::unique_ptr<StoreTarget> target_;
};

}  // namespace mtw::supervisor::storetest
