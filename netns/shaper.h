// Per-link rate limiter: an htb root qdisc (handle 1:, default class 1:1)
// with one class 1:1 whose rate = ceil = the limit. No filters: htb's default
// class catches all traffic. A live change rewrites the class in place
// (RTM_NEWTCLASS without NLM_F_EXCL), so queued packets and connections stay.
// Layout per cell: host-end egress shapes download, cell-end egress shapes
// upload (its qdisc lives in the cell's namespace; the worker there has no
// CAP_NET_ADMIN to touch it).
// Thread-safety: as the NlSocket passed in.
#pragma once

#include "base/error.h"
#include "netns/nl.h"
#include "netns/rate.h"

namespace mtw::netns {

// Installs the htb root + class on `ifindex`. kExists when a root qdisc other
// than the default is already there; kBadInput for an out-of-range rate.
[[nodiscard]] base::Result<void> shaper_install(NlSocket& sk, int ifindex, const Rate& rate);
// Changes the class rate/burst live. kNotFound when no shaper is installed.
[[nodiscard]] base::Result<void> shaper_change(NlSocket& sk, int ifindex, const Rate& rate);

}  // namespace mtw::netns
