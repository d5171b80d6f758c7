#include "proto/links.h"

namespace mtw::proto {

std::vector<std::string> proxy_links(const Secret& secret, std::string_view host,
                                     std::uint16_t port) {
  std::string h(host);
  if (h.find(':') != std::string::npos && !h.starts_with("[")) h = "[" + h + "]";
  std::vector<std::string> forms = {format_hex(secret)};
  if (secret.kind == SecretKind::kFakeTls) forms.push_back(format_base64url(secret));
  std::vector<std::string> out;
  for (const auto& f : forms) {
    std::string q = "?server=";
    q += h;
    q += "&port=";
    q += std::to_string(port);
    q += "&secret=";
    q += f;
    out.push_back("tg://proxy" + q);
    out.push_back("https://t.me/proxy" + q);
  }
  return out;
}

}  // namespace mtw::proto
