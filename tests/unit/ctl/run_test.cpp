// Running a request: exit codes, error rendering, --json, QR files; and the
// HTTP client against a one-shot Unix socket server.
#include "ctl/run.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/unique_fd.h"

namespace mtw::ctl {
namespace {
namespace json = boost::json;

// Records the request and replays a canned answer or transport error.
class FakeTransport : public Transport {
 public:
  base::Result<HttpResponse> answer;
  std::string method, target, body;
  base::Result<HttpResponse> send(const std::string& m, const std::string& t,
                                  const std::string& b) override {
    method = m;
    target = t;
    body = b;
    return answer;
  }
};

struct Outcome {
  int rc;
  std::string out, err;
};

Outcome run_args(std::vector<std::string> args, FakeTransport& t) {
  auto p = parse_command_line(args, {});
  EXPECT_TRUE(p && p->invocation);
  std::ostringstream out, err;
  int rc = run(*p->invocation, t, out, err);
  return {rc, out.str(), err.str()};
}

HttpResponse json_answer(unsigned status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body)};
}

TEST(CtlRun, SendsTheBodyAndPrintsJsonPretty) {
  FakeTransport t;
  t.answer = json_answer(201, R"({"name":"bob","id":7})");
  Outcome o = run_args({"--json", "users", "add", "bob", "--quota", "1GiB"}, t);
  EXPECT_EQ(o.rc, kExitOk);
  EXPECT_EQ(t.method, "POST");
  EXPECT_EQ(t.target, "/v1/users");
  EXPECT_EQ(t.body, R"({"name":"bob","limits":{"quota":1073741824}})");
  EXPECT_EQ(o.out, "{\n  \"name\": \"bob\",\n  \"id\": 7\n}\n");
  EXPECT_EQ(o.err, "");
}

TEST(CtlRun, ApiErrorExitsOneWithCodeMessageAndField) {
  FakeTransport t;
  t.answer = json_answer(
      400, R"({"error":{"code":"bad_request","message":"too low","field":"limits.rate_up"}})");
  Outcome o = run_args({"users", "limit", "bob", "--rate-up", "1kbit"}, t);
  EXPECT_EQ(o.rc, kExitApiError);
  EXPECT_EQ(o.err, "mtwardenctl: bad_request: too low (field limits.rate_up)\n");
  EXPECT_EQ(o.out, "");
  t.answer = json_answer(404, R"({"error":{"code":"not_found","message":"no such user"}})");
  o = run_args({"--json", "users", "show", "nobody"}, t);
  EXPECT_EQ(o.rc, kExitApiError);
  EXPECT_EQ(o.err, "mtwardenctl: not_found: no such user\n");
}

TEST(CtlRun, UnauthorizedOverTcpHintsAtTheToken) {
  FakeTransport t;
  t.answer =
      json_answer(401, R"({"error":{"code":"unauthorized","message":"bearer token required"}})");
  Outcome o = run_args({"--url", "http://127.0.0.1:9", "status"}, t);
  EXPECT_EQ(o.rc, kExitApiError);
  EXPECT_NE(o.err.find("--token or MTWARDEN_TOKEN"), std::string::npos) << o.err;
}

TEST(CtlRun, UnreachableSocketExitsThreeAndSaysWhy) {
  FakeTransport t;
  t.answer = tl::unexpected(base::Error{base::Errc::kNotFound, ENOENT, "/x.sock: no such socket"});
  Outcome o = run_args({"--socket", "/x.sock", "status"}, t);
  EXPECT_EQ(o.rc, kExitUnreachable);
  EXPECT_NE(o.err.find("socket /x.sock does not exist"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--socket"), std::string::npos) << o.err;
  t.answer =
      tl::unexpected(base::Error{base::Errc::kPermission, EACCES, "/x.sock: permission denied"});
  o = run_args({"--socket", "/x.sock", "status"}, t);
  EXPECT_EQ(o.rc, kExitUnreachable);
  EXPECT_NE(o.err.find("permission denied on socket /x.sock"), std::string::npos) << o.err;
  t.answer = tl::unexpected(
      base::Error{base::Errc::kSyscall, ECONNREFUSED, "/x.sock: Connection refused"});
  o = run_args({"--socket", "/x.sock", "status"}, t);
  EXPECT_EQ(o.rc, kExitUnreachable);
  EXPECT_NE(o.err.find("connection refused on socket /x.sock"), std::string::npos) << o.err;
}

TEST(CtlRun, GarbageAnswersExitFour) {
  FakeTransport t;
  t.answer = HttpResponse{200, "text/html", "<html>"};
  EXPECT_EQ(run_args({"status"}, t).rc, kExitUnexpected);
  t.answer = HttpResponse{502, "text/plain", "bad gateway"};
  Outcome o = run_args({"status"}, t);
  EXPECT_EQ(o.rc, kExitUnexpected);
  EXPECT_EQ(o.err, "mtwardenctl: unexpected response: HTTP 502 without an API error body\n");
  t.answer =
      tl::unexpected(base::Error{base::Errc::kBadInput, 0, "response: not HTTP (bad version)"});
  o = run_args({"status"}, t);
  EXPECT_EQ(o.rc, kExitUnexpected);
  EXPECT_EQ(o.err, "mtwardenctl: unexpected response: not HTTP (bad version)\n");
}

TEST(CtlRun, DeleteWithNoContentPrintsConfirmationOrEmptyObject) {
  FakeTransport t;
  t.answer = HttpResponse{204, "", ""};
  Outcome o = run_args({"users", "rm", "bob"}, t);
  EXPECT_EQ(o.rc, kExitOk);
  EXPECT_EQ(o.out, "deleted user bob\n");
  EXPECT_EQ(t.method, "DELETE");
  EXPECT_EQ(t.body, "");
  o = run_args({"--json", "users", "rm", "bob"}, t);
  EXPECT_EQ(o.out, "{}\n");
}

TEST(CtlRun, LinkPrintsLinksAndATerminalQr) {
  FakeTransport t;
  t.answer = json_answer(
      200, R"({"host":"h","ports":[443],"tg":["tg://proxy?server=h&port=443&secret=ee00"],
                                  "https":["https://t.me/proxy?server=h&port=443&secret=ee00"]})");
  Outcome o = run_args({"link", "bob"}, t);
  EXPECT_EQ(o.rc, kExitOk);
  EXPECT_EQ(
      o.out.rfind("host:  h\nports: 443\ntg://proxy?server=h&port=443&secret=ee00\nhttps://", 0),
      0u)
      << o.out;
  EXPECT_NE(o.out.find("\xe2\x96\x80"), std::string::npos) << "no half-block QR glyphs";
  o = run_args({"--json", "link", "bob"}, t);
  EXPECT_EQ(json::parse(o.out).at("tg").at(0), "tg://proxy?server=h&port=443&secret=ee00");
}

TEST(CtlRun, QrWritesTheImageAtomicallyAndReportsIt) {
  auto dir =
      std::filesystem::temp_directory_path() / ("ctl_run_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / "q.png").string();
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "rest";
  FakeTransport t;
  t.answer = HttpResponse{200, "image/png", png};
  Outcome o = run_args({"--json", "qr", "bob", "--png", file, "--index", "1"}, t);
  EXPECT_EQ(o.rc, kExitOk) << o.err;
  EXPECT_EQ(t.target, "/v1/users/bob/qr?format=png&index=1");
  json::value v = json::parse(o.out);
  EXPECT_EQ(v.at("written"), file.c_str());
  EXPECT_EQ(v.at("bytes").to_number<std::size_t>(), png.size());
  std::ifstream in(file, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), png);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1)
      << "temp file left behind";
  // A JSON answer where an image was expected is not written.
  t.answer = json_answer(200, "{}");
  o = run_args({"qr", "bob", "--svg", (dir / "q.svg").string()}, t);
  EXPECT_EQ(o.rc, kExitUnexpected);
  EXPECT_FALSE(std::filesystem::exists(dir / "q.svg"));
  std::filesystem::remove_all(dir);
}

TEST(CtlRun, TokenRotatePrintsTheToken) {
  FakeTransport t;
  t.answer = json_answer(200, R"({"token":"mtw_abc"})");
  Outcome o = run_args({"token", "rotate"}, t);
  EXPECT_EQ(o.rc, kExitOk);
  EXPECT_EQ(o.out.rfind("mtw_abc\n", 0), 0u) << o.out << o.err;
}

// A one-shot HTTP server on a Unix socket: records the raw request, sends `reply`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) : reply_(std::move(reply)) {
    path_ = (std::filesystem::temp_directory_path() /
             ("ctl_http_" + std::to_string(::getpid()) + ".sock"))
                .string();
    ::unlink(path_.c_str());
    fd_ = base::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 1), 0);
    thread_ = std::thread([this] {
      base::UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      char buf[4096];
      while (request_.find("\r\n\r\n") == std::string::npos ||
             request_.size() < request_.find("\r\n\r\n") + 4 + content_length()) {
        ssize_t n = ::read(c.get(), buf, sizeof buf);
        if (n <= 0) break;
        request_.append(buf, static_cast<std::size_t>(n));
      }
      (void)!::write(c.get(), reply_.data(), reply_.size());
    });
  }
  ~OneShotServer() {
    thread_.join();
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string request() {
    thread_.join();
    thread_ = std::thread([] {});
    return request_;
  }

 private:
  std::size_t content_length() const {
    auto p = request_.find("Content-Length: ");
    return p == std::string::npos ? 0 : std::stoul(request_.substr(p + 16));
  }
  std::string reply_, path_, request_;
  base::UniqueFd fd_;
  std::thread thread_;
};

TEST(CtlHttp, SendsHostTypeTokenAndBodyOverTheUnixSocket) {
  OneShotServer srv(
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  Endpoint ep;
  ep.socket_path = srv.path();
  ep.token = "tok";
  auto t = make_http_transport(ep, std::chrono::seconds(10));
  auto r = t->send("POST", "/v1/users", R"({"name":"x"})");
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(r->status, 201u);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, "{}");
  std::string req = srv.request();
  EXPECT_EQ(req.rfind("POST /v1/users HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Host: localhost\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Content-Type: application/json\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Authorization: Bearer tok\r\n"), std::string::npos) << req;
  EXPECT_TRUE(req.ends_with("\r\n\r\n{\"name\":\"x\"}")) << req;
}

TEST(CtlHttp, MissingSocketIsNotFound) {
  Endpoint ep;
  ep.socket_path = "/nonexistent/dir/api.sock";
  auto r = make_http_transport(ep, std::chrono::seconds(5))->send("GET", "/v1/status", "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, base::Errc::kNotFound);
}

TEST(CtlHttp, SilentServerTimesOut) {
  auto path = (std::filesystem::temp_directory_path() /
               ("ctl_silent_" + std::to_string(::getpid()) + ".sock"))
                  .string();
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd.get(), 1), 0);  // accepted by the kernel, never answered
  Endpoint ep;
  ep.socket_path = path;
  auto r = make_http_transport(ep, std::chrono::milliseconds(300))->send("GET", "/v1/status", "");
  ::unlink(path.c_str());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, base::Errc::kTimeout);
  EXPECT_EQ(r.error().context, "response: no answer within 300 ms");
}

}  // namespace
}  // namespace mtw::ctl
