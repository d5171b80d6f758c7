#include "doctor/rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mtw::doctor {

namespace {

std::string hex4(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

std::string fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string lengths(const std::vector<proto::RecordRange>& r) {
  std::vector<std::string> parts;
  for (const auto& x : r)
    parts.push_back(x.min == x.max ? std::to_string(x.min)
                                   : std::to_string(x.min) + "-" + std::to_string(x.max));
  return join(parts, " ");
}

std::string age_text(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + " s";
  if (seconds < 7200) return std::to_string(seconds / 60) + " min";
  if (seconds < 172800) return std::to_string(seconds / 3600) + " h";
  return std::to_string(seconds / 86400) + " days";
}

Check make(std::string id, std::string subject) {
  Check c;
  c.id = std::move(id);
  c.subject = std::move(subject);
  return c;
}

bool is_loopback(const std::string& a) { return a.rfind("127.", 0) == 0 || a == "::1"; }

bool wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

bool same_family(const std::string& a, const std::string& b) {
  return (a.find(':') == std::string::npos) == (b.find(':') == std::string::npos);
}

}  // namespace

Check judge_mask_tls(const std::string& domain, const std::string& target,
                     const base::Result<proto::FlightSample>& seen) {
  Check c = make("mask.tls", domain);
  c.values.emplace_back("target", target);
  if (!seen) {
    c.verdict = Verdict::kFail;
    c.reason = "no TLS 1.3 handshake with the mask " + target + ": " + seen.error().context;
    c.fix =
        "start the mask site or point [mask] address / [mask.domains] at one that answers TLS 1.3 "
        "for this name; until then masked connections are read and dropped, which a prober can "
        "tell from a web server";
    return c;
  }
  const proto::ServerFlight& f = seen->flight;
  c.verdict = Verdict::kPass;
  c.reason = "TLS 1.3 with cipher " + hex4(f.cipher_suite) + " in " +
             std::to_string(seen->latency_ms) + " ms";
  c.values.emplace_back("cipher", hex4(f.cipher_suite));
  c.values.emplace_back("key_share_group", hex4(f.key_share_group));
  return c;
}

Check judge_certificate(const std::string& domain, const CertFacts& cert, std::int64_t now) {
  Check c = make("mask.cert", domain);
  if (!cert.connected) {
    c.verdict = Verdict::kSkip;
    c.reason = "no TLS connection to look at the certificate: " + cert.error;
    return c;
  }
  c.values.emplace_back("names", join(cert.names));
  c.values.emplace_back("days_left", std::to_string((cert.not_after - now) / 86400));
  const std::string fix_name =
      "mask with a server whose certificate is valid for " + domain +
      " (the site itself, or your own copy with a real certificate via [mask.domains]); a "
      "prober that connects with this SNI sees what a browser would refuse";
  if (!cert.name_matches) {
    c.verdict = Verdict::kFail;
    c.reason = "the certificate is for " + (cert.names.empty() ? "no name" : join(cert.names)) +
               ", not " + domain;
    c.fix = fix_name;
  } else if (now >= cert.not_after) {
    c.verdict = Verdict::kFail;
    c.reason = "the certificate expired " + age_text(now - cert.not_after) + " ago";
    c.fix = fix_name;
  } else if (now < cert.not_before) {
    c.verdict = Verdict::kFail;
    c.reason = "the certificate is not valid for another " + age_text(cert.not_before - now) +
               " (or this host's clock is behind)";
    c.fix = fix_name;
  } else if (!cert.chain_trusted) {
    c.verdict = Verdict::kWarn;
    c.reason = "the certificate names " + domain + " but is not signed by a trusted CA (" +
               cert.verify_error + ")";
    c.fix =
        "a certificate from a public CA (e.g. Let's Encrypt); a self-signed mask stands out. "
        "--ca-file trusts a private CA for this check";
  } else if (cert.not_after - now < kCertWarnDays * 86400) {
    c.verdict = Verdict::kWarn;
    c.reason = "the certificate expires in " + age_text(cert.not_after - now);
    c.fix = "renew the mask site's certificate";
  } else {
    c.verdict = Verdict::kPass;
    c.reason = "valid for " + domain + ", trusted, " +
               std::to_string((cert.not_after - now) / 86400) + " days left";
  }
  return c;
}

Check judge_profile(const std::string& domain, const base::Result<proto::TlsProfile>& measured,
                    const StoredProfile& stored, bool probing_enabled, std::int64_t now) {
  Check c = make("mask.profile", domain);
  std::string in_use;
  if (stored.present) {
    in_use = "the daemon answers with the stored profile measured " +
             age_text(now - stored.profile.measured_at) + " ago";
    c.values.emplace_back("stored", "measured_at " + std::to_string(stored.profile.measured_at) +
                                        ", flight " + lengths(stored.profile.encrypted_records));
  } else {
    in_use = "no profile stored yet: the daemon answers with the built-in profile";
    c.values.emplace_back("stored", stored.error.empty() ? "none" : "unusable: " + stored.error);
  }
  if (!measured) {
    c.verdict = Verdict::kWarn;
    c.reason = "the mask could not be profiled (" + measured.error().context + "); " + in_use;
    c.fix =
        "a mask that answers every handshake the same way (one TLS 1.3 server, not a load "
        "balancer mixing configurations)";
    return c;
  }
  const proto::TlsProfile& p = *measured;
  const proto::RecordRange wire = proto::flight_wire_range(p);
  const std::size_t n = p.encrypted_records.size();
  c.values.emplace_back("records", std::to_string(n));
  c.values.emplace_back("flight", lengths(p.encrypted_records));
  c.values.emplace_back("flight_wire_bytes",
                        std::to_string(wire.min) + "-" + std::to_string(wire.max));
  c.values.emplace_back("ccs", std::to_string(p.ccs_count));
  std::string shape = n == 1 ? "a single-record first flight"
                             : "a multi-record first flight (" + std::to_string(n) + " records)";
  shape += " of " + std::to_string(wire.min) +
           (wire.max == wire.min ? "" : "-" + std::to_string(wire.max)) + " bytes";
  if (wire.min > proto::kMaxProfileRecord + 5 * n) {
    c.verdict = Verdict::kWarn;
    c.reason = "the mask sends " + shape +
               ", more than one fake-TLS record can carry (16640 bytes): answers are smaller";
    c.fix = "a mask with a shorter certificate chain (ECDSA, one intermediate)";
    return c;
  }
  if (!stored.present) {
    c.verdict = Verdict::kWarn;
    c.reason = "the mask sends " + shape + "; " + in_use +
               (probing_enabled ? " until its first good probe" : " ([mask] probe = false)");
    c.fix = probing_enabled ? "start mtwarden (it probes each domain at start) and run doctor again"
                            : "[mask] probe = true";
    return c;
  }
  const proto::TlsProfile& s = stored.profile;
  const bool same_hello = s.legacy_version == p.legacy_version &&
                          s.cipher_suite == p.cipher_suite && s.extensions == p.extensions &&
                          s.ccs_count == p.ccs_count;
  const proto::RecordRange swire = proto::flight_wire_range(s);
  const bool overlap = swire.min <= wire.max + 16 && wire.min <= swire.max + 16;
  if (!same_hello || !overlap) {
    c.verdict = Verdict::kWarn;
    c.reason = "the mask sends " + shape + " now, but " + in_use + " and it differs (" +
               (same_hello ? "flight size" : "ServerHello fields") + ")";
    c.fix = "the daemon re-probes after [mask] probe_interval_s; restart it to probe now";
    return c;
  }
  c.verdict = Verdict::kPass;
  c.reason = "the mask sends " + shape + "; " + in_use + " and it matches" +
             (n > 1 ? " (sent as one record of the same size: Telegram clients read one)" : "");
  return c;
}

Check judge_latency(const std::string& domain, const proto::LatencySummary& l) {
  Check c = make("mask.latency", domain);
  c.values.emplace_back("handshake_ms", std::to_string(l.min_ms) + " / " +
                                            std::to_string(l.median_ms) + " / " +
                                            std::to_string(l.max_ms) + " (min / median / max)");
  if (l.median_ms > kLatencyWarnMs) {
    c.verdict = Verdict::kWarn;
    c.reason = "a handshake with the mask takes " + std::to_string(l.median_ms) +
               " ms from here: masked connections pay that on top of the client's own path, "
               "which a prober timing both can see";
    c.fix =
        "a mask close to this host (same network), or a local copy of the site "
        "([mask.domains])";
  } else {
    c.verdict = Verdict::kPass;
    c.reason = "median handshake " + std::to_string(l.median_ms) + " ms from here";
  }
  return c;
}

Check judge_dns(const std::string& domain, const base::Result<std::vector<std::string>>& resolved,
                const std::vector<std::string>& ours) {
  Check c = make("dns", domain);
  c.values.emplace_back("this_host", join(ours));
  if (!resolved) {
    c.verdict = Verdict::kWarn;
    c.reason = domain + " does not resolve here (" + resolved.error().context + ")";
    c.fix = "a fake-TLS domain that exists in public DNS, ideally pointing at this host";
    return c;
  }
  c.values.emplace_back("resolves_to", join(*resolved));
  for (const auto& a : *resolved) {
    if (std::find(ours.begin(), ours.end(), a) != ours.end()) {
      c.verdict = Verdict::kPass;
      c.reason = domain + " resolves to this host (" + a + "): the SNI matches the destination";
      return c;
    }
  }
  c.verdict = Verdict::kWarn;
  c.reason = domain + " resolves to " + join(*resolved) + ", not to this host (" +
             (ours.empty() ? "address unknown" : join(ours)) +
             "): a censor comparing the SNI's addresses with the destination sees a mismatch, "
             "and a popular domain on a foreign address is a known blocking rule";
  c.fix =
      "a domain of your own whose A/AAAA records point at this host, masked to its real "
      "site ([mask.domains]); --public-address if this host is behind NAT";
  return c;
}

Check judge_clock(const ClockReading& r, std::int64_t window_s) {
  Check c = make("clock", "");
  c.values.emplace_back("window_s", std::to_string(window_s));
  if (!r.have) {
    c.verdict = Verdict::kWarn;
    c.reason = "no reference clock answered (" + join(r.errors, "; ") + ")";
    c.fix = "keep the clock synchronised (systemd-timesyncd, chrony); fake-TLS hellos more than " +
            std::to_string(window_s) + " s off are refused";
    return c;
  }
  c.values.emplace_back("source", r.source);
  c.values.emplace_back("offset_s", fixed1(r.offset_s));
  const double off = std::fabs(r.offset_s);
  const std::string said = "this host's clock is " + fixed1(off) + " s " +
                           (r.offset_s >= 0 ? "behind " : "ahead of ") + r.source;
  c.fix = "synchronise the clock (systemd-timesyncd, chrony, ntpsec)";
  if (off <= kClockPassS + r.uncertainty_s) {
    c.verdict = Verdict::kPass;
    c.reason = said + ", within the +-" + std::to_string(window_s) + " s timestamp window";
    c.fix.clear();
  } else if (off < static_cast<double>(window_s) / 2) {
    c.verdict = Verdict::kWarn;
    c.reason = said + ": clients whose own clock is off the other way by " +
               std::to_string(window_s - static_cast<std::int64_t>(off)) +
               " s are refused (timestamp window +-" + std::to_string(window_s) + " s)";
  } else {
    c.verdict = Verdict::kFail;
    c.reason = said + ": " + (off >= static_cast<double>(window_s) ? "every" : "many") +
               " fake-TLS clients' timestamps fall outside the +-" + std::to_string(window_s) +
               " s window and are masked instead of served";
  }
  return c;
}

Check judge_listener(const std::vector<ListenerFacts>& listeners) {
  Check c = make("listener", "");
  const ListenerFacts* on443 = nullptr;
  for (const auto& l : listeners) {
    c.values.emplace_back(proto::format_endpoint(l.bind),
                          std::string(l.tls ? "tls" : "") + (l.tls && l.other ? "+" : "") +
                              (l.other ? "obfuscated2" : "") + ", " +
                              (l.accepting ? "accepting" : "not accepting: " + l.error));
    if (l.bind.port == 443 && l.tls && (!on443 || (on443->other && !l.other))) on443 = &l;
  }
  if (!on443) {
    c.verdict = Verdict::kWarn;
    c.reason = "no fake-TLS listener on port 443: TLS to another port is rare and stands out";
    c.fix = "[[listener]] bind = \"0.0.0.0:443\", protocols = [\"tls\"]";
    return c;
  }
  const std::string where = proto::format_endpoint(on443->bind);
  if (!on443->accepting) {
    c.verdict = Verdict::kWarn;
    c.reason = "nothing accepts connections at " + on443->probed + " (" + on443->error +
               "): mtwarden not running, or a firewall in the way";
    c.fix = "start mtwarden (systemctl start mtwarden) and run doctor again";
    return c;
  }
  if (on443->other) {
    c.verdict = Verdict::kWarn;
    c.reason = where +
               " also accepts classic/dd clients, so it waits for 64 bytes before it "
               "masks: a short probe meets silence where a web server would answer";
    c.fix = "protocols = [\"tls\"] on 443; classic or dd clients on a listener of their own";
    return c;
  }
  c.verdict = Verdict::kPass;
  c.reason = "fake TLS only on " + where + ", accepting connections";
  return c;
}

Check judge_loop(const std::string& domain, const proto::Endpoint& target,
                 const base::Result<std::vector<std::string>>& addrs,
                 const std::set<std::string>& local,
                 const std::vector<proto::Endpoint>& listeners) {
  Check c = make("mask.loop", domain);
  c.values.emplace_back("target", proto::format_endpoint(target));
  if (!addrs) {
    c.verdict = Verdict::kSkip;
    c.reason = "the target does not resolve (" + addrs.error().context + ")";
    return c;
  }
  for (const auto& a : *addrs) {
    if (!local.contains(a) && !is_loopback(a)) continue;
    for (const auto& l : listeners) {
      if (l.port != target.port) continue;
      if (!(l.host == a || (wildcard(l.host) && same_family(l.host, a)))) continue;
      c.verdict = Verdict::kFail;
      c.reason = "the mask target " + proto::format_endpoint(target) + " is this host (" + a +
                 ") at the port of listener " + proto::format_endpoint(l) +
                 ": masked connections would come back into the proxy (they are dropped "
                 "instead)";
      c.fix = "serve the real site on another port or address and point [mask.domains] \"" +
              domain + "\" (or [mask] address) at it";
      return c;
    }
  }
  c.verdict = Verdict::kPass;
  c.reason = "the target " + proto::format_endpoint(target) + " (" + join(*addrs) +
             ") is not one of this proxy's listeners";
  return c;
}

Check judge_dc(int dc, const std::vector<ConnectResult>& tries, bool direct_used) {
  Check c = make("dc", "dc " + std::to_string(dc));
  std::vector<std::string> bad;
  const ConnectResult* good = nullptr;
  for (const auto& t : tries) {
    c.values.emplace_back(t.what, t.ok ? "ok " + std::to_string(t.ms) + " ms" : t.error);
    if (t.ok && !good) good = &t;
    if (!t.ok) bad.push_back(t.what);
  }
  if (good) {
    c.verdict = Verdict::kPass;
    c.reason = "reachable directly at " + good->what + " (" + std::to_string(good->ms) + " ms)";
    return c;
  }
  c.verdict = direct_used ? Verdict::kFail : Verdict::kWarn;
  c.reason = "not reachable directly from this host (" + join(bad) + ")" +
             (direct_used ? "" : "; no user dials directly");
  c.fix =
      "check routing and firewalls towards Telegram, [telegram] dc overrides, or send users "
      "through an [[upstream]] that reaches it";
  return c;
}

Check judge_upstream(const std::string& name, const std::string& type,
                     const std::vector<ConnectResult>& per_dc, const std::string& skip_reason) {
  Check c = make("upstream", name);
  c.values.emplace_back("type", type);
  if (!skip_reason.empty()) {
    c.verdict = Verdict::kSkip;
    c.reason = skip_reason;
    return c;
  }
  std::vector<std::string> bad;
  for (const auto& t : per_dc) {
    c.values.emplace_back(t.what, t.ok ? "ok " + std::to_string(t.ms) + " ms" : t.error);
    if (!t.ok) bad.push_back(t.what);
  }
  if (bad.empty()) {
    c.verdict = Verdict::kPass;
    c.reason = "every DC (" + std::to_string(per_dc.size()) + ") reached through it";
    return c;
  }
  std::string first_error;
  for (const auto& t : per_dc)
    if (!t.ok) {
      first_error = t.error;
      break;
    }
  const bool none = bad.size() == per_dc.size();
  c.verdict = none ? Verdict::kFail : Verdict::kWarn;
  c.reason =
      (none ? std::string("no DC reached through it") : "not reached through it: " + join(bad)) +
      " (" + first_error + ")";
  c.fix =
      "start the SOCKS server, check its address, credentials ([[upstream]] auth) and that "
      "it may connect to Telegram";
  return c;
}

}  // namespace mtw::doctor
