#include "doctor/doctor.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "api/public_address.h"
#include "doctor/answers.h"
#include "doctor/net.h"
#include "doctor/rules.h"
#include "doctor/tls_visit.h"
#include "proto/fake_tls.h"
#include "proto/random.h"
#include "proto/secret.h"
#include "supervisor/cell_egress.h"
#include "supervisor/config.h"
#include "supervisor/links.h"
#include "supervisor/mask_probe.h"
#include "supervisor/mask_schedule.h"
#include "supervisor/store.h"

namespace mtw::doctor {

namespace {

using base::Errc;
using base::fail;
using base::Result;

double g_clock_offset_s = 0;

// Doctor's clock: the wall clock plus the test-only offset.
double now_s() {
  const auto t = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(t).count() + g_clock_offset_s;
}

std::int64_t now_unix() { return static_cast<std::int64_t>(now_s()); }

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

bool is_literal(const std::string& host) {
  unsigned char bin[16];
  return ::inet_pton(AF_INET, host.c_str(), bin) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), bin) == 1;
}

std::uint32_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - since)
                                        .count());
}

ConnectResult try_connect(const std::string& what, const proto::Endpoint& ep, int timeout_ms) {
  ConnectResult r;
  r.what = what;
  const auto t0 = std::chrono::steady_clock::now();
  auto fd = connect_tcp(ep, timeout_ms);
  r.ms = elapsed_ms(t0);
  r.ok = fd.has_value();
  if (!fd) r.error = fd.error().to_string();
  return r;
}

// The users' fake-TLS domains, the file's first, then the store's (users
// added at run time), then --domain; lower-case, each once, in that order
// (the first is the default domain, as the oldest user's is for the gate).
std::vector<std::string> fake_tls_domains(const supervisor::Config& cfg,
                                          const std::vector<std::string>& extra,
                                          std::vector<std::string>& notes) {
  std::vector<std::string> out;
  auto add = [&](const std::string& d) {
    const std::string l = lower(d);
    if (!l.empty() && std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
  };
  for (const auto& u : cfg.users)
    for (const auto& s : u.secrets)
      if (s.kind == proto::SecretKind::kFakeTls) add(s.domain);
  const std::string db = cfg.server.state_dir + "/state.db";
  struct stat st {};
  if (::stat(db.c_str(), &st) == 0) {
    auto store = supervisor::Store::open(db);
    auto users =
        store ? store->list_users()
              : base::Result<std::vector<supervisor::StoredUser>>(tl::unexpected(store.error()));
    if (!users) {
      notes.push_back("store " + db + " not read: " + users.error().to_string());
    } else {
      // Users of the file are in the store too; only the file says which
      // of them still exist, so only the ones added at run time count here.
      for (const auto& u : *users)
        if (u.origin == supervisor::UserOrigin::kRuntime)
          for (const auto& text : u.secrets)
            if (auto s = proto::parse_secret(text); s && s->kind == proto::SecretKind::kFakeTls)
              add(s->domain);
    }
  }
  for (const auto& d : extra) add(d);
  if (out.empty() && cfg.server.create_first_user) add(cfg.server.first_user_domain);
  return out;
}

std::vector<std::string> public_addresses(const supervisor::Config& cfg, const DoctorOptions& o,
                                          int timeout_ms) {
  if (!o.public_addresses.empty()) return o.public_addresses;
  std::vector<std::string> out;
  const std::string& configured = cfg.server.public_host;
  if (!configured.empty()) {
    if (is_literal(configured)) return {configured};
    if (auto r = supervisor::resolve_host(configured)) return *r;
  }
  std::string looked_up;
  if (!cfg.server.public_host_lookup.empty()) {
    if (auto r = api::lookup_public_address(cfg.server.public_host_lookup,
                                            std::chrono::milliseconds(timeout_ms)))
      looked_up = *r;
  }
  out.push_back(supervisor::choose_public_host("", looked_up));
  return out;
}

StoredProfile stored_profile(const supervisor::Config& cfg, const std::string& domain) {
  StoredProfile s;
  auto path = supervisor::profile_path(cfg.server.state_dir + "/mask-profiles", domain);
  if (!path) {
    s.error = path.error().context;
    return s;
  }
  std::ifstream in(*path, std::ios::binary);
  if (!in) return s;  // none yet
  std::ostringstream text;
  text << in.rdbuf();
  auto p = proto::parse_profile(text.str());
  if (!p) {
    s.error = *path + ": " + p.error().context;
  } else if (lower(p->domain) != domain) {
    s.error = *path + ": measured for " + p->domain;
  } else {
    s.present = true;
    s.profile = *std::move(p);
  }
  return s;
}

// The address to connect to for a listener's bind: a wildcard means this
// host, reached over loopback.
proto::Endpoint connectable(proto::Endpoint ep) {
  if (ep.host == "0.0.0.0") ep.host = "127.0.0.1";
  if (ep.host == "::") ep.host = "::1";
  return ep;
}

bool takes_tls(const proto::AllowedProtocols& p) { return p.fake_tls; }
bool takes_other(const proto::AllowedProtocols& p) {
  return p.abridged || p.intermediate || p.padded;
}

Check judge_masking_off() {
  Check c;
  c.id = "mask";
  c.verdict = Verdict::kFail;
  c.reason =
      "masking is off ([mask] enabled = false): probes are read and dropped, which no web "
      "server does";
  c.fix = "[mask] enabled = true (the default)";
  return c;
}

std::vector<ProbeOutcome> self_probe(const proto::Endpoint& ours, const proto::Endpoint& mask,
                                     const std::string& domain, const ExchangeOptions& xo) {
  auto& rnd = proto::system_random();
  std::vector<std::pair<std::string, proto::Bytes>> probes;
  const std::string get =
      "GET / HTTP/1.1\r\nHost: " + domain + "\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n";
  probes.emplace_back("HTTP GET",
                      proto::Bytes(reinterpret_cast<const std::byte*>(get.data()),
                                   reinterpret_cast<const std::byte*>(get.data()) + get.size()));
  proto::Bytes random(512);
  rnd.fill(random);
  random[0] = std::byte{static_cast<unsigned char>(0x80 | std::to_integer<unsigned>(random[0]))};
  probes.emplace_back("random bytes", std::move(random));
  proto::Secret wrong;
  wrong.kind = proto::SecretKind::kFakeTls;
  rnd.fill(wrong.key);
  wrong.domain = domain;
  probes.emplace_back("wrong-HMAC hello", proto::build_client_hello(wrong, now_unix(), rnd));
  proto::Secret stranger = wrong;
  std::byte tag[6];
  rnd.fill(tag);
  stranger.domain = "probe-";
  for (std::byte b : tag) stranger.domain += "0123456789abcdef"[std::to_integer<unsigned>(b) & 15];
  stranger.domain += ".invalid";
  probes.emplace_back("unknown SNI", proto::build_client_hello(stranger, now_unix(), rnd));
  std::vector<ProbeOutcome> out;
  for (auto& [name, bytes] : probes) {
    ProbeOutcome o;
    o.probe = name;
    o.ours = exchange(ours, bytes, xo);
    o.mask = exchange(mask, bytes, xo);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

std::string doctor_usage() {
  return "Usage: mtwarden doctor [OPTIONS]\n"
         "Checks a configuration against the live host and prints a verdict per check\n"
         "(PASS, WARN, FAIL, SKIP) with the reason and the fix: the listener on 443; per\n"
         "fake-TLS domain its mask (reachable, TLS 1.3, certificate valid for the name,\n"
         "first-flight profile against the stored one, latency, not this proxy itself)\n"
         "and its DNS records against this host's public address; the clock against NTP\n"
         "or the mask's HTTP Date; every Telegram DC directly and through every\n"
         "[[upstream]]; and a self-probe that sends an HTTP GET, random bytes, a\n"
         "wrong-HMAC hello and an unknown-SNI hello to our listener and to the mask and\n"
         "says \"indistinguishable\" or what differs. Run it on the proxy host, as root.\n"
         "\n"
         "  --config PATH          configuration file (default /etc/mtwarden/mtwarden.toml)\n"
         "  --json                 one JSON object instead of text\n"
         "  --domain D             check this fake-TLS domain too (repeatable)\n"
         "  --public-address ADDR  this host's public address for the DNS check\n"
         "                         (repeatable; default: [server] public_host, the\n"
         "                         public_host_lookup answer, or the first interface address)\n"
         "  --ca-file PEM          trust these CA certificates besides the system store\n"
         "  --self-probe HOST:PORT the listener to self-probe (default: the fake-TLS\n"
         "                         listener on 443, else the first fake-TLS one)\n"
         "  --ntp HOST[:PORT]|none clock reference (default pool.ntp.org; none or no\n"
         "                         answer: the mask's HTTP Date)\n"
         "  --timeout-ms N         deadline of each connect and step (default 3000)\n"
         "\n"
         "Exit status: 0 every check passed (or was skipped); 1 warnings, no failure;\n"
         "2 at least one check failed; 3 the configuration could not be read; 4 bad\n"
         "command line. " +
         std::string(kClockOffsetEnv) + "=SECONDS shifts doctor's clock (for tests only).\n";
}

Result<DoctorOptions> parse_doctor_args(const std::vector<std::string>& args) {
  DoctorOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
      has_value = true;
    }
    auto need = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) return fail(Errc::kBadInput, a + " needs a value");
      return args[++i];
    };
    if (a == "--json" && !has_value) {
      o.json = true;
      continue;
    }
    if (a != "--config" && a != "--domain" && a != "--public-address" && a != "--ca-file" &&
        a != "--self-probe" && a != "--ntp" && a != "--timeout-ms")
      return fail(Errc::kBadInput, "unknown option " + args[i]);
    auto v = need();
    if (!v) return tl::unexpected(v.error());
    if (a == "--config") {
      o.config_path = *v;
    } else if (a == "--domain") {
      if (!proto::valid_tls_domain(*v)) return fail(Errc::kBadInput, "--domain: not a host name");
      o.domains.push_back(*v);
    } else if (a == "--public-address") {
      if (!is_literal(*v)) return fail(Errc::kBadInput, "--public-address: not an IP address");
      o.public_addresses.push_back(*v);
    } else if (a == "--ca-file") {
      o.ca_file = *v;
    } else if (a == "--self-probe") {
      if (!proto::parse_endpoint(*v)) return fail(Errc::kBadInput, "--self-probe: not HOST:PORT");
      o.self_probe = *v;
    } else if (a == "--ntp") {
      o.ntp = *v;
    } else {
      char* end = nullptr;
      const long n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 100 || n > 60000)
        return fail(Errc::kBadInput, "--timeout-ms: an integer 100..60000");
      o.timeout_ms = static_cast<int>(n);
    }
  }
  return o;
}

Result<std::vector<Check>> run_doctor(const DoctorOptions& o) {
  if (const char* off = std::getenv(kClockOffsetEnv); off != nullptr && *off != '\0')
    g_clock_offset_s = std::strtod(off, nullptr);
  auto loaded = supervisor::load_config(o.config_path);
  if (!loaded) return tl::unexpected(loaded.error());
  const supervisor::Config& cfg = *loaded;
  std::vector<Check> checks;
  std::vector<std::string> notes;
  const int tmo = o.timeout_ms;

  // The listeners.
  std::vector<ListenerFacts> lf;
  std::vector<proto::Endpoint> binds;
  for (const auto& l : cfg.listeners) {
    ListenerFacts f;
    f.bind = l.bind;
    f.tls = takes_tls(l.protocols);
    f.other = takes_other(l.protocols);
    const proto::Endpoint to = connectable(l.bind);
    f.probed = proto::format_endpoint(to);
    auto fd = connect_tcp(to, tmo);
    f.accepting = fd.has_value();
    if (!fd) f.error = fd.error().to_string();
    lf.push_back(std::move(f));
    binds.push_back(l.bind);
  }
  checks.push_back(judge_listener(lf));

  // Each fake-TLS domain's mask.
  const std::vector<std::string> domains = fake_tls_domains(cfg, o.domains, notes);
  const std::vector<std::string> ours = public_addresses(cfg, o, tmo);
  const std::set<std::string> local = local_addresses();
  const proto::MaskRoutes routes = supervisor::mask_routes(cfg);
  const auto targets = supervisor::mask_probe_targets(routes, domains);
  std::optional<TlsVisit> date_visit;
  std::string date_domain;
  if (!cfg.mask.enabled) checks.push_back(judge_masking_off());
  if (domains.empty()) {
    Check c;
    c.id = "mask";
    c.verdict = Verdict::kSkip;
    c.reason = "no user has a fake-TLS secret (--domain D checks one anyway)";
    checks.push_back(std::move(c));
  }
  for (const auto& t : targets) {
    const std::string target = proto::format_endpoint(t.endpoint);
    const auto addrs = supervisor::resolve_host(t.endpoint.host);
    Check loop = judge_loop(t.domain, t.endpoint, addrs, local, binds);
    const bool looped = loop.verdict == Verdict::kFail;
    checks.push_back(std::move(loop));
    supervisor::MaskProbeOptions po;
    po.host = t.endpoint.host;
    po.port = t.endpoint.port;
    po.sni = t.domain;
    po.step_timeout_ms = tmo;
    po.handshakes = static_cast<int>(std::clamp<std::uint32_t>(cfg.mask.probe_handshakes, 1, 10));
    po.fetch_response = false;
    po.idle_wait_ms = 0;
    po.bad_wait_ms = 0;
    auto skipped = [&](const char* id, const std::string& why) {
      Check c;
      c.id = id;
      c.subject = t.domain;
      c.verdict = Verdict::kSkip;
      c.reason = why;
      checks.push_back(std::move(c));
    };
    if (looped) {
      for (const char* id : {"mask.tls", "mask.cert", "mask.profile", "mask.latency"})
        skipped(id, "the mask target is this proxy (mask.loop)");
    } else {
      auto one = supervisor::probe_handshake(po);
      checks.push_back(judge_mask_tls(t.domain, target, one));
      if (!one) {
        for (const char* id : {"mask.cert", "mask.profile", "mask.latency"})
          skipped(id, "the mask does not answer TLS 1.3 (mask.tls)");
      } else {
        TlsVisit v = visit_mask(t.endpoint, t.domain, o.ca_file, tmo, now_s);
        checks.push_back(judge_certificate(t.domain, v.cert, now_unix()));
        auto profile = supervisor::probe_mask(po, now_unix());
        checks.push_back(judge_profile(t.domain, profile, stored_profile(cfg, t.domain),
                                       cfg.mask.enabled && cfg.mask.probe, now_unix()));
        proto::LatencySummary lat;
        if (profile) {
          lat = profile->handshake_latency;
        } else {
          lat = {one->latency_ms, one->latency_ms, one->latency_ms};
        }
        checks.push_back(judge_latency(t.domain, lat));
        if (!date_visit && v.http_date) {
          date_visit = v;
          date_domain = t.domain;
        }
      }
    }
    checks.push_back(judge_dns(t.domain, supervisor::resolve_host(t.domain), ours));
  }

  // The clock.
  ClockReading clock;
  if (o.ntp != "none" && !o.ntp.empty()) {
    proto::Endpoint ep{o.ntp, 123};
    if (auto parsed = proto::parse_endpoint(o.ntp)) ep = *parsed;
    auto r = sntp_query(ep, tmo, now_s);
    if (r) {
      clock.have = true;
      clock.source = "ntp " + proto::format_endpoint(ep);
      clock.offset_s = r->offset_s;
      clock.uncertainty_s = r->round_trip_s / 2;
    } else {
      clock.errors.push_back(r.error().context);
    }
  }
  if (!clock.have) {
    if (date_visit) {
      clock.have = true;
      clock.source = "the HTTP Date of " + date_domain;
      clock.offset_s = static_cast<double>(*date_visit->http_date) - date_visit->local_at;
      // The Date names a whole second: up to 1 s plus half the round trip.
      clock.uncertainty_s = 1.0 + date_visit->round_trip_s / 2;
    } else {
      clock.errors.push_back("no mask answered GET / with a Date header");
    }
  }
  checks.push_back(judge_clock(clock, proto::ClockWindow{}.max_skew_seconds));

  // Telegram's DCs, directly.
  proto::DcTable table;
  std::set<int> dc_ids = {1, 2, 3, 4, 5};
  for (const auto& d : cfg.telegram.dc) {
    table.set(d.dc, d.endpoints);
    if (d.dc > 0 && d.dc < 1000) dc_ids.insert(d.dc);
  }
  bool direct_used = cfg.egress.upstreams.empty() || cfg.egress.policy.fallback_direct;
  for (const auto& u : cfg.users)
    if (u.upstreams && u.upstreams->empty()) direct_used = true;
  for (const auto& up : cfg.upstreams)
    if (up.type == proto::UpstreamType::kDirect) direct_used = true;
  const int dc_tmo = std::min<int>(tmo, static_cast<int>(cfg.timeouts.dc_connect_ms));
  std::map<int, proto::Endpoint> dc_first;  // a DC's first address, for the upstream checks
  for (int dc : dc_ids) {
    std::vector<ConnectResult> tries;
    for (const auto& ep : table.lookup(static_cast<std::int16_t>(dc), cfg.telegram.prefer_ipv6)) {
      tries.push_back(try_connect(proto::format_endpoint(ep), ep, dc_tmo));
      if (!dc_first.contains(dc)) dc_first[dc] = ep;
      if (tries.back().ok) break;  // one address that answers is enough
    }
    checks.push_back(judge_dc(dc, tries, direct_used));
  }

  // Through every upstream, with the credentials of a user that uses it.
  for (const auto& up : cfg.upstreams) {
    std::string skip;
    std::optional<proto::UpstreamSpec> spec;
    if (up.type == proto::UpstreamType::kDirect) {
      skip = "a direct upstream: the dc checks cover it";
    } else {
      for (const auto& u : cfg.users) {
        auto e = supervisor::egress_for(cfg, u.name);
        if (!e) continue;
        for (const auto& s : e->upstreams)
          if (s.name == up.name) spec = s;
        if (spec) break;
      }
      if (!spec && (up.auth == supervisor::UpstreamAuth::kNone ||
                    up.auth == supervisor::UpstreamAuth::kFixed)) {
        proto::UpstreamSpec s;
        s.name = up.name;
        s.type = up.type;
        s.address = up.address;
        s.username = up.username;
        s.password = up.password;
        spec = s;
      }
      if (!spec) skip = "no user in the file uses it, and its credentials are per user";
    }
    std::vector<ConnectResult> per_dc;
    if (spec) {
      for (const auto& [dc, first] : dc_first) {
        proto::Endpoint target = first;
        if (spec->type == proto::UpstreamType::kSocks4) {
          // SOCKS4 carries IPv4 only: the DC's first IPv4 address.
          for (const auto& ep : table.lookup(static_cast<std::int16_t>(dc), false))
            if (ep.host.find(':') == std::string::npos) {
              target = ep;
              break;
            }
        }
        ConnectResult r;
        r.what = "dc " + std::to_string(dc) + " " + proto::format_endpoint(target);
        const auto t0 = std::chrono::steady_clock::now();
        auto s = socks_connect(*spec, target, dc_tmo);
        r.ms = elapsed_ms(t0);
        r.ok = s.has_value();
        if (!s) r.error = s.error().context.empty() ? s.error().to_string() : s.error().to_string();
        per_dc.push_back(std::move(r));
      }
    }
    checks.push_back(
        judge_upstream(up.name, std::string(proto::upstream_type_name(up.type)), per_dc, skip));
  }

  // The self-probe.
  {
    std::optional<proto::Endpoint> listener;
    if (!o.self_probe.empty()) {
      listener = *proto::parse_endpoint(o.self_probe);
    } else {
      for (const auto& l : cfg.listeners)
        if (takes_tls(l.protocols) && (!listener || l.bind.port == 443))
          if (!listener || listener->port != 443) listener = connectable(l.bind);
    }
    const std::string domain = domains.empty() ? "" : domains.front();
    const auto mask =
        domain.empty() ? std::nullopt : proto::mask_target(routes, domain, true, std::nullopt);
    Check c;
    c.id = "self_probe";
    if (!listener) {
      c.verdict = Verdict::kSkip;
      c.reason = "no fake-TLS listener to probe (--self-probe HOST:PORT)";
      checks.push_back(std::move(c));
    } else if (!mask) {
      c.subject = proto::format_endpoint(*listener);
      c.verdict = Verdict::kSkip;
      c.reason = "no mask target to compare with (no fake-TLS domain, or masking off)";
      checks.push_back(std::move(c));
    } else {
      ExchangeOptions xo;
      xo.connect_timeout_ms = tmo;
      const auto outcomes = self_probe(*listener, *mask, domain, xo);
      checks.push_back(judge_self_probe(proto::format_endpoint(*listener),
                                        proto::format_endpoint(*mask), outcomes));
    }
  }
  for (const auto& n : notes) {
    Check c;
    c.id = "note";
    c.verdict = Verdict::kSkip;
    c.reason = n;
    checks.push_back(std::move(c));
  }
  return checks;
}

int doctor_main(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(doctor_usage().c_str(), stdout);
      return kExitPass;
    }
  }
  auto o = parse_doctor_args(args);
  if (!o) {
    std::fprintf(stderr, "mtwarden doctor: %s (see mtwarden doctor --help)\n",
                 o.error().context.c_str());
    return kExitUsage;
  }
  auto checks = run_doctor(*o);
  if (!checks) {
    std::fprintf(stderr, "mtwarden doctor: configuration not read: %s\n",
                 checks.error().to_string().c_str());
    return kExitConfig;
  }
  const std::string out = o->json ? format_json(*checks) : format_text(*checks);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return exit_code(*checks);
}

}  // namespace mtw::doctor
