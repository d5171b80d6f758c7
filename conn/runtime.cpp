#include "conn/runtime.h"

#include <ctime>

namespace mtw::conn {

void Runtime::set_secrets(std::vector<proto::Secret> secrets) {
  std::vector<proto::UserSecret> users;
  users.reserve(secrets.size());
  for (auto& s : secrets) users.push_back(proto::UserSecret{0, std::move(s)});
  index = std::make_shared<const proto::UserIndex>(std::move(users));
}

void Runtime::set_users(std::vector<proto::UserSecret> users) {
  index = std::make_shared<const proto::UserIndex>(std::move(users));
}

proto::IdentifyOptions Runtime::identify_options() const {
  proto::IdentifyOptions o;
  o.clock.now = static_cast<std::int64_t>(std::time(nullptr));
  o.clock.max_skew_seconds = settings.tls_skew_seconds;
  o.allowed = settings.allowed;
  return o;
}

}  // namespace mtw::conn
