#include "webfront/site.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "base/unique_fd.h"
#include "proto/webproxy_carrier.h"

namespace mtw::webfront {
namespace {

using base::Errc;
using base::fail;

constexpr std::size_t kMaxDecoyFiles = 256;
constexpr std::size_t kMaxDecoyBytes = 16 * 1024 * 1024;

// The page half of the app contract (../shared/docs/webproxy.md §1.4, §4.2):
// read the nonce from "#android=", drop the fragment (the path stays, the
// app checks it), set onmessage before init (HELLO follows at once), send
// init and "connecting", open the carrier with the bootstrap token, queue
// the app's frames until it is open, hand every frame from the relay to the
// app as its own ArrayBuffer (the app wants WELCOME alone in the first
// one), never throw out of a handler (an exception makes the app fail the
// carrier), and report failure once. "close" from the app or pagehide ends
// the carrier quietly.
constexpr std::string_view kPageHead =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
    "<meta name=\"referrer\" content=\"no-referrer\"><title></title></head>"
    "<body><script nonce=\"";
constexpr std::string_view kPageScriptStart =
    "\">\n(function () {\n'use strict';\nconst bootstrap = \"";
constexpr std::string_view kPageScriptBody = R"JS(";
var app = null;
try { app = window.TelegramWebProxy || null; } catch (e) { app = null; }
var match = /^#android=([A-Za-z0-9_-]{1,128})$/.exec(location.hash || '');
var nonce = match ? match[1] : null;
try { history.replaceState(null, '', location.pathname); } catch (e) {}
if (!app || nonce === null) return;
var ws = null, ready = false, done = false, pending = [], pendingBytes = 0;
var MAX_PENDING = 8 * 1024 * 1024;
function control(value) {
  try { app.postMessage(JSON.stringify(value)); } catch (e) {}
}
function finish(failed) {
  if (done) return;
  done = true;
  pending = [];
  if (ws) { try { ws.close(1000); } catch (e) {} }
  if (failed) control({t: 'status', state: 'failed'});
}
function deliver(buf) {
  var view = new DataView(buf), off = 0;
  while (off < buf.byteLength) {
    if (buf.byteLength - off < 8) return finish(true);
    var end = off + 8 + view.getUint32(off + 4);
    if (end > buf.byteLength) return finish(true);
    try { app.postMessage(buf.slice(off, end)); } catch (e) { return finish(true); }
    off = end;
  }
}
function connect() {
  try {
    ws = new WebSocket('wss://' + location.host + '/api/v1/ws', ['tproxy-v1.' + bootstrap]);
  } catch (e) { return finish(true); }
  ws.binaryType = 'arraybuffer';
  ws.onopen = function () {
    try {
      ready = true;
      var queued = pending;
      pending = [];
      pendingBytes = 0;
      for (var i = 0; i < queued.length; i++) ws.send(queued[i]);
    } catch (e) { finish(true); }
  };
  ws.onmessage = function (ev) {
    try {
      if (done) return;
      if (typeof ev.data === 'string') return finish(true);
      deliver(ev.data);
    } catch (e) { finish(true); }
  };
  ws.onerror = function () { finish(true); };
  ws.onclose = function () { finish(true); };
}
app.onmessage = function (ev) {
  try {
    if (done) return;
    var data = ev ? ev.data : null;
    if (typeof data === 'string') {
      var value = null;
      try { value = JSON.parse(data); } catch (e) { value = null; }
      if (value && value.t === 'close') finish(false);
      return;
    }
    if (!(data instanceof ArrayBuffer) || data.byteLength === 0) return;
    if (ready) { ws.send(data); return; }
    pendingBytes += data.byteLength;
    if (pendingBytes > MAX_PENDING) return finish(true);
    pending.push(data);
  } catch (e) { finish(true); }
};
control({t: 'tproxy-android-init', v: 1, nonce: nonce});
control({t: 'status', state: 'connecting'});
connect();
window.addEventListener('pagehide', function () { finish(false); });
})();
</script></body></html>
)JS";

constexpr std::string_view kBuiltinIndex = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Welcome</title>
<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
h1{font-weight:normal}footer{margin-top:4em;color:#888;font-size:small}</style>
</head><body>
<h1>Welcome</h1>
<p>This site is under construction. Please check back later.</p>
<footer>&copy; All rights reserved.</footer>
</body></html>
)HTML";

constexpr std::string_view kBuiltinNotFound = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>404 Not Found</title></head>
<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>
)HTML";

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

Route route_request(const RequestHead& head, const proto::WebProxyAddress& addr) {
  Route r;
  if (path_of(head.target) == kCarrierPath) {
    if (head.method != "GET" || !head.websocket_upgrade || !head.has_subprotocol) {
      r.why = "bad_carrier";
      return r;
    }
    auto token = proto::websocket_session_token(head.subprotocol);
    if (!token) {
      r.why = "bad_carrier";
      return r;
    }
    r.kind = Route::Kind::kCarrier;
    r.token = *token;
    return r;
  }
  if (head.method != "GET") {
    r.why = "not_bridge";
    return r;
  }
  auto cap = proto::parse_bridge_target(head.target, addr);
  if (!cap) {
    r.why = proto::bridge_target_error_name(cap.error());
    return r;
  }
  r.kind = Route::Kind::kBridge;
  r.capability = *cap;
  return r;
}

std::string render_bridge_page(std::string_view bootstrap, std::string_view script_nonce) {
  std::string page;
  page.reserve(kPageHead.size() + kPageScriptStart.size() + kPageScriptBody.size() + 128);
  page += kPageHead;
  page += script_nonce;
  page += kPageScriptStart;
  page += bootstrap;
  page += kPageScriptBody;
  return page;
}

std::string bridge_csp(const proto::WebProxyAddress& addr, std::string_view script_nonce) {
  std::string csp = "default-src 'none'; script-src 'nonce-";
  csp += script_nonce;
  csp += "'; connect-src 'self' wss://";
  csp += addr.host;
  csp += "; base-uri 'none'; form-action 'none'; frame-ancestors http://127.0.0.1:*";
  return csp;
}

std::string_view content_type_for(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view ext = dot == std::string_view::npos ? "" : name.substr(dot + 1);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "xml") return "application/xml";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "webp") return "image/webp";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  return "application/octet-stream";
}

DecoySite::DecoySite() {
  files_.emplace("index.html", File{"text/html; charset=utf-8", std::string(kBuiltinIndex)});
  not_found_ = File{"text/html; charset=utf-8", std::string(kBuiltinNotFound)};
}

Result<DecoySite> DecoySite::load(const std::string& dir) {
  DecoySite site;
  site.files_.clear();
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return base::fail_errno("decoy directory " + dir);
  std::size_t total = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    base::UniqueFd fd(::openat(::dirfd(d.get()), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) continue;  // a symlink or unreadable entry is not served
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (site.files_.size() >= kMaxDecoyFiles) {
      return fail(Errc::kTooLarge, "decoy directory " + dir + ": more than 256 files");
    }
    total += static_cast<std::size_t>(st.st_size);
    if (total > kMaxDecoyBytes) {
      return fail(Errc::kTooLarge, "decoy directory " + dir + ": more than 16 MiB");
    }
    std::string body(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < body.size()) {
      ssize_t n = ::pread(fd.get(), body.data() + got, body.size() - got, static_cast<off_t>(got));
      if (n < 0) return base::fail_errno("decoy file " + dir + "/" + name);
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    body.resize(got);
    std::string type(content_type_for(name));
    site.files_.emplace(std::move(name), File{std::move(type), std::move(body)});
  }
  if (auto nf = site.files_.find("404.html"); nf != site.files_.end()) {
    site.not_found_ = nf->second;
  } else {
    site.not_found_ = File{"text/html; charset=utf-8", std::string(kBuiltinNotFound)};
  }
  return site;
}

DecoyResponse DecoySite::lookup(std::string_view method, std::string_view target) const {
  DecoyResponse r{404, not_found_.content_type, not_found_.body};
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    return r;
  }
  std::string_view path = path_of(target);
  if (!path.starts_with('/')) return r;
  std::string_view name = path.substr(1);
  if (name.empty()) name = "index.html";
  if (name.find('/') != std::string_view::npos) return r;
  auto it = files_.find(name);
  if (it == files_.end()) return r;
  return DecoyResponse{200, it->second.content_type, it->second.body};
}

}  // namespace mtw::webfront
