// The self-probe's comparison (docs/operations.md, "mtwarden doctor",
// self-probe): the same probe bytes are sent to our own listener and to the
// mask directly, and the two answers are compared as a prober would, after
// taking out what differs between any two answers of one server: the HTTP
// Date header, and a few bytes of an encrypted record's length (an ECDSA
// signature varies by a byte or two). Pure. Thread-safe.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "doctor/verdict.h"
#include "proto/bytes.h"

namespace mtw::doctor {

// How the other side ended: closed (FIN), reset, still open when the
// probe stopped listening, or no connection at all (error says why).
enum class EndKind { kFin, kRst, kOpen, kNoConnect };
std::string_view end_name(EndKind e) noexcept;

struct Answer {
  proto::Bytes data;  // every byte received
  EndKind end = EndKind::kOpen;
  std::string error;  // kNoConnect: the connect's error
};

// Slack on an encrypted (17 03 03) record's length.
inline constexpr std::size_t kEncryptedSlack = 16;

// A short description of an answer: "nothing, fin", "HTTP/1.1 400 Bad
// Request (157 bytes), fin", "TLS 16:122 14:1 17:25 17:1060 ..., open",
// "12 bytes 48656c6c6f..., rst".
std::string describe_answer(const Answer& a);
// The differences a prober would see, each one sentence; empty: the same.
std::vector<std::string> compare_answers(const Answer& ours, const Answer& mask);

struct ProbeOutcome {
  std::string probe;  // "HTTP GET", "random bytes", "wrong-HMAC hello", "unknown SNI"
  Answer ours, mask;
};
// self_probe: "indistinguishable" or the differences. Skipped when either
// side could not be reached (the listener and mask checks say why).
Check judge_self_probe(const std::string& listener, const std::string& mask,
                       std::span<const ProbeOutcome> outcomes);

}  // namespace mtw::doctor
