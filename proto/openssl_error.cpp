#include "proto/openssl_error.h"

#include <openssl/err.h>

namespace mtw::proto {

std::string openssl_reason(std::string_view if_none) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::string(if_none);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace mtw::proto
