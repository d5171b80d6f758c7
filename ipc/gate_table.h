// The gate table: every servable user's secrets, as the supervisor hands them
// to the gate (a memfd attached to control::GateTable). Both sides live here,
// so the format has one definition. Text, one "USER_ID SECRET" per line
// (SECRET in any form proto::parse_secret accepts; the supervisor writes
// hex), '#' comment lines and blank lines ignored; a user may have several
// lines; an empty table is valid.
// Thread-safe: pure functions (read_gate_table only reads its fd).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/identify.h"

namespace mtw::ipc {

inline constexpr std::size_t kMaxGateTableBytes = 64 * 1024 * 1024;

// Appends the line for one of `user`'s secrets to `table`.
void append_gate_table_line(std::string& table, proto::UserId user, std::string_view secret);

// Parses a whole table. Errors (kBadInput) carry the line number, never the secret.
[[nodiscard]] base::Result<std::vector<proto::UserSecret>> parse_gate_table(std::string_view text);

// Reads `fd` from offset 0 to EOF with pread (the file position is ignored
// and left alone) and parses it. Errors: kSyscall, kTooLarge (over
// kMaxGateTableBytes), or parse_gate_table's.
[[nodiscard]] base::Result<std::vector<proto::UserSecret>> read_gate_table(int fd);

}  // namespace mtw::ipc
