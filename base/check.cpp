#include "base/check.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace mtw::base {
namespace {
void write_str(const char* s) noexcept {
  ssize_t ignored = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)ignored;
}
}  // namespace

void check_failed(const char* expr, const char* file, int line) noexcept {
  char num[16];
  int n = 0;
  char rev[16];
  unsigned v = line < 0 ? 0u : static_cast<unsigned>(line);
  do {
    rev[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 15);
  for (int i = 0; i < n; ++i) num[i] = rev[n - 1 - i];
  num[n] = '\0';
  write_str("MTW_CHECK failed: ");
  write_str(expr);
  write_str(" at ");
  write_str(file);
  write_str(":");
  write_str(num);
  write_str("\n");
  std::abort();
}

}  // namespace mtw::base
