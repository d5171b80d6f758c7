// Logging to the systemd journal with structured fields. The daemon logs
// "fixed phrase key=value ..." lines (docs/style: never secrets); this sink
// sends each as a native journal entry with MESSAGE=, PRIORITY=,
// SYSLOG_IDENTIFIER=, MTW_MODULE= (the logger's name) and, lifted from the
// line's fields, USER= (user=), CELL= (cell=/host_if=/netns=), EVENT=
// (event=/kind=) and MTW_<KEY>= for the other fields. Thread-safe (spdlog
// sink with a mutex).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/common.h>
#include <spdlog/sinks/sink.h>

namespace mtw::systemd {

// True when fd 2 is the journal's stream ($JOURNAL_STREAM names its
// device:inode), i.e. the service runs under systemd with StandardError=journal.
bool stderr_is_journal();

// The journal fields of one formatted message (pure; no I/O): the
// whitespace-separated key=value tokens (values may be "double quoted", with
// \" and \\ inside), mapped as described above. A key starts with a letter and
// holds only letters, digits, '_', '-' and '.'; it is upper-cased with '-' and
// '.' turned into '_' (anything else is not a field). At most 32 fields.
std::vector<std::pair<std::string, std::string>> journal_fields(std::string_view message);

// The whole entry the sink sends for one message, as "FIELD=value" strings
// (pure; the seam the sink's tests use): MESSAGE, PRIORITY (syslog level from
// the spdlog level), SYSLOG_IDENTIFIER, MTW_MODULE, then journal_fields().
std::vector<std::string> journal_entry(std::string_view identifier, std::string_view module,
                                       spdlog::level::level_enum level, std::string_view message);

// A spdlog sink writing to the journal through sd_journal_sendv().
std::shared_ptr<spdlog::sinks::sink> make_journal_sink(std::string identifier);

}  // namespace mtw::systemd
