#include "daemon/source_link.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace mtw::daemon {
namespace {

using netns::SourceNat;
using supervisor::Config;

// A configuration with direct upstreams "a" (198.51.100.11), "b"
// (198.51.100.12) and "if" (interface eth1), and users ann -> a, cat -> if,
// dan -> none.
Config config() {
  Config c;
  auto up = [](std::string name, std::string s4, std::string ifname) {
    supervisor::UpstreamConfig u;
    u.name = std::move(name);
    u.source4 = std::move(s4);
    u.interface = std::move(ifname);
    return u;
  };
  c.upstreams = {up("a", "198.51.100.11", ""), up("b", "198.51.100.12", ""), up("if", "", "eth1")};
  auto user = [](std::string name, std::vector<std::string> ups) {
    supervisor::UserConfig u;
    u.name = std::move(name);
    u.upstreams = std::move(ups);
    return u;
  };
  c.users = {user("ann", {"a"}), user("cat", {"if"}), user("dan", {})};
  return c;
}

struct Fixture {
  Config cfg = config();
  std::map<std::string, std::vector<std::string>> ifaces{
      {"eth0", {"198.51.100.11", "198.51.100.12"}}, {"eth1", {"198.51.100.13"}}};
  std::vector<std::vector<SourceNat>> applies;  // every call of the apply seam
  bool fail_apply = false;
  // Assignments given through the API: user -> names (else the file's).
  std::map<std::string, std::vector<std::string>> assigned;
  SourceLink link{cfg,
                  [this](const std::vector<SourceNat>& e) -> base::Result<void> {
                    if (fail_apply) return base::fail(base::Errc::kNft, "nft: refused");
                    applies.push_back(e);
                    return {};
                  },
                  [this](const std::string& n) {
                    if (auto it = assigned.find(n); it != assigned.end()) return it->second;
                    return std::vector<std::string>(
                        supervisor::assigned_names(cfg, supervisor::file_assignment(cfg, n)));
                  },
                  [this](const std::string& n) -> base::Result<std::vector<std::string>> {
                    if (n.empty()) {  // every address of the host
                      std::vector<std::string> all;
                      for (const auto& [_, a] : ifaces) all.insert(all.end(), a.begin(), a.end());
                      return all;
                    }
                    auto it = ifaces.find(n);
                    if (it == ifaces.end())
                      return base::fail(base::Errc::kNotFound,
                                        "interface " + n + " does not exist");
                    return it->second;
                  }};
};

TEST(SourceLink, CellUpAppliesTheUsersSourceAndAMasqueradedCellChangesNothing) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  ASSERT_EQ(f.applies.size(), 1u);
  EXPECT_EQ(f.applies[0], (std::vector<SourceNat>{{"mtw-ann", "198.51.100.11", ""}}));
  ASSERT_TRUE(f.link.cell_up("dan", "mtw-dan"));
  EXPECT_EQ(f.applies.size(), 1u);  // no source: no transaction
  ASSERT_TRUE(f.link.cell_up("cat", "mtw-cat"));
  ASSERT_EQ(f.applies.size(), 2u);
  EXPECT_EQ(f.applies[1], (std::vector<SourceNat>{{"mtw-ann", "198.51.100.11", ""},
                                                  {"mtw-cat", "198.51.100.13", ""}}));
}

TEST(SourceLink, CellUpOfAnUnchangedCellAppliesNothing) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));  // a worker restart
  EXPECT_EQ(f.applies.size(), 1u);
}

TEST(SourceLink, InterfaceWithoutAddressRefusesTheCellAndLeavesTheMapsAlone) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  f.ifaces["eth1"] = {};
  auto r = f.link.cell_up("cat", "mtw-cat");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().context, "interface eth1 has no IPv4 address");
  EXPECT_EQ(f.applies.size(), 1u);
  EXPECT_FALSE(f.link.applied().contains("mtw-cat"));
  // Once the interface has an address, a reload picks the cell up.
  f.ifaces["eth1"] = {"198.51.100.14"};
  f.link.update();
  ASSERT_EQ(f.applies.size(), 2u);
  EXPECT_EQ(f.link.applied().at("mtw-cat").addr4, "198.51.100.14");
}

TEST(SourceLink, RefreshFollowsAnAssignmentChangeOfOneUser) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  ASSERT_TRUE(f.link.cell_up("cat", "mtw-cat"));
  f.assigned["ann"] = {};  // an explicit empty list: direct, masqueraded
  f.link.refresh("ann", "mtw-ann");
  ASSERT_EQ(f.applies.size(), 3u);
  EXPECT_EQ(f.applies[2], (std::vector<SourceNat>{{"mtw-cat", "198.51.100.13", ""}}));
  f.link.refresh("eve", "mtw-eve");  // no cell_up for it: nothing
  EXPECT_EQ(f.applies.size(), 3u);
}

TEST(SourceLink, CellGoneRemovesItsEntry) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  ASSERT_TRUE(f.link.cell_up("cat", "mtw-cat"));
  f.link.cell_gone("mtw-ann");
  ASSERT_EQ(f.applies.size(), 3u);
  EXPECT_EQ(f.applies[2], (std::vector<SourceNat>{{"mtw-cat", "198.51.100.13", ""}}));
  f.link.cell_gone("mtw-dan");  // never had one: nothing to do
  EXPECT_EQ(f.applies.size(), 3u);
}

TEST(SourceLink, UpdateFollowsAChangedSourceAndAMovedInterfaceAddress) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  ASSERT_TRUE(f.link.cell_up("cat", "mtw-cat"));
  ASSERT_TRUE(f.link.cell_up("dan", "mtw-dan"));
  f.cfg.users[0].upstreams = std::vector<std::string>{"b"};  // the reload's new content
  f.cfg.users[2].upstreams = std::vector<std::string>{"a"};
  f.ifaces["eth1"] = {"198.51.100.15"};
  f.link.update();
  ASSERT_EQ(f.applies.size(), 3u);
  EXPECT_EQ(f.applies[2], (std::vector<SourceNat>{{"mtw-ann", "198.51.100.12", ""},
                                                  {"mtw-cat", "198.51.100.15", ""},
                                                  {"mtw-dan", "198.51.100.11", ""}}));
  f.link.update();  // nothing changed since
  EXPECT_EQ(f.applies.size(), 3u);
}

TEST(SourceLink, UpdateKeepsTheEntryOfACellWhoseSourceNoLongerResolves) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  ASSERT_TRUE(f.link.cell_up("cat", "mtw-cat"));
  f.ifaces.erase("eth1");
  f.cfg.users[0].upstreams = std::vector<std::string>{"b"};
  f.link.update();
  EXPECT_EQ(f.link.applied().at("mtw-cat").addr4, "198.51.100.13");
  EXPECT_EQ(f.link.applied().at("mtw-ann").addr4, "198.51.100.12");
}

TEST(SourceLink, AFailedApplyKeepsWhatTheKernelHas) {
  Fixture f;
  ASSERT_TRUE(f.link.cell_up("ann", "mtw-ann"));
  f.fail_apply = true;
  auto r = f.link.cell_up("cat", "mtw-cat");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kNft);
  EXPECT_EQ(f.link.applied().size(), 1u);
  f.fail_apply = false;
  f.link.update();  // the next reload retries it
  EXPECT_EQ(f.link.applied().size(), 2u);
}

}  // namespace
}  // namespace mtw::daemon
