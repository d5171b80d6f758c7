// See middle_material.h.
#include "supervisor/middle_material.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "base/file.h"
#include "base/ip_set.h"
#include "base/log.h"
#include "base/url.h"
#include "proto/proxy_config.h"

namespace mtw::supervisor {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("middle");
  return l;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A stored or local file: at most `max` bytes (a bigger one is not ours).
base::Result<std::string> read_file(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::fail_errno("open " + path);
  std::string data;
  data.resize(max + 1);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) return base::fail_errno("read " + path);
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (data.size() > max) return base::fail(base::Errc::kTooLarge, path + ": file too large");
  return data;
}

std::size_t max_bytes(MaterialKind k) {
  return k == MaterialKind::kSecret ? proto::kMaxProxySecretBytes : proto::kMaxProxyConfigBytes;
}

}  // namespace

base::Result<proto::AdTag> parse_ad_tag(std::string_view text) {
  proto::AdTag tag{};
  if (text.size() != 2 * tag.size())
    return base::fail(base::Errc::kBadInput, "ad_tag must be 32 hex digits");
  for (std::size_t i = 0; i < tag.size(); ++i) {
    const int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return base::fail(base::Errc::kBadInput, "ad_tag must be 32 hex digits");
    tag[i] = std::byte(static_cast<unsigned>(hi * 16 + lo));
  }
  return tag;
}

std::string format_ad_tag(const proto::AdTag& tag) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(32);
  for (auto b : tag) {
    const auto v = std::to_integer<unsigned>(b);
    s += kHex[v >> 4];
    s += kHex[v & 15];
  }
  return s;
}

bool TagRouting::any() const noexcept {
  if (default_tag) return true;
  for (const auto& t : listener_tags)
    if (t) return true;
  return false;
}

MiddleMode middle_mode(bool tagged, bool material_ready, bool fallback_enabled,
                       std::uint64_t clusters_down) noexcept {
  if (!tagged) return MiddleMode::kDirect;
  // Without material a worker relays tagged clients direct; without
  // fallback a failing cluster's clients are closed, not sent direct.
  if (!material_ready || (fallback_enabled && clusters_down != 0)) return MiddleMode::kFallback;
  return MiddleMode::kMiddle;
}

std::string middle_public_ip(std::string_view configured, std::string_view public_host,
                             std::string_view looked_up) {
  if (!configured.empty()) return std::string(configured);
  if (base::parse_ip(looked_up)) return std::string(looked_up);
  if (base::parse_ip(public_host)) return std::string(public_host);
  return {};
}

std::string_view middle_mode_name(MiddleMode m) noexcept {
  switch (m) {
    case MiddleMode::kMiddle:
      return "middle";
    case MiddleMode::kFallback:
      return "fallback";
    case MiddleMode::kDirect:
      break;
  }
  return "direct";
}

TagRouting tag_routing(const std::optional<proto::AdTag>& user,
                       const std::vector<std::optional<proto::AdTag>>& listeners,
                       const std::optional<proto::AdTag>& global) {
  TagRouting r;
  if (user) {
    r.default_tag = user;
    return r;
  }
  r.default_tag = global;
  bool differs = false;
  for (const auto& l : listeners) differs = differs || (l && l != global);
  if (!differs) return r;
  for (const auto& l : listeners) r.listener_tags.push_back(l ? l : global);
  return r;
}

std::string_view material_name(MaterialKind k) noexcept {
  switch (k) {
    case MaterialKind::kSecret:
      return "proxy_secret";
    case MaterialKind::kConfigV4:
      return "proxy_config";
    case MaterialKind::kConfigV6:
      return "proxy_config_v6";
  }
  return "?";
}

std::string_view material_file(MaterialKind k) noexcept {
  switch (k) {
    case MaterialKind::kSecret:
      return "proxy-secret";
    case MaterialKind::kConfigV4:
      return "proxy-multi.conf";
    case MaterialKind::kConfigV6:
      return "proxy-multi-v6.conf";
  }
  return "?";
}

base::Result<void> validate_material(MaterialKind k, std::string_view bytes) {
  if (k == MaterialKind::kSecret) {
    const auto* p = reinterpret_cast<const std::byte*>(bytes.data());
    return proto::validate_proxy_secret(proto::ByteSpan(p, bytes.size()));
  }
  auto cfg = proto::parse_proxy_config(
      bytes, k == MaterialKind::kConfigV4 ? proto::IpFamily::kV4 : proto::IpFamily::kV6);
  if (!cfg) return tl::unexpected(cfg.error());
  return {};
}

base::Result<MaterialSource> parse_material_source(std::string_view text) {
  if (text.empty()) return MaterialSource{};
  if (text.starts_with("/")) {
    if (text.find('\0') != std::string_view::npos)
      return base::fail(base::Errc::kBadInput, "a file path must not contain NUL");
    return MaterialSource{MaterialSource::Type::kFile, std::string(text)};
  }
  if (text.starts_with("http://") || text.starts_with("https://")) {
    auto u = base::parse_http_url(text);
    if (!u) return base::fail(base::Errc::kBadInput, u.error().context);
    return MaterialSource{MaterialSource::Type::kUrl, std::string(text)};
  }
  return base::fail(base::Errc::kBadInput,
                    "want an http:// or https:// URL or an absolute file path");
}

MiddleMaterial::MiddleMaterial(std::string dir, std::array<MaterialSource, kMaterialKinds> sources)
    : dir_(std::move(dir)),
      sources_(std::move(sources)),
      current_(std::make_shared<const MaterialCopy>()) {}

base::Result<void> MiddleMaterial::load_stored() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return base::fail_errno("mkdir " + dir_);
  auto next = std::make_shared<MaterialCopy>(*current_);
  for (auto k : {MaterialKind::kSecret, MaterialKind::kConfigV4, MaterialKind::kConfigV6}) {
    const std::string path = dir_ + "/" + std::string(material_file(k));
    auto data = read_file(path, max_bytes(k));
    if (!data) {
      if (data.error().sys_errno != ENOENT)
        log()->warn("stored material unreadable file={} error={}", path, data.error().to_string());
      continue;
    }
    if (auto v = validate_material(k, *data); !v) {
      log()->warn("stored material ignored file={} error={}", path, v.error().to_string());
      continue;
    }
    if (k == MaterialKind::kSecret) {
      const auto* p = reinterpret_cast<const std::byte*>(data->data());
      next->secret.assign(p, p + data->size());
    } else {
      (k == MaterialKind::kConfigV4 ? next->config_v4 : next->config_v6) = std::move(*data);
    }
  }
  ++next->generation;
  current_ = std::move(next);
  log()->info("stored material loaded dir={} secret={} config_v4={} config_v6={}", dir_,
              !current_->secret.empty(), !current_->config_v4.empty(),
              !current_->config_v6.empty());
  return {};
}

base::Result<bool> MiddleMaterial::offer(MaterialKind k, std::string bytes, std::int64_t now) {
  if (auto v = validate_material(k, bytes); !v) return tl::unexpected(v.error());
  const auto* p = reinterpret_cast<const std::byte*>(bytes.data());
  const bool same =
      k == MaterialKind::kSecret
          ? current_->secret.size() == bytes.size() &&
                std::equal(current_->secret.begin(), current_->secret.end(), p)
          : (k == MaterialKind::kConfigV4 ? current_->config_v4 : current_->config_v6) == bytes;
  if (same) return false;
  const std::string path = dir_ + "/" + std::string(material_file(k));
  if (auto w = base::write_file_atomic(path, bytes, 0600, base::Durability::kFsync); !w)
    return tl::unexpected(w.error());
  auto next = std::make_shared<MaterialCopy>(*current_);
  if (k == MaterialKind::kSecret)
    next->secret.assign(p, p + bytes.size());
  else
    (k == MaterialKind::kConfigV4 ? next->config_v4 : next->config_v6) = std::move(bytes);
  ++next->generation;
  current_ = std::move(next);
  stats_.last_change_at = now;
  return true;
}

bool MiddleMaterial::ready() const noexcept {
  return !current_->secret.empty() &&
         (!current_->config_v4.empty() || !current_->config_v6.empty());
}

struct MiddleMaterial::Round {
  std::int64_t now = 0;
  std::size_t pending = 0;
  bool changed = false;
  bool failed = false;
  std::function<void(bool)> done;
};

void MiddleMaterial::refresh(MaterialFetcher& fetcher, std::int64_t now,
                             std::function<void(bool)> done) {
  if (refreshing_) {
    done(false);
    return;
  }
  refreshing_ = true;
  auto round = std::make_shared<Round>();
  round->now = now;
  round->done = std::move(done);
  // One extra count held by this loop: a fetcher answering synchronously
  // cannot end the round before every source was started.
  round->pending = 1;
  for (auto k : {MaterialKind::kSecret, MaterialKind::kConfigV4, MaterialKind::kConfigV6}) {
    const auto& src = sources_[static_cast<std::size_t>(k)];
    if (src.type == MaterialSource::Type::kNone) continue;
    ++round->pending;
    if (src.type == MaterialSource::Type::kFile) {
      finish_source(round, k, read_file(src.where, max_bytes(k)));
    } else {
      fetcher.fetch(src.where, max_bytes(k), [this, round, k](base::Result<std::string> got) {
        finish_source(round, k, std::move(got));
      });
    }
  }
  end_source(round);
}

void MiddleMaterial::finish_source(const std::shared_ptr<Round>& round, MaterialKind k,
                                   base::Result<std::string> got) {
  const auto& src = sources_[static_cast<std::size_t>(k)];
  base::Result<bool> r =
      got ? offer(k, std::move(*got), round->now) : base::Result<bool>(tl::unexpected(got.error()));
  if (!r) {
    round->failed = true;
    ++stats_.refresh_failures;
    stats_.last_error = std::string(material_name(k));
    stats_.last_error += ": ";
    stats_.last_error += r.error().to_string();
    // The previous copy stays: say so, the operator wants to know it is aging.
    log()->warn("middle material refresh failed what={} source={} error={} kept=previous",
                material_name(k), src.where, r.error().to_string());
  } else if (*r) {
    round->changed = true;
    log()->info("middle material updated what={} source={}", material_name(k), src.where);
  }
  end_source(round);
}

void MiddleMaterial::end_source(const std::shared_ptr<Round>& round) {
  if (--round->pending != 0) return;
  refreshing_ = false;
  ++stats_.refreshes;
  if (!round->failed) {
    stats_.last_success_at = round->now;
    stats_.last_error.clear();
  }
  auto done = std::move(round->done);
  done(round->changed);
}

}  // namespace mtw::supervisor
