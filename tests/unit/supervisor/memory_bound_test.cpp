// Memory bound planning and WorkerCgroup. Never touches a real cgroup: the
// planner only reads, and WorkerCgroup::create runs against a fake directory
// tree in a temporary directory (this host's cgroups are not ours).
#include "supervisor/memory_bound.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mtw-memtest-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A fake delegated parent: the files plan_memory_bound/create look at.
fs::path fake_parent(const TempDir& t, const std::string& subtree) {
  fs::path p = t.path() / "svc";
  fs::create_directory(p);
  spit(p / "cgroup.controllers", "cpu io memory pids\n");
  spit(p / "cgroup.subtree_control", subtree);
  return p;
}

MemoryBoundPlan cgroup_plan(const fs::path& parent) {
  return {MemoryBoundMode::kCgroupV2, parent.string(), "test"};
}

TEST(MemoryBoundMode, Names) {
  EXPECT_EQ(memory_bound_mode_name(MemoryBoundMode::kNone), "none");
  EXPECT_EQ(memory_bound_mode_name(MemoryBoundMode::kCgroupV2), "cgroup2");
  EXPECT_EQ(memory_bound_mode_name(MemoryBoundMode::kRlimit), "rlimit");
}

TEST(PlanMemoryBound, ZeroLimitIsNone) {
  auto plan = plan_memory_bound(0, "");
  EXPECT_EQ(plan.mode, MemoryBoundMode::kNone);
  EXPECT_FALSE(plan.reason.empty());
}

TEST(PlanMemoryBound, PlainDirectoryIsNotCgroup2) {
  TempDir t;
  fake_parent(t, "memory\n");  // looks delegated, but the mount is no cgroup2
  auto plan = plan_memory_bound(64 << 20, (t.path() / "svc").string(), t.path().string());
  EXPECT_EQ(plan.mode, MemoryBoundMode::kRlimit);
  EXPECT_NE(plan.reason.find("not a cgroup2 mount"), std::string::npos) << plan.reason;
  EXPECT_TRUE(plan.cgroup_parent.empty());
}

TEST(PlanMemoryBound, MissingRootFallsBackToRlimit) {
  auto plan = plan_memory_bound(64 << 20, "", "/nonexistent/mtw-cgroup-root");
  EXPECT_EQ(plan.mode, MemoryBoundMode::kRlimit);
  EXPECT_NE(plan.reason.find("statfs"), std::string::npos) << plan.reason;
}

// This machine (kernel-facts.md): cgroup v1/hybrid, no usable v2 memory
// controller. Read-only: detection never writes.
TEST(PlanMemoryBound, ThisHostAnswersRlimit) {
  auto plan = plan_memory_bound(64 << 20, "");
  EXPECT_EQ(plan.mode, MemoryBoundMode::kRlimit) << plan.reason;
  EXPECT_NE(plan.reason.find("RLIMIT_DATA"), std::string::npos) << plan.reason;
  // On a hybrid host the v2 hierarchy is mounted at .../unified, but the
  // memory controller is bound to v1: still kRlimit, with that reason.
  if (fs::exists("/sys/fs/cgroup/unified/cgroup.controllers")) {
    auto u = plan_memory_bound(64 << 20, "", "/sys/fs/cgroup/unified");
    EXPECT_EQ(u.mode, MemoryBoundMode::kRlimit) << u.reason;
    EXPECT_NE(u.reason.find("memory controller not available"), std::string::npos) << u.reason;
  }
}

TEST(CgroupProcParse, FindsV2Line) {
  EXPECT_EQ(cgroup2_path_from_proc("4:memory:/x\n0::/system.slice/mtwarden.service\n"),
            "/system.slice/mtwarden.service");
  EXPECT_EQ(cgroup2_path_from_proc("0::/"), "/");
  EXPECT_EQ(cgroup2_path_from_proc("4:memory:/x\n1:cpu:/\n"), std::nullopt);
  EXPECT_EQ(cgroup2_path_from_proc(""), std::nullopt);
}

TEST(ControllerListed, MatchesWholeWords) {
  EXPECT_TRUE(controller_listed("cpu io memory pids\n", "memory"));
  EXPECT_TRUE(controller_listed("memory", "memory"));
  EXPECT_FALSE(controller_listed("cpu io pids\n", "memory"));
  EXPECT_FALSE(controller_listed("memoryx cpu", "memory"));
  EXPECT_FALSE(controller_listed("", "memory"));
}

TEST(WorkerCgroup, CreateWritesMemoryMaxAndDestructorRemoves) {
  TempDir t;
  fs::path parent = fake_parent(t, "cpu memory\n");
  fs::path dir = parent / "w42";
  {
    auto cg = WorkerCgroup::create(cgroup_plan(parent), "w42", 64ull << 20);
    ASSERT_TRUE(cg) << cg.error().to_string();
    EXPECT_EQ(cg->path(), dir.string());
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_EQ(slurp(dir / "memory.max"), std::to_string(64ull << 20));
    EXPECT_GE(cg->procs_fd(), 0);
    EXPECT_TRUE(fs::exists(dir / "cgroup.procs"));
    EXPECT_FALSE(fs::exists(dir / "memory.swap.max"));  // only written where it exists
    EXPECT_EQ(slurp(parent / "cgroup.subtree_control"), "cpu memory\n");  // untouched
  }
  EXPECT_FALSE(fs::exists(dir));
}

TEST(WorkerCgroup, EnablesMemoryInParentWhenMissing) {
  TempDir t;
  fs::path parent = fake_parent(t, "cpu\n");
  auto cg = WorkerCgroup::create(cgroup_plan(parent), "w1", 1 << 20);
  ASSERT_TRUE(cg) << cg.error().to_string();
  EXPECT_EQ(slurp(parent / "cgroup.subtree_control").substr(0, 7), "+memory");
}

// Delegate=yes puts the supervisor in the delegated cgroup itself: it must
// move to a leaf before that cgroup may enable "memory" for its children.
TEST(EnterLeafCgroup, OccupiedParentMovesUsIntoTheLeaf) {
  TempDir t;
  fs::path parent = fake_parent(t, "\n");
  spit(parent / "cgroup.procs", "4242\n");
  ASSERT_TRUE(enter_leaf_cgroup(parent.string(), "supervisor"));
  EXPECT_TRUE(fs::is_directory(parent / "supervisor"));
  EXPECT_EQ(slurp(parent / "supervisor" / "cgroup.procs"), "0");  // "0" = the writer, all threads
  // A second start finds the leaf there already.
  ASSERT_TRUE(enter_leaf_cgroup(parent.string(), "supervisor"));
}

TEST(EnterLeafCgroup, EmptyParentIsLeftAlone) {
  TempDir t;
  fs::path parent = fake_parent(t, "\n");
  spit(parent / "cgroup.procs", "");
  ASSERT_TRUE(enter_leaf_cgroup(parent.string(), "supervisor"));
  EXPECT_FALSE(fs::exists(parent / "supervisor"));
}

TEST(EnterLeafCgroup, ErrorsAreReported) {
  TempDir t;
  fs::path parent = fake_parent(t, "\n");
  auto missing = enter_leaf_cgroup(parent.string(), "supervisor");  // no cgroup.procs
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, base::Errc::kSyscall);
  spit(parent / "cgroup.procs", "1\n");
  EXPECT_EQ(enter_leaf_cgroup(parent.string(), "a/b").error().code, base::Errc::kBadInput);
  EXPECT_EQ(enter_leaf_cgroup(parent.string(), "..").error().code, base::Errc::kBadInput);
  EXPECT_FALSE(fs::exists(parent / "a"));
}

TEST(WorkerCgroup, MoveTransfersOwnership) {
  TempDir t;
  fs::path parent = fake_parent(t, "memory\n");
  WorkerCgroup outer;
  {
    auto cg = WorkerCgroup::create(cgroup_plan(parent), "w2", 1 << 20);
    ASSERT_TRUE(cg) << cg.error().to_string();
    outer = std::move(*cg);
  }
  EXPECT_TRUE(fs::is_directory(parent / "w2"));
  EXPECT_EQ(outer.path(), (parent / "w2").string());
  outer = WorkerCgroup();
  EXPECT_FALSE(fs::exists(parent / "w2"));
}

TEST(WorkerCgroup, ExistingDirIsKExistsAndUntouched) {
  TempDir t;
  fs::path parent = fake_parent(t, "memory\n");
  fs::create_directory(parent / "w3");
  {
    auto cg = WorkerCgroup::create(cgroup_plan(parent), "w3", 1 << 20);
    ASSERT_FALSE(cg);
    EXPECT_EQ(cg.error().code, base::Errc::kExists);
  }
  EXPECT_TRUE(fs::is_directory(parent / "w3"));
}

TEST(WorkerCgroup, RejectsBadInput) {
  TempDir t;
  fs::path parent = fake_parent(t, "memory\n");
  EXPECT_EQ(WorkerCgroup::create(cgroup_plan(parent), "a/b", 1 << 20).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(WorkerCgroup::create(cgroup_plan(parent), "..", 1 << 20).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(WorkerCgroup::create(cgroup_plan(parent), "w", 0).error().code, base::Errc::kBadInput);
  MemoryBoundPlan rl{MemoryBoundMode::kRlimit, parent.string(), "x"};
  EXPECT_EQ(WorkerCgroup::create(rl, "w", 1 << 20).error().code, base::Errc::kBadInput);
  EXPECT_EQ(std::distance(fs::directory_iterator(parent), fs::directory_iterator()), 2);
}

}  // namespace
}  // namespace mtw::supervisor
