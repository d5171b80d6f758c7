#include "supervisor/mask_schedule.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "base/file.h"

namespace mtw::supervisor {

// The probe thread's hand-over slot. Shared with the thread, so a schedule
// destroyed while a probe still runs leaves the thread a valid place to
// write to.
struct MaskSchedule::Running {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  base::Result<proto::TlsProfile> result = base::fail(base::Errc::kBadInput, "not run");
};

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  return out;
}

base::Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::fail_errno("open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return base::fail_errno("read " + path);
  return buf.str();
}

}  // namespace

std::vector<MaskTarget> mask_probe_targets(const proto::MaskRoutes& routes,
                                           const std::vector<std::string>& domains) {
  std::set<std::string> distinct;
  for (const auto& d : domains)
    if (!d.empty()) distinct.insert(lower(d));
  std::vector<MaskTarget> out;
  for (const auto& d : distinct)
    if (auto ep = proto::mask_target(routes, d, true, std::nullopt)) out.push_back({d, *ep});
  return out;
}

std::int64_t next_probe_at(std::int64_t now, std::uint32_t interval_s, std::uint32_t jitter_s,
                           proto::RandomSource& rnd) {
  return now + interval_s + (jitter_s == 0 ? 0 : rnd.uniform(0, jitter_s));
}

base::Result<std::string> profile_path(const std::string& dir, std::string_view domain) {
  if (domain.empty() || domain.front() == '.' || domain.find('/') != std::string_view::npos ||
      domain.find('\0') != std::string_view::npos)
    return base::fail(base::Errc::kBadInput,
                      "domain \"" + std::string(domain) + "\" is not a file name");
  std::string path = dir;
  path.append("/").append(domain).append(".profile");
  return path;
}

MaskSchedule::MaskSchedule(Options o) : opts_(std::move(o)) {
  if (!opts_.prober) opts_.prober = probe_mask;
}

MaskSchedule::~MaskSchedule() {
  if (!running_) return;
  std::unique_lock lock(running_->mu);
  running_->cv.wait_for(lock, std::chrono::seconds(2), [&] { return running_->done; });
}

std::vector<std::string> MaskSchedule::set_targets(std::vector<MaskTarget> targets) {
  std::vector<std::string> problems;
  std::vector<Entry> next;
  for (auto& t : targets) {
    auto old = std::find_if(entries_.begin(), entries_.end(),
                            [&](const Entry& e) { return e.target.domain == t.domain; });
    if (old != entries_.end()) {
      Entry e = *old;
      if (!(e.target == t)) e.next_at = 0;  // a new target: measure it now
      e.target = std::move(t);
      next.push_back(std::move(e));
      continue;
    }
    Entry e;
    e.target = std::move(t);
    if (auto path = profile_path(opts_.dir, e.target.domain); !path) {
      problems.push_back(path.error().context);
    } else if (auto text = read_text(*path); !text) {
      if (text.error().sys_errno != ENOENT) problems.push_back(text.error().to_string());
    } else if (auto p = proto::parse_profile(*text); !p) {
      problems.push_back(*path + ": " + p.error().context);
    } else if (p->domain != e.target.domain) {
      problems.push_back(*path + ": measured for \"" + p->domain + "\"");
    } else {
      e.profile = *std::move(p);
      e.stored = true;
      changed_ = true;
    }
    next.push_back(std::move(e));
  }
  // A running probe's entry may have moved or gone: find it again by domain.
  if (running_) {
    const std::string& domain = entries_[running_entry_].target.domain;
    auto it = std::find_if(next.begin(), next.end(),
                           [&](const Entry& e) { return e.target.domain == domain; });
    running_entry_ = it == next.end() ? next.size() : static_cast<std::size_t>(it - next.begin());
  }
  entries_ = std::move(next);
  return problems;
}

MaskSchedule::PollResult MaskSchedule::poll(std::int64_t now) {
  PollResult r;
  if (running_) {
    {
      std::lock_guard lock(running_->mu);
      if (!running_->done) {
        r.changed = std::exchange(changed_, false);
        return r;
      }
    }
    auto result = std::move(running_->result);
    running_.reset();
    if (running_entry_ < entries_.size()) {  // else its target went away meanwhile
      Entry& e = entries_[running_entry_];
      r.finished = e.target.domain;
      if (result) {
        e.last_error.clear();
        e.next_at = next_probe_at(now, opts_.interval_s, opts_.jitter_s, proto::system_random());
        // What shapes the answer changed (not just when it was measured): push.
        if (!e.profile) {
          changed_ = true;
        } else {
          proto::TlsProfile old = *e.profile;
          old.measured_at = result->measured_at;
          if (!(old == *result)) changed_ = true;
        }
        e.profile = *std::move(result);
        e.stored = false;
        auto path = profile_path(opts_.dir, e.target.domain);
        ::mkdir(opts_.dir.c_str(), 0700);  // EEXIST is fine; a real failure shows in the write
        auto saved = path ? base::write_file_atomic(*path, proto::format_profile(*e.profile), 0600,
                                                    base::Durability::kFsync)
                          : base::Result<void>(tl::unexpected(path.error()));
        if (!saved) r.save_error = saved.error().to_string();
      } else {
        e.last_error = result.error().to_string();
        r.error = e.last_error;
        e.next_at = next_probe_at(now, opts_.retry_s, opts_.jitter_s, proto::system_random());
      }
    }
  }
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.next_at > now) continue;
    e.last_attempt = now;
    MaskProbeOptions po = opts_.probe;
    po.host = e.target.endpoint.host;
    po.port = e.target.endpoint.port;
    po.sni = e.target.domain;
    auto slot = std::make_shared<Running>();
    running_ = slot;
    running_entry_ = i;
    r.started = e.target.domain;
    std::thread([slot, po, prober = opts_.prober, now] {
      auto res = prober(po, now);
      std::lock_guard lock(slot->mu);
      slot->result = std::move(res);
      slot->done = true;
      slot->cv.notify_all();
    }).detach();
    break;  // one probe at a time
  }
  r.changed = std::exchange(changed_, false);
  return r;
}

const proto::TlsProfile& MaskSchedule::profile_for(std::string_view domain) const {
  const std::string d = lower(domain);
  for (const auto& e : entries_)
    if (e.target.domain == d && e.profile) return *e.profile;
  return proto::builtin_profile();
}

}  // namespace mtw::supervisor
