// Per-link rate limiter: an htb root qdisc (handle 1:, default class 1:1)
// with one class 1:1 whose rate = ceil = the limit's wire rate (wire_bps:
// the payload limit plus TCP/IP/Ethernet headers), and a bfifo leaf 10:
// under it whose byte limit bounds the queueing delay (queue_limit_for_rate:
// ~100 ms at the rate). No filters: htb's default class catches all traffic.
// A live change rewrites the class and the bfifo limit in place
// (RTM_NEWTCLASS / RTM_NEWQDISC without NLM_F_EXCL), so queued packets and
// connections stay.
// Layout per cell: host-end egress shapes download, cell-end egress shapes
// upload (its qdisc lives in the cell's namespace; the worker there has no
// CAP_NET_ADMIN to touch it).
// Thread-safety: as the NlSocket passed in.
#pragma once

#include "base/error.h"
#include "netns/nl.h"
#include "netns/rate.h"

namespace mtw::netns {

// Installs the htb root + class + bfifo leaf on `ifindex`. kExists when a
// root qdisc other than the default is already there; kBadInput for an
// out-of-range rate, burst or queue limit (checked before any kernel call).
[[nodiscard]] base::Result<void> shaper_install(NlSocket& sk, int ifindex, const Rate& rate);
// Changes the class rate/burst and the leaf limit live. Lowering the limit
// drops nothing already queued; new packets wait until the backlog fits.
// kNotFound when no shaper is installed.
[[nodiscard]] base::Result<void> shaper_change(NlSocket& sk, int ifindex, const Rate& rate);

// The byte limit of the bfifo leaf under class 1:1 (what the kernel reports,
// for tests and diagnostics). kNotFound when there is no bfifo leaf there.
[[nodiscard]] base::Result<std::uint32_t> shaper_queue_limit(NlSocket& sk, int ifindex);

}  // namespace mtw::netns
