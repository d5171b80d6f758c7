#include "netns/counters.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <cstring>

#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

namespace mtw::netns {

namespace {

struct SweepCtx {
  std::string_view prefix;
  const std::function<void(const LinkCounters&)>* fn;
  LinkCounters scratch;  // reused: no allocation per link
};

int on_link(nl_msg* msg, void* arg) {
  auto* ctx = static_cast<SweepCtx*>(arg);
  nlmsghdr* nlh = nlmsg_hdr(msg);
  if (nlh->nlmsg_type != RTM_NEWLINK) return NL_OK;
  nlattr* tb[IFLA_MAX + 1];
  if (nlmsg_parse(nlh, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return NL_OK;
  if (tb[IFLA_IFNAME] == nullptr || tb[IFLA_STATS64] == nullptr) return NL_OK;
  const char* name = static_cast<const char*>(nla_data(tb[IFLA_IFNAME]));
  std::string_view nv(name, strnlen(name, static_cast<std::size_t>(nla_len(tb[IFLA_IFNAME]))));
  if (nv.substr(0, ctx->prefix.size()) != ctx->prefix) return NL_OK;
  rtnl_link_stats64 st{};
  std::memcpy(&st, nla_data(tb[IFLA_STATS64]),
              std::min(sizeof st, static_cast<std::size_t>(nla_len(tb[IFLA_STATS64]))));
  LinkCounters& c = ctx->scratch;
  c.ifindex = static_cast<ifinfomsg*>(nlmsg_data(nlh))->ifi_index;
  c.name.assign(nv);
  c.rx_bytes = st.rx_bytes;
  c.tx_bytes = st.tx_bytes;
  c.rx_packets = st.rx_packets;
  c.tx_packets = st.tx_packets;
  c.rx_dropped = st.rx_dropped;
  c.tx_dropped = st.tx_dropped;
  (*ctx->fn)(c);
  return NL_OK;
}

}  // namespace

base::Result<CounterReader> CounterReader::open() {
  auto sk = NlSocket::connect();
  if (!sk) return tl::unexpected(sk.error());
  return CounterReader(std::move(*sk));
}

base::Result<void> CounterReader::sweep(std::string_view prefix,
                                        const std::function<void(const LinkCounters&)>& fn) {
  SweepCtx ctx{prefix, &fn, {}};
  nl_socket_modify_cb(sk_.get(), NL_CB_VALID, NL_CB_CUSTOM, on_link, &ctx);
  int err = 0;
  // A link added or removed mid-dump makes the kernel flag it inconsistent;
  // a second pass is almost always clean. Callers see some links twice then,
  // which is harmless for absolute counters.
  for (int attempt = 0; attempt < 3; ++attempt) {
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    err = nl_send_simple(sk_.get(), RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof ifi);
    if (err < 0) break;
    err = nl_recvmsgs_default(sk_.get());
    if (err != -NLE_DUMP_INTR) break;
  }
  if (err < 0) return tl::unexpected(nl_error(err, "link stats dump"));
  return {};
}

}  // namespace mtw::netns
