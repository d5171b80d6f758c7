#include "proto/mask_route.h"

#include <algorithm>
#include <charconv>

#include "proto/fake_tls.h"

namespace mtw::proto {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  return out;
}

template <class Key>
const Endpoint* find_route(const std::vector<std::pair<Key, Endpoint>>& routes, const Key& key) {
  for (const auto& [k, ep] : routes)
    if (k == key) return &ep;
  return nullptr;
}

// Splits "KEY=HOST:PORT"; the endpoint parsed.
Result<std::pair<std::string_view, Endpoint>> split_route(std::string_view text,
                                                          std::string_view what) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return base::fail(Errc::kBadInput, std::string("expected ").append(what).append("=HOST:PORT"));
  auto ep = parse_endpoint(text.substr(eq + 1));
  if (!ep) return base::fail(Errc::kBadInput, ep.error().context);
  return std::pair{text.substr(0, eq), *ep};
}

}  // namespace

std::optional<std::string> hello_sni(ByteSpan first_bytes) {
  if (first_bytes.empty() || first_bytes[0] != std::byte{0x16}) return std::nullopt;
  auto hello = parse_client_hello(first_bytes);
  if (!hello || !hello->sni) return std::nullopt;
  return lower(*hello->sni);
}

std::string default_domain(const UserIndex& index) {
  for (const auto& us : index.secrets())
    if (us.secret.kind == SecretKind::kFakeTls && !us.secret.domain.empty())
      return lower(us.secret.domain);
  return {};
}

std::optional<Endpoint> mask_target(const MaskRoutes& routes, std::string_view domain,
                                    bool sni_known, std::optional<std::uint32_t> listener) {
  const Endpoint* by_domain = domain.empty() ? nullptr : find_route(routes.domains, lower(domain));
  const Endpoint* by_listener = listener ? find_route(routes.listeners, *listener) : nullptr;
  if (sni_known && by_domain) return *by_domain;
  if (by_listener) return *by_listener;
  if (routes.global) return *routes.global;
  if (by_domain) return *by_domain;
  if (routes.domain_default && !domain.empty()) return Endpoint{lower(domain), routes.default_port};
  return std::nullopt;
}

MaskRoute route_mask(const MaskRoutes& routes, std::optional<std::uint32_t> listener,
                     ByteSpan first_bytes, const UserIndex& index) {
  MaskRoute out;
  const auto sni = hello_sni(first_bytes);
  const bool known = sni && index.by_domain(*sni) != nullptr;
  if (sni && !known && routes.unknown_sni == UnknownSniAction::kDrop) {
    out.action = MaskAction::kDrop;
    return out;
  }
  out.domain = known ? *sni : default_domain(index);
  if (auto target = mask_target(routes, out.domain, known, listener)) {
    out.action = MaskAction::kMask;
    out.target = *std::move(target);
  }
  return out;
}

Result<std::pair<std::string, Endpoint>> parse_domain_route(std::string_view text) {
  auto r = split_route(text, "DOMAIN");
  if (!r) return base::fail(r.error().code, r.error().context);
  const std::string_view domain = r->first;
  if (domain.size() > 253 || domain.find_first_of(" \t\r\n") != std::string_view::npos)
    return base::fail(Errc::kBadInput, "a domain is 1..253 bytes without spaces");
  return std::pair{lower(domain), r->second};
}

Result<std::pair<std::uint32_t, Endpoint>> parse_listener_route(std::string_view text) {
  auto r = split_route(text, "LISTENER_ID");
  if (!r) return base::fail(r.error().code, r.error().context);
  std::uint32_t id = 0;
  const std::string_view num = r->first;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), id);
  if (ec != std::errc() || end != num.data() + num.size())
    return base::fail(Errc::kBadInput, "listener id must be a decimal u32");
  return std::pair{id, r->second};
}

Result<UnknownSniAction> parse_unknown_sni(std::string_view text) {
  if (text == "mask") return UnknownSniAction::kMask;
  if (text == "drop") return UnknownSniAction::kDrop;
  return base::fail(Errc::kBadInput, "expected mask or drop");
}

std::string_view unknown_sni_name(UnknownSniAction a) noexcept {
  return a == UnknownSniAction::kDrop ? "drop" : "mask";
}

std::string describe_routes(const MaskRoutes& routes) {
  std::string out = "global=";
  out.append(routes.global ? format_endpoint(*routes.global) : "-")
      .append(" domains=")
      .append(std::to_string(routes.domains.size()))
      .append(" listeners=")
      .append(std::to_string(routes.listeners.size()))
      .append(" domain_port=")
      .append(routes.domain_default ? std::to_string(routes.default_port) : "off")
      .append(" unknown_sni=")
      .append(unknown_sni_name(routes.unknown_sni));
  return out;
}

}  // namespace mtw::proto
