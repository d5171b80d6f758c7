#include "worker/runtime.h"

#include <ctime>

namespace mtw::worker {

void Runtime::set_secrets(std::vector<proto::Secret> secrets) {
  std::vector<proto::UserSecret> users;
  users.reserve(secrets.size());
  for (auto& s : secrets) users.push_back(proto::UserSecret{0, std::move(s)});
  index = std::make_shared<const proto::UserIndex>(std::move(users));
}

void Runtime::set_users(std::vector<proto::UserSecret> users) {
  index = std::make_shared<const proto::UserIndex>(std::move(users));
}

base::Result<void> Runtime::init_dc_table() {
  dcs = proto::DcTable();
  for (const auto& spec : opts.dc_overrides) {
    if (auto r = dcs.set_from_text(spec); !r) return r;
  }
  return {};
}

proto::IdentifyOptions Runtime::identify_options() const {
  proto::IdentifyOptions o;
  o.clock.now = static_cast<std::int64_t>(std::time(nullptr));
  o.clock.max_skew_seconds = opts.tls_skew_seconds;
  o.allowed = opts.allowed;
  return o;
}

}  // namespace mtw::worker
