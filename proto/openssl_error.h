// The text of OpenSSL's last error, for error messages: one reader of the
// error queue for every caller of libssl/libcrypto (the mask prober, the
// doctor's TLS visit, the WEB front's certificates). Thread-safe: OpenSSL's
// error queue is per thread.
#pragma once

#include <string>
#include <string_view>

namespace mtw::proto {

// The oldest error in the calling thread's OpenSSL error queue as
// ERR_error_string_n writes it ("error:0A000086:SSL routines::certificate
// verify failed"), or `if_none` when the queue is empty (a TLS call can fail
// with nothing queued: the peer closed, a read timed out). Empties the queue,
// so that the next failure reads its own error.
[[nodiscard]] std::string openssl_reason(std::string_view if_none);

}  // namespace mtw::proto
