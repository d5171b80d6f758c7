#include "supervisor/mount_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

MountViewInput defaults() {
  return MountViewInput{"/etc/mtwarden/mtwarden.toml", "/var/lib/mtwarden", "/run/mtwarden",
                        "/run/netns", "/usr/bin/mtwarden-worker"};
}

TEST(WorkerHiddenDirs, PackagedLayoutHidesConfigStateRunAndNetnsPins) {
  EXPECT_THAT(worker_hidden_dirs(defaults()),
              ElementsAre("/etc/mtwarden", "/var/lib/mtwarden", "/run/mtwarden", "/run/netns"));
}

TEST(WorkerHiddenDirs, ConfiguredDirectoriesAndTheConfigDirectoryAreAdded) {
  auto in = defaults();
  in.config_path = "/srv/proxy/conf/../conf/mtw.toml";
  in.state_dir = "/srv/proxy/state/";
  in.run_dir = "/srv/proxy/run";
  auto dirs = worker_hidden_dirs(in);
  EXPECT_THAT(dirs, Contains("/srv/proxy/conf"));
  EXPECT_THAT(dirs, Contains("/srv/proxy/state"));
  EXPECT_THAT(dirs, Contains("/srv/proxy/run"));
}

TEST(WorkerHiddenDirs, NeverADirectoryTheRelayNeeds) {
  auto in = defaults();
  in.config_path = "/etc/mtwarden.toml";  // its directory is /etc: resolv.conf, hosts
  in.state_dir = "/var";
  in.run_dir = "/run";
  auto dirs = worker_hidden_dirs(in);
  for (const char* d : {"/etc", "/var", "/run", "/"}) EXPECT_THAT(dirs, Not(Contains(d)));
}

TEST(WorkerHiddenDirs, NeverTheDirectoryOfTheWorkerBinaryNorAnyAboveIt) {
  auto in = defaults();
  in.worker_bin = "/opt/mtw/build/worker/mtwarden-worker";
  in.config_path = "/opt/mtw/mtwarden.toml";
  in.state_dir = "/opt/mtw/build/worker";
  EXPECT_THAT(worker_hidden_dirs(in), Not(Contains("/opt/mtw")));
  EXPECT_THAT(worker_hidden_dirs(in), Not(Contains("/opt/mtw/build/worker")));
}

TEST(WorkerHiddenDirs, RelativeOrEmptyPathsAreIgnoredAndNothingTwice) {
  auto in = defaults();
  in.config_path = "mtwarden.toml";
  in.state_dir = "";
  in.run_dir = "/run/mtwarden/";
  EXPECT_THAT(worker_hidden_dirs(in),
              ElementsAre("/etc/mtwarden", "/var/lib/mtwarden", "/run/mtwarden", "/run/netns"));
}

TEST(NetnsDirDetachable, OnlyAnAbsoluteDirectoryTheRelayDoesNotNeed) {
  EXPECT_TRUE(netns_dir_detachable("/run/netns"));
  EXPECT_TRUE(netns_dir_detachable("/var/run/netns"));
  EXPECT_FALSE(netns_dir_detachable("/run"));
  EXPECT_FALSE(netns_dir_detachable("/run/"));
  EXPECT_FALSE(netns_dir_detachable("run/netns"));
  EXPECT_FALSE(netns_dir_detachable(""));
}

}  // namespace
}  // namespace mtw::supervisor
