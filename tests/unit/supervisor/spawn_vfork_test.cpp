// spawn() must not write-protect the supervisor's memory: with fork, every
// page of the heap turned copy-on-write and the next pass over 10,000 users
// took ~3,000 page faults (115-160 ms on a PVM guest), stalling the event
// loop after each worker start. vfork copies no page table.
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/spawn.h"

namespace mtw::supervisor {
namespace {

long minor_faults() {
  rusage r{};
  ::getrusage(RUSAGE_THREAD, &r);
  return r.ru_minflt;
}

TEST(SpawnVfork, LeavesTheParentsPagesWritable) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  constexpr std::size_t kPages = 2048;  // 8 MiB with 4 KiB pages
  std::unique_ptr<char[]> heap(new char[kPages * page]);
  for (std::size_t i = 0; i < kPages; ++i) heap[i * page] = 1;  // resident and writable now

  // Control: a pass over pages already written faults (almost) never.
  long f0 = minor_faults();
  for (std::size_t i = 0; i < kPages; ++i) heap[i * page] += 1;
  const long baseline = minor_faults() - f0;

  SpawnSpec s;
  s.argv = {"/bin/true"};
  s.drop_capabilities = ::geteuid() == 0;
  auto p = spawn(s);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  auto status = p->wait(10'000);
  ASSERT_TRUE(status.has_value()) << status.error().to_string();
  EXPECT_EQ(*status, 0);

  f0 = minor_faults();
  for (std::size_t i = 0; i < kPages; ++i) heap[i * page] += 1;
  const long after = minor_faults() - f0;
  // fork: one fault per page (2048); vfork: none beyond the control's.
  EXPECT_LT(after, baseline + static_cast<long>(kPages / 20)) << "baseline " << baseline;
}

}  // namespace
}  // namespace mtw::supervisor
