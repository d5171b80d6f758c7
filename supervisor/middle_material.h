// The middle proxies' material (protocol.md §8): the binary proxy secret and
// proxy-multi.conf for IPv4 and IPv6, each from a configured source (an
// http(s) URL, Telegram's published ones by default, or a local file). The
// supervisor fetches them at start and on a schedule; every download is
// validated before it replaces anything, so a bad or truncated one keeps
// the last good copy, and every good copy is written to the state
// directory, so a restart without network starts from the stored files.
//
// MiddleMaterial owns the current copies, their files and the refresh
// counters. Fetching goes through MaterialFetcher (http(s) lives in api/,
// above this layer; tests fake it). Not thread-safe: one thread (the
// supervisor's io_context); the fetcher's callbacks must come back on it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/bytes.h"
#include "proto/rpc.h"

namespace mtw::supervisor {

// One ad tag as the configuration, the API and the store write it: 32 hex
// digits (either case). kBadInput "ad_tag must be 32 hex digits" otherwise.
// The one place that validates a tag's text.
[[nodiscard]] base::Result<proto::AdTag> parse_ad_tag(std::string_view text);
std::string format_ad_tag(const proto::AdTag& tag);  // 32 lower-case hex digits

// Which tag a user's connections carry (the worker's Middle message): the
// user's own tag for every listener; else each listener's tag, falling back
// to the global one. listener_tags is indexed by listener id and left empty
// when every listener would use default_tag. Pure.
struct TagRouting {
  std::optional<proto::AdTag> default_tag;
  std::vector<std::optional<proto::AdTag>> listener_tags;
  bool any() const noexcept;  // some connection goes through the middle proxies
  friend bool operator==(const TagRouting&, const TagRouting&) = default;
};
TagRouting tag_routing(const std::optional<proto::AdTag>& user,
                       const std::vector<std::optional<proto::AdTag>>& listeners,
                       const std::optional<proto::AdTag>& global);

// A user's mode as its status shows it. kDirect: no tag routes any of its
// connections. kFallback: a tag does, but new tagged connections go direct
// now: the worker reports a cluster in its fail-fast window (its
// middle_down gauge; only with [middle] fallback on) or no material is at
// hand yet. kMiddle: tagged connections go through the middle proxies.
// Pure.
enum class MiddleMode { kDirect, kMiddle, kFallback };
inline constexpr MiddleMode kMiddleModes[] = {MiddleMode::kDirect, MiddleMode::kMiddle,
                                              MiddleMode::kFallback};
MiddleMode middle_mode(bool tagged, bool material_ready, bool fallback_enabled,
                       std::uint64_t clusters_down) noexcept;
std::string_view middle_mode_name(MiddleMode m) noexcept;  // "direct", "middle", "fallback"

// The address the workers give the middle-proxy key derivation as ours
// ([middle] public_ip, docs/configuration.md). The middle proxy derives the
// keys from the address it sees, and the cells leave through NAT, so a
// cell's own address would make every handshake fail. In order: the
// configured one; the address [server] public_host_lookup found (what the
// outside sees of this host); [server] public_host when it is an IP
// address; else "" (the worker uses the connection's local address, right
// only without NAT). Pure.
std::string middle_public_ip(std::string_view configured, std::string_view public_host,
                             std::string_view looked_up);

enum class MaterialKind { kSecret, kConfigV4, kConfigV6 };
inline constexpr std::size_t kMaterialKinds = 3;
std::string_view material_name(MaterialKind k) noexcept;  // "proxy_secret", "proxy_config", ...
// The file under the material directory: "proxy-secret", "proxy-multi.conf",
// "proxy-multi-v6.conf".
std::string_view material_file(MaterialKind k) noexcept;

// Pure: whether `bytes` is a usable copy of `k` (the secret: 32..256 bytes,
// not text; a config: parses for its address family, has a proxy_for).
// kBadInput/kTooLarge with the reason, never the secret's bytes.
[[nodiscard]] base::Result<void> validate_material(MaterialKind k, std::string_view bytes);

// Where a source points: an http:// or https:// URL, or an absolute path of
// a local file. "" = not used (only the IPv6 config may be unused).
struct MaterialSource {
  enum class Type { kNone, kUrl, kFile };
  Type type = Type::kNone;
  std::string where;
  friend bool operator==(const MaterialSource&, const MaterialSource&) = default;
};
// kBadInput with the reason for anything else (a relative path, ftp://, a
// malformed URL). The config loader calls it, so a bad source never starts.
[[nodiscard]] base::Result<MaterialSource> parse_material_source(std::string_view text);

inline constexpr std::string_view kDefaultSecretUrl = "https://core.telegram.org/getProxySecret";
inline constexpr std::string_view kDefaultConfigUrl = "https://core.telegram.org/getProxyConfig";
inline constexpr std::string_view kDefaultConfigV6Url =
    "https://core.telegram.org/getProxyConfigV6";

// Downloads one URL. `done` is called exactly once, on the caller's thread,
// with the body of a 200 answer (at most `max_bytes`) or an error. The
// fetcher must outlive every fetch in flight.
class MaterialFetcher {
 public:
  using Done = std::function<void(base::Result<std::string>)>;
  virtual ~MaterialFetcher() = default;
  virtual void fetch(const std::string& url, std::size_t max_bytes, Done done) = 0;
};

// A snapshot for the workers: shared and immutable, so a push holds no
// reference into MiddleMaterial.
struct MaterialCopy {
  proto::Bytes secret;
  std::string config_v4;         // empty: none yet
  std::string config_v6;         // empty: none (or no source)
  std::uint64_t generation = 0;  // increases with every change
};

struct MaterialStats {
  std::uint64_t refreshes = 0;         // refresh rounds finished
  std::uint64_t refresh_failures = 0;  // sources that failed (fetch, validation or store)
  std::int64_t last_change_at = 0;     // unix seconds a copy last changed (0: never)
  std::int64_t last_success_at = 0;    // unix seconds every used source last succeeded
  std::string last_error;              // the latest failure, "" after a clean round
};

class MiddleMaterial {
 public:
  // `dir`: where the good copies are kept (created by load_stored when
  // missing, mode 0700: the secret is in it).
  MiddleMaterial(std::string dir, std::array<MaterialSource, kMaterialKinds> sources);

  // Reads the stored copies, each validated (a bad stored file is ignored
  // and logged). kSyscall when `dir` cannot be created.
  [[nodiscard]] base::Result<void> load_stored();

  // Offers fresh bytes for `k`: validated, stored (write_file_atomic) and
  // made current. Returns true when they differ from the current copy.
  // On error the current copy and its file stay as they were.
  [[nodiscard]] base::Result<bool> offer(MaterialKind k, std::string bytes, std::int64_t now);

  // One refresh round: every used source, URLs through `fetcher`, files read
  // here. `done(changed)` runs once all sources answered (on the fetcher's
  // thread for URLs). A round already in progress: `done(false)` at once.
  void refresh(MaterialFetcher& fetcher, std::int64_t now, std::function<void(bool)> done);

  // A secret and a config for at least one family.
  bool ready() const noexcept;
  std::shared_ptr<const MaterialCopy> current() const { return current_; }
  const MaterialStats& stats() const noexcept { return stats_; }
  const MaterialSource& source(MaterialKind k) const {
    return sources_[static_cast<std::size_t>(k)];
  }

 private:
  struct Round;
  void finish_source(const std::shared_ptr<Round>& round, MaterialKind k,
                     base::Result<std::string> got);
  void end_source(const std::shared_ptr<Round>& round);

  std::string dir_;
  std::array<MaterialSource, kMaterialKinds> sources_;
  std::shared_ptr<const MaterialCopy> current_;
  MaterialStats stats_;
  bool refreshing_ = false;
};

}  // namespace mtw::supervisor
