// One visit to the mask site as a browser would make it: a verifying TLS
// connection with the fake-TLS domain as SNI (the chain against the system
// store, or a given CA file, and the name), then `GET /` for the HTTP Date
// header, the reference doctor's clock check falls back to. Blocking, with
// one deadline for the whole visit. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "doctor/rules.h"
#include "proto/dc_table.h"

namespace mtw::doctor {

struct TlsVisit {
  CertFacts cert;
  // The Date header of the answer to GET /, as unix seconds, and our clock
  // (doctor's, with its test offset) halfway between request and answer.
  std::optional<std::int64_t> http_date;
  double local_at = 0;
  double round_trip_s = 0;
  std::string http_error;  // why there is no date
};

// `ca_file` "": the system's default store. `now_unix_s` is doctor's clock.
TlsVisit visit_mask(const proto::Endpoint& target, const std::string& sni,
                    const std::string& ca_file, int timeout_ms, double (*now_unix_s)());

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate) -> unix seconds.
std::optional<std::int64_t> parse_http_date(std::string_view text);

}  // namespace mtw::doctor
