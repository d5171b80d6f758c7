// The outcome of `mtwarden doctor`: one Check per thing looked at, each with
// a verdict, the reason and the fix, and the rendering of a list of them as
// text (for a person) or JSON (for a script), plus the exit code a script
// branches on (docs/operations.md, "mtwarden doctor").
// Pure: plain values, no I/O. Thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtw::doctor {

// kSkip: not applicable here or not measurable because an earlier check
// failed (the reason says which); it never changes the exit code.
enum class Verdict { kPass, kWarn, kFail, kSkip };
std::string_view verdict_name(Verdict v) noexcept;  // "pass", "warn", "fail", "skip"

struct Check {
  std::string id;       // stable, for scripts: "mask.tls", "dc", "upstream", ...
  std::string subject;  // what it is about: a domain, "dc 2", an upstream's name; may be ""
  Verdict verdict = Verdict::kSkip;
  std::string reason;  // one sentence: what was seen
  std::string fix;     // what to do about it; "" when nothing is to be done
  // Measured values, shown as "key: value" lines and as a JSON object.
  std::vector<std::pair<std::string, std::string>> values;
};

// Exit codes (docs/operations.md): every check passed or was skipped;
// at least one warning and no failure; at least one failure. The
// command-line and configuration errors that stop doctor before any check
// have codes of their own.
inline constexpr int kExitPass = 0;
inline constexpr int kExitWarn = 1;
inline constexpr int kExitFail = 2;
inline constexpr int kExitConfig = 3;  // the configuration could not be read
inline constexpr int kExitUsage = 4;   // bad command line
[[nodiscard]] int exit_code(std::span<const Check> checks) noexcept;

// One block per check:
//   PASS  mask.tls  www.example.com: <reason>
//         fix: <fix>
//         key: value
// then a summary line "N passed, N warnings, N failed, N skipped".
// Text from the network (a certificate's names, an HTTP header) is printed
// with control characters escaped, so it cannot drive the terminal.
[[nodiscard]] std::string format_text(std::span<const Check> checks);
// {"checks":[{"id","subject","verdict","reason","fix","values":{...}}...],
//  "summary":{"pass","warn","fail","skip"},"exit_code":N}
[[nodiscard]] std::string format_json(std::span<const Check> checks);

}  // namespace mtw::doctor
