#include "worker/runtime.h"

#include <algorithm>
#include <ctime>

#include "base/file.h"
#include "worker/control_protocol.h"

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

base::Result<std::size_t> Runtime::load_profiles(int fd) {
  auto text = base::read_fd_all(fd, control::kMaxProfileBundleBytes);
  if (!text) return tl::unexpected(text.error());
  auto bundle = proto::parse_profile_bundle(*text);
  if (!bundle) return tl::unexpected(bundle.error());
  auto next = std::make_shared<std::map<std::string, proto::TlsProfile, std::less<>>>();
  for (auto& p : *bundle) {
    std::string key = p.domain;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
    next->emplace(std::move(key), std::move(p));
  }
  profiles = std::move(next);
  return profiles->size();
}

const proto::TlsProfile& Runtime::profile_for(std::string_view domain) const {
  if (profiles) {
    std::string key(domain);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
    if (auto it = profiles->find(key); it != profiles->end()) return it->second;
  }
  return proto::builtin_profile();
}

}  // namespace mtw::worker
