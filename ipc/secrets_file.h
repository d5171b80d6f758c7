// The secrets file: one user's secrets, as the supervisor hands them to the
// worker (a memfd the worker reads as --secrets-file /proc/self/fd/4) and as
// an operator writes one for a standalone worker. Both sides live here, so
// the format has one definition. Text, one secret per line (any form
// proto::parse_secret accepts; the supervisor writes hex), '#' starts a
// comment, blank lines ignored; at least one secret.
// Thread-safe: pure functions (read_secrets_file only reads its file).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/secret.h"

namespace mtw::ipc {

// The file's text for `secrets` (each in a form proto::parse_secret accepts).
std::string format_secrets_file(const std::vector<std::string>& secrets);

// Parses the text. Errors (kBadInput) carry the line number, never the secret.
[[nodiscard]] base::Result<std::vector<proto::Secret>> parse_secrets_text(std::string_view text);
// Reads and parses `path` (kSyscall on I/O failure).
[[nodiscard]] base::Result<std::vector<proto::Secret>> read_secrets_file(const std::string& path);

}  // namespace mtw::ipc
