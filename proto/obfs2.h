// obfuscated2: the 64-byte init a client sends, and the one the proxy sends
// to a Telegram DC. See ../shared/docs/protocol.md §2-3. Pure, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "proto/aes_ctr.h"
#include "proto/bytes.h"
#include "proto/random.h"
#include "proto/secret.h"

namespace mtw::proto {

inline constexpr std::size_t kInitSize = 64;

// The protocol tag at init offset 56 (decrypted), as a LE u32.
enum class ProtoTag : std::uint32_t {
  kAbridged = 0xefefefef,
  kIntermediate = 0xeeeeeeee,
  kPadded = 0xdddddddd,
};

// Keys a proxy derives from a client's init with secret K:
//   decrypt (client->proxy) = SHA256(H[8..40) ‖ K), H[40..56)
//   encrypt (proxy->client) = SHA256(R[0..32) ‖ K), R[32..48), R = reverse(H[8..56))
struct ClientInit {
  CipherParams decrypt;
  CipherParams encrypt;
  ProtoTag tag = ProtoTag::kPadded;
  std::int16_t dc = 0;  // signed: negative = media; +10000 = test; 203 = CDN
};

// The decrypted init bytes 56..64 for `secret`, raw: tag (LE u32) and DC
// (LE int16), unchecked. Costs one SHA-256 block and one AES block (only the
// keystream block covering bytes 48..64 is computed: counter = IV + 3) and
// allocates nothing after a thread's first call; identify() runs this per
// candidate secret and parse_client_init() only for the one whose tag is known.
// Aborts (MTW_CHECK) only if OpenSSL cannot set up a cipher context.
struct InitTail {
  std::uint32_t tag = 0;
  std::int16_t dc = 0;
};
[[nodiscard]] InitTail peek_client_init(std::span<const std::byte, kInitSize> init,
                                        const SecretKey& secret);
// True for ef/ee/dd.
[[nodiscard]] bool is_known_tag(std::uint32_t tag) noexcept;

// Derives both keys and decrypts the tag and DC (peek_client_init() plus the
// encrypt key, which is derived only once the tag is known). Errors:
// kBadHandshake when the tag is not one of ef/ee/dd (wrong secret or not
// MTProxy). Like peek_client_init(), aborts if OpenSSL cannot allocate.
// The caller's decrypt stream must then skip the first 64 keystream bytes;
// make_client_streams() does that.
[[nodiscard]] Result<ClientInit> parse_client_init(std::span<const std::byte, kInitSize> init,
                                                   const SecretKey& secret);

struct Streams {
  AesCtr decrypt;  // positioned after the 64 init bytes
  AesCtr encrypt;  // positioned at offset 0
};
// Streams for a parsed client init (decrypt already advanced past the init).
[[nodiscard]] Result<Streams> make_client_streams(const ClientInit& init);

// The init the proxy sends to a DC (direct mode): random bytes with the
// forbidden prefixes rerolled, the client's tag at 56, `dc` at 60, and no
// secret in the key derivation. `wire` is what goes on the socket
// (H[0..56) ‖ Enc(H)[56..64)).
//   encrypt (proxy->DC) = H[8..40), H[40..56)
//   decrypt (DC->proxy) = R[0..32), R[32..48), R = reverse(H[8..56))
// Fast mode: `fast_client_encrypt` puts reverse(key ‖ iv) of the client's
// encrypt params into H[8..56), so the DC's stream toward the proxy equals the
// proxy's stream toward the client and DC->client bytes pass unchanged.
struct DcInit {
  std::array<std::byte, kInitSize> wire{};
  CipherParams encrypt;
  CipherParams decrypt;
};
[[nodiscard]] DcInit build_dc_init(ProtoTag tag, std::int16_t dc, RandomSource& rnd,
                                   const CipherParams* fast_client_encrypt = nullptr);
// Streams for a DC init: encrypt advanced past the 64 init bytes, decrypt at 0.
[[nodiscard]] Result<Streams> make_dc_streams(const DcInit& init);

// Client side (tests, benchmarks, our own probes): a valid client init for
// `secret` with the given tag and DC; returns the wire bytes and the client's
// cipher params. make_client_side_streams() turns them into streams.
struct ClientSideInit {
  std::array<std::byte, kInitSize> wire{};
  CipherParams encrypt;  // client->proxy
  CipherParams decrypt;  // proxy->client
};
[[nodiscard]] ClientSideInit build_client_init(const SecretKey& secret, ProtoTag tag,
                                               std::int16_t dc, RandomSource& rnd);
// The client's streams: encrypt advanced past the 64 init bytes, decrypt at 0.
[[nodiscard]] Result<Streams> make_client_side_streams(const ClientSideInit& init);

// True if the first bytes of a generated init would be mistaken for another
// protocol (HTTP verbs, TLS, the 0xef abridged marker, tag repeats) or have
// H[4..8) == 0; such inits are rerolled.
bool forbidden_init_prefix(std::span<const std::byte, kInitSize> h) noexcept;

}  // namespace mtw::proto
