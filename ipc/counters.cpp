#include "ipc/counters.h"

namespace mtw::ipc {

std::string_view counter_name(Counter c) noexcept {
  static constexpr std::array<std::string_view, kCounterCount> kNames = {
      "accepted",
      "active",
      "closed",
      "handshake_ok",
      "fail_not_mtproxy",
      "fail_bad_hmac",
      "fail_clock_skew",
      "fail_replay",
      "fail_wrong_sni",
      "fail_unknown_tag",
      "fail_not_allowed",
      "fail_timeout",
      "fail_closed_early",
      "fail_bad_tls_init",
      "bytes_client_to_dc",
      "bytes_dc_to_client",
      "masked",
      "masked_bytes_to_mask",
      "masked_bytes_from_mask",
      "dc_connect_failures",
      "handoffs",
      "mask_requests",
      "overload_closed",
      "rate_limited",
      "direct_handoffs",
      "seccomp_denied",
      "source_limited",
      "evicted_unproven",
  };
  auto i = static_cast<std::size_t>(c);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

Counter failure_counter(proto::Rejection r) noexcept {
  using proto::Rejection;
  switch (r) {
    case Rejection::kBadHmac:
      return Counter::kFailBadHmac;
    case Rejection::kClockSkew:
      return Counter::kFailClockSkew;
    case Rejection::kReplay:
      return Counter::kFailReplay;
    case Rejection::kWrongSni:
      return Counter::kFailWrongSni;
    case Rejection::kUnknownTag:
      return Counter::kFailUnknownTag;
    case Rejection::kProtocolNotAllowed:
      return Counter::kFailNotAllowed;
    default:
      return Counter::kFailNotMtproxy;
  }
}

std::uint64_t Counters::handshake_failures() const noexcept {
  std::uint64_t n = 0;
  for (auto i = static_cast<std::size_t>(Counter::kFailNotMtproxy);
       i <= static_cast<std::size_t>(Counter::kFailBadTlsInit); ++i) {
    n += values[i];
  }
  return n;
}

std::string counters_json(const Counters& c) {
  std::string out = "{";
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    if (i) out += ',';
    out += '"';
    out += counter_name(static_cast<Counter>(i));
    out += "\":";
    out += std::to_string(c.values[i]);
  }
  out += '}';
  return out;
}

std::string counters_summary(const Counters& c) {
  return "accepted=" + std::to_string(c[Counter::kAccepted]) +
         " active=" + std::to_string(c[Counter::kActive]) +
         " closed=" + std::to_string(c[Counter::kClosed]) +
         " handshake_ok=" + std::to_string(c[Counter::kHandshakeOk]) +
         " handshake_failures=" + std::to_string(c.handshake_failures()) +
         " masked=" + std::to_string(c[Counter::kMasked]) +
         " bytes_client_to_dc=" + std::to_string(c[Counter::kBytesClientToDc]) +
         " bytes_dc_to_client=" + std::to_string(c[Counter::kBytesDcToClient]);
}

}  // namespace mtw::ipc
