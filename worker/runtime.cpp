#include "worker/runtime.h"

namespace mtw::worker {

conn::Settings conn_settings(const Options& o) {
  conn::Settings s;
  s.allowed = o.allowed;
  s.tls_skew_seconds = o.tls_skew_seconds;
  s.handshake_timeout_ms = o.handshake_timeout_ms;
  s.idle_timeout_ms = o.idle_timeout_ms;
  s.connect_timeout_ms = o.dc_connect_timeout_ms;
  s.mask = o.mask;
  s.mask_discard_timeout_ms = o.mask_discard_timeout_ms;
  return s;
}

base::Result<void> Runtime::init_dc_table() {
  dcs = proto::DcTable();
  for (const auto& spec : opts.dc_overrides) {
    if (auto r = dcs.set_from_text(spec); !r) return r;
  }
  return {};
}

}  // namespace mtw::worker
