// Checks that need the whole configuration: clashes between entries and
// whether the pools can hold the users. Also CIDR parsing and capacities,
// and the load-time checks of [api] webhooks and webhook_ca_file.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "base/url.h"
#include "supervisor/config.h"
#include "supervisor/config_reader.h"

namespace mtw::supervisor {

base::Result<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos)
    // Appended, not "literal" + std::string: GCC 12 -O3 warns falsely (-Wrestrict) on that.
    return base::fail(base::Errc::kBadInput,
                      std::string("\"").append(text).append("\" needs a /prefix"));
  const std::string addr(text.substr(0, slash));
  const std::string len(text.substr(slash + 1));
  Cidr c;
  c.v6 = addr.find(':') != std::string::npos;
  if (::inet_pton(c.v6 ? AF_INET6 : AF_INET, addr.c_str(), c.addr.data()) != 1)
    return base::fail(base::Errc::kBadInput, "\"" + addr + "\" is not an IP address");
  const int max_len = c.v6 ? 128 : 32;
  if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit) ||
      std::stoi(len) > max_len)
    return base::fail(base::Errc::kBadInput, "prefix length must be 0.." + std::to_string(max_len) +
                                                 ", not \"" + len + "\"");
  c.prefix = std::stoi(len);
  for (int bit = c.prefix; bit < max_len; ++bit)
    if (c.addr[bit / 8] & (0x80 >> (bit % 8)))
      return base::fail(
          base::Errc::kBadInput,
          std::string("\"").append(text).append("\" has host bits set; write the network address"));
  return c;
}

std::string format_cidr(const Cidr& c) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(c.v6 ? AF_INET6 : AF_INET, c.addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(c.prefix);
}

namespace {

std::uint64_t pow2_capped(int bits) {
  // Capacities beyond 2^32 cells are meaningless; cap to keep arithmetic simple.
  return bits >= 32 ? (1ull << 32) : (bits <= 0 ? 1 : 1ull << bits);
}

}  // namespace

std::uint64_t ipv4_cell_capacity(const CellsConfig& c) noexcept {
  if (c.ipv4_pool.prefix > c.ipv4_cell_prefix) return 0;
  return pow2_capped(c.ipv4_cell_prefix - c.ipv4_pool.prefix);
}

std::uint64_t ipv6_cell_capacity(const CellsConfig& c) noexcept {
  if (!c.ipv6_prefix || c.ipv6_prefix->prefix > 64) return 0;
  return pow2_capped(64 - c.ipv6_prefix->prefix);
}

std::uint64_t uid_capacity(const CellsConfig& c) noexcept {
  return c.uid_count == 0 ? 0 : c.uid_count - 1;  // the first uid is the gate's
}

std::uint64_t user_capacity(const CellsConfig& c) noexcept {
  std::uint64_t n = std::min(uid_capacity(c), ipv4_cell_capacity(c));
  if (c.ipv6_prefix) n = std::min(n, ipv6_cell_capacity(c));
  return n;
}

namespace detail {
namespace {

SourcePos section_pos(const SectionPositions& pos, const std::string& file, std::string_view name) {
  auto it = pos.find(name);
  return it != pos.end() ? it->second : SourcePos{file, 1, 1};
}

// Normalised literal address, or nullopt for a host name.
std::optional<std::string> literal_address(const std::string& host, bool& v6) {
  unsigned char buf[16];
  v6 = host.find(':') != std::string::npos;
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, buf, out, sizeof out);
  return std::string(out);
}

void check_listeners(Config& cfg, Diagnostics& diag) {
  if (cfg.listeners.empty()) {
    diag.error(SourcePos{cfg.source, 1, 1},
               "no [[listener]]: add one, e.g. bind = \"0.0.0.0:443\"");
    return;
  }
  struct Bound {
    std::string addr;
    bool v6;
    std::uint16_t port;
    SourcePos pos;
  };
  std::vector<Bound> seen;
  for (auto& l : cfg.listeners) {
    bool v6 = false;
    auto addr = literal_address(l.bind.host, v6);
    if (!addr) {
      diag.error(l.pos, "listener.bind host \"" + l.bind.host +
                            "\" must be a literal IPv4 or IPv6 address (no DNS at start-up)");
      continue;
    }
    l.bind.host = *addr;
    const bool wildcard = *addr == "0.0.0.0" || *addr == "::";
    for (const Bound& b : seen) {
      const bool b_wild = b.addr == "0.0.0.0" || b.addr == "::";
      // IPv6 sockets are bound with IPV6_V6ONLY, so [::] and 0.0.0.0 coexist.
      if (b.port == l.bind.port && b.v6 == v6 && (b.addr == *addr || wildcard || b_wild))
        diag.error(l.pos, "listener " + proto::format_endpoint(l.bind) + " overlaps listener " +
                              b.addr + " port " + std::to_string(b.port) + " at " +
                              b.pos.to_string());
    }
    seen.push_back({*addr, v6, l.bind.port, l.pos});
  }
}

void check_limits(const Limits& l, const SourcePos& pos, std::string_view who, Diagnostics& diag) {
  if (l.period == Period::kWeekly && l.anchor_day > 7)
    diag.error(pos, std::string(who) +
                        ": a weekly period's anchor_day is an ISO weekday 1..7 "
                        "(1 = Monday), not " +
                        std::to_string(l.anchor_day));
}

void check_users(const Config& cfg, Diagnostics& diag) {
  std::map<std::string, SourcePos> names;
  std::map<proto::SecretKey, std::pair<std::string, SourcePos>> keys;
  for (const auto& u : cfg.users) {
    if (auto [it, fresh] = names.emplace(u.name, u.pos); !fresh)
      diag.error(u.pos, "duplicate user name \"" + u.name + "\" (first at " +
                            it->second.to_string() + ")");
    for (const auto& s : u.secrets) {
      // The 16-byte key alone identifies a user in the obfuscated2 trial, so
      // the same key under two prefixes (dd/ee) is still a clash.
      if (auto [it, fresh] = keys.emplace(s.key, std::pair{u.name, u.pos}); !fresh)
        diag.error(u.pos, "user \"" + u.name + "\" reuses the secret key of user \"" +
                              it->second.first + "\" (at " + it->second.second.to_string() + ")");
    }
    check_limits(cfg.limits_for(u), u.pos, "user \"" + u.name + "\"", diag);
  }
}

bool valid_name_prefix(std::string_view p) {
  if (p.empty() || p.size() > 6 || !std::islower(static_cast<unsigned char>(p[0]))) return false;
  return std::all_of(p.begin(), p.end(), [](char ch) {
    return std::islower(static_cast<unsigned char>(ch)) ||
           std::isdigit(static_cast<unsigned char>(ch));
  });
}

// True when the two networks share an address (the shorter prefix holds
// the other's network address).
bool cidr_overlap(const Cidr& a, const Cidr& b) {
  if (a.v6 != b.v6) return false;
  const int bits = std::min(a.prefix, b.prefix);
  for (int bit = 0; bit < bits; ++bit)
    if ((a.addr[bit / 8] ^ b.addr[bit / 8]) & (0x80 >> (bit % 8))) return false;
  return true;
}

void check_cells(const Config& cfg, const SourcePos& pos, Diagnostics& diag) {
  const CellsConfig& c = cfg.cells;
  const std::uint64_t users = cfg.users.size();
  // Addresses of 127/8 are local on lo: a cell link there is unreachable.
  const Cidr loopback{false, {127}, 8};
  if (cidr_overlap(c.ipv4_pool, loopback))
    diag.error(pos, "cells.ipv4_pool " + format_cidr(c.ipv4_pool) +
                        " overlaps the loopback network 127.0.0.0/8");
  if (c.ipv4_pool.prefix > c.ipv4_cell_prefix)
    diag.error(pos, "cells.ipv4_pool " + format_cidr(c.ipv4_pool) + " is smaller than one /" +
                        std::to_string(c.ipv4_cell_prefix) + " cell link");
  else if (ipv4_cell_capacity(c) < users)
    diag.error(pos, "cells.ipv4_pool " + format_cidr(c.ipv4_pool) + " holds " +
                        std::to_string(ipv4_cell_capacity(c)) + " cells but " +
                        std::to_string(users) + " users are configured");
  if (c.ipv6_prefix) {
    // fc00::/7: unique local addresses never leak onto the internet by accident.
    if ((c.ipv6_prefix->addr[0] & 0xfe) != 0xfc)
      diag.error(pos, "cells.ipv6_prefix " + format_cidr(*c.ipv6_prefix) +
                          " must be a unique local (fc00::/7) prefix");
    if (c.ipv6_prefix->prefix > 64)
      diag.error(pos, "cells.ipv6_prefix must be /64 or shorter (each cell gets a /64)");
    else if (ipv6_cell_capacity(c) < users)
      diag.error(pos, "cells.ipv6_prefix " + format_cidr(*c.ipv6_prefix) + " holds " +
                          std::to_string(ipv6_cell_capacity(c)) + " cells but " +
                          std::to_string(users) + " users are configured");
  }
  constexpr std::uint64_t kMaxId = 4'294'967'294;  // (uid_t)-1 means "no change"
  if (std::uint64_t{c.uid_first} + c.uid_count - 1 > kMaxId)
    diag.error(pos, "cells.uid_first + uid_count runs past uid 4294967294");
  if (std::uint64_t{c.gid_first} + c.uid_count - 1 > kMaxId)
    diag.error(pos, "cells.gid_first + uid_count runs past gid 4294967294");
  if (uid_capacity(c) < users)
    diag.error(pos, "cells uid range " + std::to_string(c.uid_first) + ".." +
                        std::to_string(std::uint64_t{c.uid_first} + c.uid_count - 1) + " holds " +
                        std::to_string(uid_capacity(c)) + " workers (plus the gate) but " +
                        std::to_string(users) + " users are configured");
  if (!valid_name_prefix(c.name_prefix))
    diag.error(pos, "cells.name_prefix \"" + c.name_prefix +
                        "\" must be 1..6 of [a-z0-9] starting with a letter (IFNAMSIZ)");
  if (!c.cgroup_dir.empty() && c.cgroup_dir.front() != '/')
    diag.error(pos, "cells.cgroup_dir must be empty or an absolute path");
}

// [api] tcp as ApiServer::start will bind it: a literal address (no DNS)
// on a port no listener holds. The loopback rule is the reader's (config.cpp).
void check_api(Config& cfg, const SourcePos& pos, Diagnostics& diag) {
  if (!cfg.api.tcp) return;
  proto::Endpoint& ep = *cfg.api.tcp;
  bool v6 = false;
  auto addr = literal_address(ep.host, v6);
  if (!addr) {
    diag.error(pos, "api.tcp host \"" + ep.host +
                        "\" must be a literal IPv4 or IPv6 address (no DNS at start-up)");
    return;
  }
  for (const auto& l : cfg.listeners) {
    bool lv6 = false;
    auto laddr = literal_address(l.bind.host, lv6);
    if (!laddr || lv6 != v6 || l.bind.port != ep.port) continue;
    const bool wild = *addr == "0.0.0.0" || *addr == "::";
    const bool lwild = *laddr == "0.0.0.0" || *laddr == "::";
    if (*addr == *laddr || wild || lwild)
      diag.error(pos, "api.tcp " + proto::format_endpoint(ep) + " uses the port of listener " +
                          proto::format_endpoint(l.bind) + " at " + l.pos.to_string());
  }
}

}  // namespace

void validate_config(Config& cfg, const SectionPositions& pos, Diagnostics& diag) {
  check_listeners(cfg, diag);
  check_api(cfg, section_pos(pos, cfg.source, "api"), diag);
  check_limits(cfg.defaults, section_pos(pos, cfg.source, "defaults"), "[defaults]", diag);
  check_users(cfg, diag);
  check_cells(cfg, section_pos(pos, cfg.source, "cells"), diag);
}

// Checked at load so that a bad bundle stops the start (or the reload) instead
// of failing every https delivery later.
std::optional<std::string> pem_bundle_error(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    const int err = errno;
    return "cannot be read: " + std::string(err ? std::strerror(err) : "not a regular file");
  }
  const std::string pem = text.str();
  ERR_clear_error();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  STACK_OF(X509_INFO)* infos =
      bio ? PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  ERR_clear_error();  // the verdict is below; leave no stale errors for later OpenSSL callers
  if (!infos) return std::string("is not a PEM certificate bundle");
  int certs = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos); ++i)
    if (sk_X509_INFO_value(infos, i)->x509) ++certs;
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  if (certs == 0) return std::string("holds no PEM certificate");
  return std::nullopt;
}

namespace {

// A config value quoted for a message: control and non-ASCII bytes as \xNN.
std::string quoted(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out + '"';
}

}  // namespace

// Parsed here with the parser the webhooks use, so that a URL they could not
// dial stops the start (or the reload) with its position instead of being
// skipped at run time.
void read_webhooks(TableReader& r, std::vector<std::string>& urls) {
  const toml::node* n = r.node("webhooks");
  if (!n) return;
  const auto* arr = n->as_array();
  if (!arr) {
    r.error(*n, "api.webhooks must be a list of \"http(s)://HOST[:PORT]/PATH\" URLs");
    return;
  }
  for (const toml::node& e : *arr) {
    const auto* str = e.as_string();
    if (!str) {
      r.error(e, "api.webhooks entries must be strings: \"http(s)://HOST[:PORT]/PATH\"");
      continue;
    }
    const std::string& u = str->get();
    if (auto parsed = base::parse_http_url(u); !parsed)
      r.error(e, "api.webhooks entry " + quoted(u) +
                     " is not an http(s)://HOST[:PORT]/PATH URL: " + parsed.error().context);
    else
      urls.push_back(u);
  }
}

}  // namespace detail

}  // namespace mtw::supervisor
