#include "worker/runtime.h"

#include <algorithm>

#include "base/file.h"
#include "ipc/control_protocol.h"

namespace mtw::worker {

conn::Settings conn_settings(const Options& o) {
  conn::Settings s;
  s.allowed = o.allowed;
  s.tls_skew_seconds = o.tls_skew_seconds;
  s.handshake_timeout_ms = o.handshake_timeout_ms;
  s.idle_timeout_ms = o.idle_timeout_ms;
  s.connect_timeout_ms = o.dc_connect_timeout_ms;
  s.mask = o.mask;
  s.mask_connect_timeout_ms = o.mask_connect_timeout_ms;
  s.mask_discard_timeout_ms = o.mask_discard_timeout_ms;
  s.mask_mirror_after_ms = o.mask_mirror_after_ms;
  return s;
}

base::Result<void> Runtime::init_dc_table() {
  dcs = proto::DcTable();
  for (const auto& spec : opts.dc_overrides) {
    if (auto r = dcs.set_from_text(spec); !r) return r;
  }
  return {};
}

base::Result<std::size_t> Runtime::load_profiles(int fd) {
  auto text = base::read_fd_all(fd, ipc::control::kMaxProfileBundleBytes);
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
