// Private to api/: JSON rendering of the Service model (docs/api.md is the
// reference of every field). Pure, thread-safe.
#pragma once

#include <optional>

#include <boost/json/value.hpp>

#include "api/json_writer.h"
#include "api/service.h"

namespace mtw::api::detail {

boost::json::value to_json(const ServerStatus& s);
// GET /v1/mask-profiles: {"probing", "profiles": [...]}.
boost::json::value to_json(const supervisor::MaskProfilesView& v);
// GET /v1/fleet: {"backend", "this_host", "read_at", "last_error", "hosts": [...]}.
boost::json::value to_json(const ServerStatus::Fleet& f);
// GET /v1/upstreams: {"upstreams": [...]}.
boost::json::value to_json(const std::vector<ServerStatus::Upstream>& ups);
// `sp`: where the DOM is allocated (a short-lived arena for a response that
// is serialized at once; the default heap otherwise).
boost::json::value to_json(const UserStatus& s, boost::json::storage_ptr sp = {});
// The same object as text, without a DOM (the status answer's fast path).
// Both are kept, written from one list of the fields (json_out.cpp): the
// DOM's number kinds (uint64 for counters) are what D-Bus maps to its
// types, and text parsed back would give int64. json_writer_test holds
// serialize(to_json(s)) equal to this text.
void write_json(JsonWriter& w, const UserStatus& s);
// The record with its resolved limits, overrides and `status` (null when absent).
boost::json::value to_json(const UserRecord& r, const UserStatus* status,
                           boost::json::storage_ptr sp = {});
boost::json::value to_json(const LiveEvent& e);
boost::json::value to_json(const Links& l);
boost::json::value to_json(const ClientIps& c);
boost::json::value limits_json(const supervisor::Limits& l, boost::json::storage_ptr sp = {});
boost::json::value overrides_json(const supervisor::LimitOverrides& o,
                                  boost::json::storage_ptr sp = {});

}  // namespace mtw::api::detail
