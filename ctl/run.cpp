// Runs one mtwardenctl request (see run.h).
#include "ctl/run.h"

#include <sys/stat.h>

#include <boost/json.hpp>
#include <cstring>

#include "base/file.h"
#include "ctl/format.h"
#include "supervisor/links.h"

namespace mtw::ctl {
namespace json = boost::json;
using base::Errc;

namespace {

constexpr std::string_view kPrefix = "mtwardenctl: ";

// Exit 3: what went wrong reaching the API, and what to try.
int unreachable(const base::Error& e, const Endpoint& ep, std::ostream& err) {
  err << kPrefix << "cannot reach the API: ";
  if (ep.tcp) {
    err << e.context << "\n  (is mtwarden's [api] tcp listener on? check --url)\n";
    return kExitUnreachable;
  }
  switch (e.code) {
    case Errc::kNotFound:
      err << "socket " << ep.socket_path << " does not exist\n"
          << "  (is mtwarden running? point --socket or MTWARDEN_SOCKET at its api.sock)\n";
      break;
    case Errc::kPermission:
      err << "permission denied on socket " << ep.socket_path << "\n"
          << "  (run as root or as a member of the socket's group, [api] socket_group; or use "
             "--socket)\n";
      break;
    default:
      if (e.sys_errno == ECONNREFUSED) {
        err << "connection refused on socket " << ep.socket_path << "\n"
            << "  (stale socket: is mtwarden running? or use --socket PATH)\n";
      } else {
        err << e.context << "\n  (is mtwarden running? or use --socket PATH)\n";
      }
  }
  return kExitUnreachable;
}

int unexpected(std::string_view what, std::ostream& err) {
  err << kPrefix << "unexpected response: " << what << "\n";
  return kExitUnexpected;
}

bool is_json(const HttpResponse& r) { return r.content_type.starts_with("application/json"); }

int print_human(const Invocation& inv, const json::value& v, std::ostream& out, std::ostream& err) {
  switch (inv.request.output) {
    case Output::kUserList:
      out << render_user_list(v);
      break;
    case Output::kUser:
      out << render_user(v);
      break;
    case Output::kStatus:
      out << render_status(v);
      break;
    case Output::kUsage:
      out << render_usage(v);
      break;
    case Output::kEvents:
      out << render_events(v);
      break;
    case Output::kMask:
      out << render_mask_profiles(v);
      break;
    case Output::kFleet:
      out << render_fleet(v);
      break;
    case Output::kUpstreams:
      out << render_upstreams(v);
      break;
    case Output::kIps:
      out << render_ips(v);
      break;
    case Output::kDone: {
      out << inv.request.done_message << "\n";
      // A reload names what waits for a restart.
      const json::value* p = v.is_object() ? v.get_object().if_contains("restart_needed") : nullptr;
      if (p != nullptr && p->is_array() && !p->get_array().empty()) {
        out << "waiting for a restart:";
        for (const auto& n : p->get_array())
          if (n.is_string()) out << " " << std::string_view(n.get_string());
        out << "\n";
      }
      break;
    }
    case Output::kToken: {
      const json::value* t = v.is_object() ? v.get_object().if_contains("token") : nullptr;
      if (t == nullptr || !t->is_string()) return unexpected("no \"token\" in the answer", err);
      out << std::string_view(t->get_string()) << "\n"
          << "(shown once: store it now; the previous token no longer works)\n";
      break;
    }
    case Output::kLinks: {
      out << render_links(v);
      const json::value* tg = v.is_object() ? v.get_object().if_contains("tg") : nullptr;
      if (tg != nullptr && tg->is_array() && !tg->get_array().empty() &&
          tg->get_array()[0].is_string()) {
        auto qr = supervisor::qr_terminal(tg->get_array()[0].get_string());
        if (!qr) {
          err << kPrefix << "cannot draw the QR code: " << qr.error().to_string() << "\n";
        } else {
          out << "\n" << *qr;
        }
      }
      break;
    }
    case Output::kQr:
      break;  // handled before
  }
  return kExitOk;
}

int write_qr(const Invocation& inv, const HttpResponse& res, std::ostream& out, std::ostream& err) {
  bool png = inv.request.target.find("format=png") != std::string::npos;
  bool looks_right =
      png ? res.body.starts_with("\x89PNG\r\n\x1a\n") : res.body.find("<svg") != std::string::npos;
  if (!looks_right) {
    return unexpected(std::string("the answer is not a ") + (png ? "PNG" : "SVG") +
                          " image (Content-Type " + res.content_type + ")",
                      err);
  }
  // Like a file the shell would create, but never group or world writable.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (auto w = base::write_file_atomic(inv.request.file, res.body, 0644 & ~mask,
                                       base::Durability::kFsync);
      !w) {
    err << kPrefix << "cannot write " << inv.request.file << ": " << w.error().to_string() << "\n";
    return kExitUsage;
  }
  if (inv.json) {
    json::object o;
    o["written"] = inv.request.file;
    o["bytes"] = res.body.size();
    out << pretty_json(o);
  } else {
    out << "wrote " << inv.request.file << " (" << res.body.size() << " bytes)\n";
  }
  return kExitOk;
}

}  // namespace

int run(const Invocation& inv, Transport& transport, std::ostream& out, std::ostream& err) {
  const Request& req = inv.request;
  std::string body = req.body ? json::serialize(*req.body) : std::string();
  auto res = transport.send(req.method, req.target, body);
  if (!res) {
    if (res.error().context.starts_with("response: ")) {
      return unexpected(res.error().context.substr(10), err);
    }
    return unreachable(res.error(), inv.endpoint, err);
  }
  if (res->status >= 400) {
    boost::system::error_code ec;
    json::value v = json::parse(res->body, ec);
    std::string msg = ec ? "" : render_api_error(v);
    if (msg.empty())
      return unexpected("HTTP " + std::to_string(res->status) + " without an API error body", err);
    err << kPrefix << msg << "\n";
    if (res->status == 401 && inv.endpoint.tcp && inv.endpoint.token.empty()) {
      err << "  (the TCP API needs a token: --token or MTWARDEN_TOKEN)\n";
    }
    return kExitApiError;
  }
  if (res->status < 200 || res->status >= 300) {
    return unexpected("HTTP " + std::to_string(res->status), err);
  }
  if (req.output == Output::kQr) return write_qr(inv, *res, out, err);
  json::value v;
  if (!res->body.empty() || req.output != Output::kDone) {
    boost::system::error_code ec;
    v = json::parse(res->body, ec);
    if (ec || !is_json(*res)) {
      return unexpected("not JSON (HTTP " + std::to_string(res->status) + ", Content-Type " +
                            res->content_type + ")",
                        err);
    }
  } else {
    v = json::object();  // 204 No Content: --json still prints an object
  }
  if (inv.json) {
    out << pretty_json(v);
    return kExitOk;
  }
  return print_human(inv, v, out, err);
}

}  // namespace mtw::ctl
