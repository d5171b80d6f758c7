// The API over real sockets: a Beast client against ApiServer on a Unix
// socket in a temp dir and on TCP 127.0.0.1:0, backed by FakeService.
#include "api/server.h"

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "api/token.h"
#include "base/log.h"
#include "fake_service.h"

namespace mtw::api {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using testing::FakeService;

enum class Via { kUnix, kTcp };

struct Reply {
  int status = 0;
  std::string body;
  http::fields headers;
  json::value json() const { return json::parse(body); }
  std::string code() const {
    auto v = json::parse(body);
    return std::string(v.at("error").at("code").as_string());
  }
  std::string field() const {
    auto v = json::parse(body);
    const auto* f = v.at("error").as_object().if_contains("field");
    return f ? std::string(f->as_string()) : "";
  }
};

template <class Socket>
Reply exchange(Socket& s, http::request<http::string_body>& req) {
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.body_limit(16 << 20);
  http::read(s, buf, p);
  Reply r;
  r.status = p.get().result_int();
  r.body = p.get().body();
  for (const auto& f : p.get()) r.headers.insert(f.name_string(), f.value());
  return r;
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (std::filesystem::temp_directory_path() / "mtw_api_XXXXXX").string();
    dir_ = ::mkdtemp(t.data());
    socket_ = dir_ + "/api.sock";
    token_path_ = dir_ + "/api_token.sha256";
    token_ = generate_token();
    ASSERT_TRUE(store_token_hash(token_path_, token_hash(token_)));
    cfg_.tcp = proto::Endpoint{"127.0.0.1", 0};
    cfg_.body_limit = 4096;
    cfg_.request_timeout_ms = request_timeout_ms_;
    cfg_.secret_grace_s = 3600;
    auto s = ApiServer::start(io_, cfg_, socket_, token_path_, svc_, limits_);
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
    port_ = server_->tcp_port();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) on_io([this] { server_.reset(); });
    guard_.reset();
    if (thread_.joinable()) thread_.join();
    std::filesystem::remove_all(dir_);
  }
  void on_io(std::function<void()> f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  Reply call(Via via, http::verb method, std::string target, std::string body = "",
             std::string content_type = "application/json", std::optional<std::string> token = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    if (!body.empty()) {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    if (via == Via::kTcp) {
      const std::string t = token.value_or(token_);
      if (!t.empty()) req.set(http::field::authorization, "Bearer " + t);
      asio::io_context io;
      asio::ip::tcp::socket s(io);
      s.connect({asio::ip::make_address("127.0.0.1"), port_});
      return exchange(s, req);
    }
    asio::io_context io;
    asio::local::stream_protocol::socket s(io);
    s.connect(asio::local::stream_protocol::endpoint(socket_));
    return exchange(s, req);
  }
  Reply get(Via via, std::string target) { return call(via, http::verb::get, std::move(target)); }
  Reply post(Via via, std::string target, std::string body = "") {
    return call(via, http::verb::post, std::move(target), std::move(body));
  }

  std::string dir_, socket_, token_path_, token_;
  std::uint32_t request_timeout_ms_ = 1000;  // set before SetUp to change
  ConnectionLimits limits_;                  // likewise
  supervisor::ApiConfig cfg_;
  FakeService svc_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::unique_ptr<ApiServer> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

class ApiLifecycle : public ApiServerTest, public ::testing::WithParamInterface<Via> {};

TEST_P(ApiLifecycle, CreatesChangesRotatesAndDeletesAUser) {
  const Via v = GetParam();
  Reply r = post(v, "/v1/users",
                 R"({"name":"alice","comment":"hi","expires_at":"2026-12-31",
                     "limits":{"rate_up":"20mbit","rate_down":5000000,"quota":"50GiB",
                               "period":"weekly","anchor_day":3,"max_connections":10}})");
  ASSERT_EQ(r.status, 201) << r.body;
  json::value u = r.json();
  EXPECT_EQ(u.at("name"), "alice");
  EXPECT_EQ(u.at("origin"), "runtime");
  EXPECT_EQ(u.at("expires_at").as_int64(), 1798761600);  // 2027-01-01T00:00:00Z
  EXPECT_EQ(u.at("limits").at("rate_up_bps").to_number<std::uint64_t>(), 20'000'000u);
  EXPECT_EQ(u.at("limits").at("quota_bytes").to_number<std::uint64_t>(), 50ull << 30);
  EXPECT_EQ(u.at("limits").at("period"), "weekly");
  EXPECT_EQ(u.at("overrides").as_object().size(), 6u);
  EXPECT_EQ(u.at("secrets").as_array().size(), 1u);
  EXPECT_EQ(u.at("status").at("state"), "running");
  EXPECT_EQ(u.at("status").at("quota").at("quota_bytes").to_number<std::uint64_t>(), 50ull << 30);

  r = get(v, "/v1/users");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("users").as_array().size(), 2u);  // alice + cfguser

  r = call(v, http::verb::patch, "/v1/users/alice",
           R"({"comment":"changed","expires_at":null,"limits":{"rate_up":null,"on_demand":true}})");
  ASSERT_EQ(r.status, 200) << r.body;
  u = r.json();
  EXPECT_EQ(u.at("comment"), "changed");
  EXPECT_TRUE(u.at("expires_at").is_null());
  EXPECT_EQ(u.at("limits").at("rate_up_bps").to_number<std::uint64_t>(), 0u);
  EXPECT_FALSE(u.at("overrides").as_object().contains("rate_up_bps"));
  EXPECT_TRUE(u.at("limits").at("on_demand").as_bool());

  r = post(v, "/v1/users/alice/disable");
  ASSERT_EQ(r.status, 200);
  EXPECT_FALSE(r.json().at("enabled").as_bool());
  r = post(v, "/v1/users/alice/enable", "{}");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.json().at("enabled").as_bool());

  const std::string fresh = "dd0123456789abcdef0123456789abcdef";
  r = post(v, "/v1/users/alice/rotate", R"({"secret":")" + fresh + R"("})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto secrets = r.json().at("secrets").as_array();
  ASSERT_EQ(secrets.size(), 2u);
  EXPECT_EQ(secrets[1].at("secret"), fresh.c_str());
  EXPECT_EQ(secrets[0].at("expires_at").as_int64(), testing::kFakeNow + 3600);  // default grace
  r = post(v, "/v1/users/alice/rotate", R"({"grace_s":0})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("secrets").as_array().size(), 1u);

  r = post(v, "/v1/users/alice/reset");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(svc_.dump().find("resets=1"), std::string::npos);

  r = get(v, "/v1/users/alice/status");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("connections").as_int64(), 2);
  EXPECT_TRUE(r.json().at("online").as_bool());
  EXPECT_EQ(r.json().at("last_seen").as_int64(), testing::kFakeNow);

  // Client addresses only on their own route, never in the user list.
  svc_.open_ips["alice"] = {{"2001:db8::7", "2001:db8::/64", 2},
                            {"198.51.100.7", "198.51.100.7", 1}};
  r = get(v, "/v1/users/alice/ips");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("name"), "alice");
  EXPECT_EQ(r.json().at("ipv6_prefix").as_int64(), 64);
  EXPECT_FALSE(r.json().at("truncated").as_bool());
  auto ips = r.json().at("ips").as_array();
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0].at("address"), "2001:db8::7");
  EXPECT_EQ(ips[0].at("key"), "2001:db8::/64");
  EXPECT_EQ(ips[0].at("connections").as_int64(), 2);
  EXPECT_EQ(get(v, "/v1/users").body.find("198.51.100.7"), std::string::npos);
  EXPECT_EQ(get(v, "/v1/users/alice").body.find("198.51.100.7"), std::string::npos);
  EXPECT_EQ(get(v, "/v1/users/nobody/ips").status, 404);
  EXPECT_EQ(post(v, "/v1/users/alice/ips").status, 405);
  svc_.open_ips.erase("alice");
  EXPECT_TRUE(get(v, "/v1/users/alice/ips").json().at("ips").as_array().empty());

  r = get(v, "/v1/users/alice/usage?from=2026-11-01&to=2026-11-03");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(svc_.last_from, 1793491200);            // 2026-11-01
  EXPECT_EQ(svc_.last_to, 1793491200 + 3 * 86400);  // through 2026-11-03
  auto items = r.json().at("items").as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].at("date"), "2026-11-01");
  EXPECT_EQ(items[0].at("bytes_total").to_number<std::uint64_t>(), 3'000'000u);
  EXPECT_EQ(items[2].at("bytes_total").to_number<std::uint64_t>(), 0u);
  r = get(v, "/v1/users/alice/usage?by=month&from=2026-08-15&to=2026-10-01");
  ASSERT_EQ(r.status, 200) << r.body;
  items = r.json().at("items").as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[1].at("date"), "2026-09");
  EXPECT_EQ(items[1].at("bytes_total").to_number<std::uint64_t>(), 12u);
  r = get(v, "/v1/users/alice/usage");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("items").as_array().size(), 30u);

  r = get(v, "/v1/users/alice/links");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("host"), "proxy.example.org");
  EXPECT_EQ(r.json().at("tg").as_array().size(), 1u);

  r = call(v, http::verb::delete_, "/v1/users/alice");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(get(v, "/v1/users/alice").status, 404);
}

INSTANTIATE_TEST_SUITE_P(Transports, ApiLifecycle, ::testing::Values(Via::kUnix, Via::kTcp));

TEST_F(ApiServerTest, ServesStatusEventsReloadAndMetrics) {
  svc_.add_event("alice", "quota_warned", "80%");
  svc_.add_event("", "reloaded", "");
  svc_.add_event("bob", "throttled", "x");
  Reply r = get(Via::kUnix, "/v1/status");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("version"), "0.1.0-test");
  r = get(Via::kUnix, "/v1/events?after=1&limit=1");
  ASSERT_EQ(r.status, 200);
  auto ev = r.json().at("events").as_array();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].at("seq").as_int64(), 2);
  EXPECT_EQ(ev[0].at("kind"), "reloaded");

  r = post(Via::kUnix, "/v1/reload");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.json().at("reloaded").as_bool());
  EXPECT_TRUE(r.json().at("restart_needed").as_array().empty());
  svc_.reload_restart_needed = {"[[listener]]", "[cells]"};
  r = post(Via::kUnix, "/v1/reload");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("restart_needed"), (json::array{"[[listener]]", "[cells]"}));
  svc_.reload_ok = false;
  r = post(Via::kUnix, "/v1/reload");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.code(), "unprocessable");

  r = get(Via::kUnix, "/metrics");  // no token on the socket
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("mtwarden_gate_up 1"), std::string::npos);
  r = call(Via::kTcp, http::verb::get, "/metrics", "", "", std::string());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(get(Via::kTcp, "/metrics").status, 200);
}

TEST_F(ApiServerTest, RotatesTokenOnlyOverTheSocket) {
  Reply r = post(Via::kTcp, "/v1/token/rotate");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.code(), "forbidden");
  r = post(Via::kUnix, "/v1/token/rotate");
  ASSERT_EQ(r.status, 200);
  const std::string fresh(r.json().at("token").as_string());
  EXPECT_NE(fresh, token_);
  EXPECT_EQ(*load_token_hash(token_path_), token_hash(fresh));
  EXPECT_EQ(call(Via::kTcp, http::verb::get, "/v1/status", "", "", token_).status, 401);
  EXPECT_EQ(call(Via::kTcp, http::verb::get, "/v1/status", "", "", fresh).status, 200);
}

TEST_F(ApiServerTest, SocketIsGroupReadableOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(ApiServerTest, KeepsConnectionsAlive) {
  asio::io_context io;
  asio::local::stream_protocol::socket s(io);
  s.connect(asio::local::stream_protocol::endpoint(socket_));
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req{http::verb::get, "/v1/status", 11};
    req.set(http::field::host, "x");
    EXPECT_EQ(exchange(s, req).status, 200);
  }
}

TEST_F(ApiServerTest, QrPngDecodesToTheLink) {
  ASSERT_EQ(post(Via::kUnix, "/v1/users", R"({"name":"qr"})").status, 201);
  const std::string link(get(Via::kUnix, "/v1/users/qr/links").json().at("tg").at(0).as_string());
  Reply svg = get(Via::kUnix, "/v1/users/qr/qr?format=svg");
  ASSERT_EQ(svg.status, 200);
  EXPECT_EQ(svg.headers[http::field::content_type], "image/svg+xml");
  Reply png = get(Via::kUnix, "/v1/users/qr/qr");
  ASSERT_EQ(png.status, 200);
  EXPECT_EQ(png.headers[http::field::content_type], "image/png");
  ASSERT_GT(png.body.size(), 8u);
  EXPECT_EQ(png.body.substr(1, 3), "PNG");
  ASSERT_EQ(std::system("command -v zbarimg >/dev/null 2>&1"), 0)
      << "zbarimg missing: scripts/deps.sh --test installs zbar-tools";
  const std::string file = dir_ + "/qr.png";
  std::ofstream(file, std::ios::binary) << png.body;
  FILE* p = ::popen(("zbarimg --raw -q " + file + " 2>/dev/null").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_EQ(out, link);
}

TEST_F(ApiServerTest, CutsOffASlowClientWhileServingOthers) {
  asio::io_context io;
  asio::local::stream_protocol::socket slow(io);
  slow.connect(asio::local::stream_protocol::endpoint(socket_));
  const std::string half =
      "POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 40\r\n\r\n{\"na";
  asio::write(slow, asio::buffer(half));
  const auto start = std::chrono::steady_clock::now();
  // Meanwhile others are served at once.
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(get(Via::kUnix, "/v1/status").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  }
  std::string got;
  boost::system::error_code ec;
  char buf[1024];
  for (;;) {
    std::size_t n = slow.read_some(asio::buffer(buf), ec);
    got.append(buf, n);
    if (ec) break;
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 408") << got;
  EXPECT_NE(got.find("request_timeout"), std::string::npos);
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::milliseconds(3000));
  EXPECT_EQ(svc_.dump().find("na"), std::string::npos);
}

TEST_F(ApiServerTest, StopRemovesTheSocketAndRefusesConnections) {
  on_io([this] { server_->stop(); });
  EXPECT_FALSE(std::filesystem::exists(socket_));
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
  EXPECT_TRUE(ec);
}

TEST(ApiServerStart, RefusesPublicTcpAndTcpWithoutToken) {
  std::string t = (std::filesystem::temp_directory_path() / "mtw_api_XXXXXX").string();
  const std::string dir = ::mkdtemp(t.data());
  asio::io_context io;
  FakeService svc;
  supervisor::ApiConfig cfg;
  cfg.tcp = proto::Endpoint{"127.0.0.1", 0};
  auto r = ApiServer::start(io, cfg, dir + "/a.sock", dir + "/missing.sha256", svc);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("token"), std::string::npos) << r.error().context;
  ASSERT_TRUE(store_token_hash(dir + "/tok", token_hash("x")));
  cfg.tcp = proto::Endpoint{"0.0.0.0", 0};
  r = ApiServer::start(io, cfg, dir + "/a.sock", dir + "/tok", svc);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("allow_public"), std::string::npos) << r.error().context;
  cfg.tcp.reset();
  cfg.socket_group = "no-such-group-mtw";
  r = ApiServer::start(io, cfg, dir + "/a.sock", dir + "/tok", svc);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("no-such-group-mtw"), std::string::npos);
  // A stale socket file is replaced.
  cfg.socket_group.clear();
  {
    asio::local::stream_protocol::acceptor stale(
        io, asio::local::stream_protocol::endpoint(dir + "/a.sock"));
  }
  ASSERT_TRUE(std::filesystem::exists(dir + "/a.sock"));
  r = ApiServer::start(io, cfg, dir + "/a.sock", dir + "/tok", svc);
  ASSERT_TRUE(r) << r.error().to_string();
  (*r)->stop();
  std::filesystem::remove_all(dir);
}

// ---- every bad request: status, error code, field, and nothing changed ----

struct Bad {
  const char* what;
  Via via;
  http::verb method;
  std::string target;
  std::string body;
  int status;
  std::string code;
  std::string field;
  std::string content_type = "application/json";
  std::optional<std::string> token = {};
};

std::vector<Bad> bad_requests() {
  using V = http::verb;
  const Via U = Via::kUnix;
  const std::string big(5000, 'x');
  auto user = [](std::string extra) { return R"({"name":"zed")" + extra + "}"; };
  auto lim = [&](std::string l) { return user(R"(,"limits":{)" + l + "}"); };
  return {
      {"malformed JSON", U, V::post, "/v1/users", R"({"name":)", 400, "bad_request", ""},
      {"trailing garbage", U, V::post, "/v1/users", R"({"name":"zed"} x)", 400, "bad_request", ""},
      {"not an object", U, V::post, "/v1/users", "[1]", 400, "bad_request", ""},
      {"empty body", U, V::post, "/v1/users", "", 400, "bad_request", ""},
      {"unknown top field", U, V::post, "/v1/users", user(R"(,"foo":1)"), 400, "bad_request",
       "foo"},
      {"unknown limits field", U, V::post, "/v1/users", lim(R"("rate":1)"), 400, "bad_request",
       "limits.rate"},
      {"name wrong type", U, V::post, "/v1/users", R"({"name":5})", 400, "bad_request", "name"},
      {"name bad chars", U, V::post, "/v1/users", R"({"name":"a b"})", 400, "bad_request", "name"},
      {"name too long", U, V::post, "/v1/users", R"({"name":")" + std::string(65, 'a') + R"("})",
       400, "bad_request", "name"},
      {"name empty", U, V::post, "/v1/users", R"({"name":""})", 400, "bad_request", "name"},
      {"name missing", U, V::post, "/v1/users", R"({"comment":"x"})", 400, "bad_request", "name"},
      {"name dot", U, V::post, "/v1/users", R"({"name":"."})", 400, "bad_request", "name"},
      {"name dot dot", U, V::post, "/v1/users", R"({"name":".."})", 400, "bad_request", "name"},
      {"name hidden", U, V::post, "/v1/users", R"({"name":".zed"})", 400, "bad_request", "name"},
      {"name option-like", U, V::post, "/v1/users", R"({"name":"-rf"})", 400, "bad_request",
       "name"},
      {"name control char", U, V::post, "/v1/users", "{\"name\":\"z\\u0007d\"}", 400, "bad_request",
       "name"},
      {"duplicate key", U, V::post, "/v1/users", R"({"name":"zed","name":"zod"})", 400,
       "bad_request", "name"},
      {"duplicate nested key", U, V::post, "/v1/users", lim(R"("quota":"1GiB","quota":"2GiB")"),
       400, "bad_request", "limits.quota"},
      {"duplicate key in patch", U, V::patch, "/v1/users/cfguser",
       R"({"comment":"a","comment":"b"})", 400, "bad_request", "comment"},
      {"duplicate key in rotate", U, V::post, "/v1/users/cfguser/rotate",
       R"({"grace_s":1,"grace_s":2})", 400, "bad_request", "grace_s"},
      {"enabled wrong type", U, V::post, "/v1/users", user(R"(,"enabled":"yes")"), 400,
       "bad_request", "enabled"},
      {"comment too long", U, V::post, "/v1/users",
       user(R"(,"comment":")" + std::string(257, 'c') + "\""), 400, "bad_request", "comment"},
      {"bad date", U, V::post, "/v1/users", user(R"(,"expires_at":"2026-02-30")"), 400,
       "bad_request", "expires_at"},
      {"negative expiry", U, V::post, "/v1/users", user(R"(,"expires_at":-5)"), 400, "bad_request",
       "expires_at"},
      {"fractional expiry", U, V::post, "/v1/users", user(R"(,"expires_at":1.5)"), 400,
       "bad_request", "expires_at"},
      {"bad rate text", U, V::post, "/v1/users", lim(R"("rate_up":"20 parsecs")"), 400,
       "bad_request", "limits.rate_up"},
      {"negative rate", U, V::post, "/v1/users", lim(R"("rate_up":-1)"), 400, "bad_request",
       "limits.rate_up"},
      {"rate too small", U, V::post, "/v1/users", lim(R"("rate_down":100)"), 400, "bad_request",
       "limits.rate_down"},
      {"rate too large", U, V::post, "/v1/users", lim(R"("throttle_rate":"101gbit")"), 400,
       "bad_request", "limits.throttle_rate"},
      {"rate wrong type", U, V::post, "/v1/users", lim(R"("rate_down":true)"), 400, "bad_request",
       "limits.rate_down"},
      {"unlimited throttle", U, V::post, "/v1/users", lim(R"("throttle_rate":"unlimited")"), 400,
       "bad_request", "limits.throttle_rate"},
      {"bad size text", U, V::post, "/v1/users", lim(R"("quota":"50 GiBs")"), 400, "bad_request",
       "limits.quota"},
      {"size too large", U, V::post, "/v1/users", lim(R"("quota":99999999999999999999)"), 400,
       "bad_request", "limits.quota"},
      {"bad period", U, V::post, "/v1/users", lim(R"("period":"yearly")"), 400, "bad_request",
       "limits.period"},
      {"anchor 0", U, V::post, "/v1/users", lim(R"("anchor_day":0)"), 400, "bad_request",
       "limits.anchor_day"},
      {"weekly anchor 8", U, V::post, "/v1/users", lim(R"("period":"weekly","anchor_day":8)"), 400,
       "bad_request", "limits.anchor_day"},
      {"warn 101", U, V::post, "/v1/users", lim(R"("warn_percent":101)"), 400, "bad_request",
       "limits.warn_percent"},
      {"max_connections", U, V::post, "/v1/users", lim(R"("max_connections":1000001)"), 400,
       "bad_request", "limits.max_connections"},
      {"idle teardown", U, V::post, "/v1/users", lim(R"("idle_teardown_s":5)"), 400, "bad_request",
       "limits.idle_teardown_s"},
      {"bandwidth weight 0", U, V::post, "/v1/users", lim(R"("bandwidth_weight":0)"), 400,
       "bad_request", "limits.bandwidth_weight"},
      {"bandwidth weight 1001", U, V::patch, "/v1/users/cfguser",
       R"({"limits":{"bandwidth_weight":1001}})", 400, "bad_request", "limits.bandwidth_weight"},
      {"on_demand type", U, V::post, "/v1/users", lim(R"("on_demand":"true")"), 400, "bad_request",
       "limits.on_demand"},
      {"limits not object", U, V::post, "/v1/users", user(R"(,"limits":[])"), 400, "bad_request",
       "limits"},
      {"bad secret", U, V::post, "/v1/users", user(R"(,"secrets":["zz"])"), 400, "bad_request",
       "secrets[0]"},
      {"bad tls domain", U, V::post, "/v1/users", user(R"(,"tls_domain":"a b")"), 400,
       "bad_request", "tls_domain"},
      {"duplicate name", U, V::post, "/v1/users", R"({"name":"cfguser"})", 409, "conflict", ""},
      {"patch unknown user", U, V::patch, "/v1/users/nobody", R"({"comment":"x"})", 404,
       "not_found", ""},
      {"patch name field", U, V::patch, "/v1/users/cfguser", R"({"name":"x"})", 400, "bad_request",
       "name"},
      {"patch config user", U, V::patch, "/v1/users/cfguser", R"({"comment":"x"})", 403,
       "forbidden", ""},
      {"delete config user", U, V::delete_, "/v1/users/cfguser", "", 403, "forbidden", ""},
      {"enable with body", U, V::post, "/v1/users/cfguser/enable", R"({"x":1})", 400, "bad_request",
       "x"},
      {"rotate bad grace", U, V::post, "/v1/users/cfguser/rotate", R"({"grace_s":-1})", 400,
       "bad_request", "grace_s"},
      {"rotate bad secret", U, V::post, "/v1/users/cfguser/rotate", R"({"secret":"xyz"})", 400,
       "bad_request", "secret"},
      {"rotate unknown user", U, V::post, "/v1/users/nobody/rotate", "", 404, "not_found", ""},
      {"reset unknown user", U, V::post, "/v1/users/nobody/reset", "", 404, "not_found", ""},
      {"bad name in path", U, V::get, "/v1/users/bad%20name", "", 404, "not_found", ""},
      {"wrong method", U, V::delete_, "/v1/users", "", 405, "method_not_allowed", ""},
      {"GET on action", U, V::get, "/v1/users/cfguser/enable", "", 405, "method_not_allowed", ""},
      {"unknown path", U, V::get, "/v1/nope", "", 404, "not_found", ""},
      {"unversioned path", U, V::get, "/users", "", 404, "not_found", ""},
      {"oversized body", U, V::post, "/v1/users", R"({"name":"zed","comment":")" + big + "\"}", 413,
       "payload_too_large", ""},
      {"wrong content type", U, V::post, "/v1/users", R"({"name":"zed"})", 415,
       "unsupported_media_type", "", "text/plain"},
      {"no token on tcp", Via::kTcp, V::get, "/v1/users", "", 401, "unauthorized", "",
       "application/json", std::string()},
      {"wrong token on tcp", Via::kTcp, V::post, "/v1/users", R"({"name":"zed"})", 401,
       "unauthorized", "", "application/json", std::string("mtw_wrong")},
      {"token rotate over tcp", Via::kTcp, V::post, "/v1/token/rotate", "", 403, "forbidden", ""},
      {"usage bad by", U, V::get, "/v1/users/cfguser/usage?by=week", "", 400, "bad_request", "by"},
      {"usage bad date", U, V::get, "/v1/users/cfguser/usage?from=2026-13-01", "", 400,
       "bad_request", "from"},
      {"usage reversed", U, V::get, "/v1/users/cfguser/usage?from=2026-05-02&to=2026-05-01", "",
       400, "bad_request", "from"},
      {"usage unknown param", U, V::get, "/v1/users/cfguser/usage?since=1", "", 400, "bad_request",
       "since"},
      {"usage unknown user", U, V::get, "/v1/users/nobody/usage", "", 404, "not_found", ""},
      {"events limit 0", U, V::get, "/v1/events?limit=0", "", 400, "bad_request", "limit"},
      {"events limit 1001", U, V::get, "/v1/events?limit=1001", "", 400, "bad_request", "limit"},
      {"events bad after", U, V::get, "/v1/events?after=abc", "", 400, "bad_request", "after"},
      {"events duplicate param", U, V::get, "/v1/events?limit=1&limit=2", "", 400, "bad_request",
       "limit"},
      {"status with query", U, V::get, "/v1/status?x=1", "", 400, "bad_request", "x"},
      {"qr bad index", U, V::get, "/v1/users/cfguser/qr?index=5", "", 400, "bad_request", "index"},
      {"qr bad format", U, V::get, "/v1/users/cfguser/qr?format=gif", "", 400, "bad_request",
       "format"},
  };
}

TEST_F(ApiServerTest, RejectsBadRequestsWithoutChangingAnything) {
  const auto cases = bad_requests();
  ASSERT_GE(cases.size(), 30u);
  const std::string before = svc_.dump();
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.what);
    Reply r = call(b.via, b.method, b.target, b.body, b.content_type, b.token);
    EXPECT_EQ(r.status, b.status) << r.body;
    ASSERT_NO_THROW(r.code()) << r.body;
    EXPECT_EQ(r.code(), b.code) << r.body;
    EXPECT_EQ(r.field(), b.field) << r.body;
    if (b.status == 405) {
      EXPECT_FALSE(r.headers[http::field::allow].empty());
    }
    if (b.status == 401) {
      EXPECT_EQ(r.headers[http::field::www_authenticate], "Bearer");
    }
    EXPECT_EQ(svc_.dump(), before);
  }
}

// ---- connection caps, deadlines, refusal and authentication logging --------

// The lines the loggers write while it lives (thread-safe: the io thread logs).
class LogLines : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::size_t count(std::string_view needle) {
    std::lock_guard<std::mutex> l(mutex_);
    std::size_t n = 0;
    for (const auto& s : lines_) n += s.find(needle) != std::string::npos;
    return n;
  }
  std::string all() {
    std::lock_guard<std::mutex> l(mutex_);
    std::string out;
    for (const auto& s : lines_) out += s;
    return out;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    lines_.emplace_back(buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

struct LogCapture {
  LogCapture() { base::use_log_sink(sink); }
  ~LogCapture() { base::use_log_sink(nullptr); }
  std::shared_ptr<LogLines> sink = std::make_shared<LogLines>();
};

// A TCP connection to the API from `source` (any 127/8 address is local).
std::unique_ptr<asio::ip::tcp::socket> tcp_from(asio::io_context& io, const std::string& source,
                                                std::uint16_t port) {
  auto s = std::make_unique<asio::ip::tcp::socket>(io);
  s->open(asio::ip::tcp::v4());
  s->bind({asio::ip::make_address(source), 0});
  s->connect({asio::ip::make_address("127.0.0.1"), port});
  return s;
}

// True when the server closes `fd` (EOF or reset) within `ms`; the server
// sends nothing to a refused or idle connection.
bool closed_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

std::string metrics_line(const std::string& text, const std::string& prefix) {
  const auto at = text.find("\n" + prefix);
  if (at == std::string::npos) return "";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

// Held connections keep the caps full: each has sent a byte, so the short
// first-request deadline is past and the (10 s) request deadline applies.
class ApiCapsTest : public ApiServerTest {
 protected:
  ApiCapsTest() { request_timeout_ms_ = 10'000; }
  void hold_tcp(const std::string& source, int n) {
    for (int i = 0; i < n; ++i) {
      held_.push_back(tcp_from(io_client_, source, port_));
      asio::write(*held_.back(), asio::buffer("G", 1));
    }
  }
  asio::io_context io_client_;
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> held_;
};

TEST_F(ApiCapsTest, UnixSocketAnswersWhileTcpIsFull) {
  // The TCP cap (256) filled from 16 addresses of 16 connections each, and
  // more connections knocking.
  for (int p = 0; p < 16; ++p) hold_tcp("127.0.0." + std::to_string(10 + p), 16);
  auto extra = tcp_from(io_client_, "127.0.0.99", port_);
  EXPECT_TRUE(closed_within(extra->native_handle(), 2000));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(get(Via::kUnix, "/v1/status").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
}

TEST_F(ApiCapsTest, CapsConnectionsPerTcpPeer) {
  hold_tcp("127.0.0.1", 16);
  auto extra = tcp_from(io_client_, "127.0.0.1", port_);
  EXPECT_TRUE(closed_within(extra->native_handle(), 500));
  // Another address is served.
  http::request<http::string_body> req{http::verb::get, "/v1/status", 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::authorization, "Bearer " + token_);
  auto other = tcp_from(io_client_, "127.0.0.2", port_);
  EXPECT_EQ(exchange(*other, req).status, 200);
}

TEST_F(ApiCapsTest, ClosesAConnectionThatSendsNothing) {
  auto idle = tcp_from(io_client_, "127.0.0.1", port_);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_within(idle->native_handle(), 5000));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(1500));
  EXPECT_LT(waited, std::chrono::milliseconds(3500));  // not the 10 s request deadline
}

TEST_F(ApiCapsTest, LogsARefusalFloodInBoundedLines) {
  for (int p = 0; p < 16; ++p) hold_tcp("127.0.0." + std::to_string(10 + p), 16);
  LogCapture logs;
  const int flood = 2000;
  for (int i = 0; i < flood; ++i) {
    auto s = tcp_from(io_client_, "127.0.0.99", port_);
    EXPECT_TRUE(closed_within(s->native_handle(), 2000));
  }
  EXPECT_EQ(logs.sink->count("refused"), 1u) << logs.sink->all();
  EXPECT_EQ(logs.sink->count("api connection refused transport=tcp peer=127.0.0.99 "
                             "reason=listener_full"),
            1u)
      << logs.sink->all();
  const std::string m = get(Via::kUnix, "/metrics").body;
  EXPECT_EQ(metrics_line(m,
                         "mtwarden_api_connections_refused_total{transport=\"tcp\","
                         "reason=\"listener_full\"}"),
            "mtwarden_api_connections_refused_total{transport=\"tcp\",reason=\"listener_full\"} " +
                std::to_string(flood));
  on_io([this] { server_->stop(); });  // reports what the window counted
  EXPECT_EQ(logs.sink->count("api connections refused count=1999 peers=1 window_s=10"), 1u)
      << logs.sink->all();
}

TEST_F(ApiServerTest, LogsAndCountsFailedTcpAuthentication) {
  LogCapture logs;
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(
        call(Via::kTcp, http::verb::get, "/v1/status", "", "", i % 2 ? "" : "mtw_wrong").status,
        401);
  EXPECT_EQ(logs.sink->count("authentication"), 1u) << logs.sink->all();
  EXPECT_EQ(logs.sink->count("api authentication failed transport=tcp peer=127.0.0.1 "
                             "reason=wrong_token"),
            1u)
      << logs.sink->all();
  EXPECT_EQ(metrics_line(get(Via::kUnix, "/metrics").body, "mtwarden_api_auth_failures_total{"),
            "mtwarden_api_auth_failures_total{transport=\"tcp\"} 30");
  on_io([this] { server_->stop(); });
  EXPECT_EQ(logs.sink->count("api authentication failures count=29 peers=1 window_s=10"), 1u)
      << logs.sink->all();
}

TEST_F(ApiServerTest, AnswersAnUnauthenticatedLargeBodyWith401) {
  asio::io_context io;
  auto s = tcp_from(io, "127.0.0.1", port_);
  const std::string head =
      "POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000000000\r\n\r\n";
  asio::write(*s, asio::buffer(head));
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(*s, buf, res);
  EXPECT_EQ(res.result_int(), 401) << res.body();
  // With the token, the same head gets 413 without the body being read.
  auto t = tcp_from(io, "127.0.0.1", port_);
  const std::string authed =
      "POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
      "Bearer " +
      token_ + "\r\nContent-Length: 1000000000\r\n\r\n";
  asio::write(*t, asio::buffer(authed));
  http::response<http::string_body> res2;
  boost::beast::flat_buffer buf2;
  http::read(*t, buf2, res2);
  EXPECT_EQ(res2.result_int(), 413) << res2.body();
}

// Root finds room on the Unix socket when other local users have filled it.
class ApiRootReserveTest : public ApiServerTest {
 protected:
  ApiRootReserveTest() {
    request_timeout_ms_ = 10'000;  // the held connections stay until the end
    limits_.unix_max = 2;
    limits_.unix_root_reserve = 2;
    cfg_.socket_group = "nogroup";
  }
};

TEST_F(ApiRootReserveTest, RootIsServedWhenTheSocketIsFull) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  const group* g = ::getgrnam("nogroup");
  ASSERT_NE(g, nullptr);
  const gid_t gid = g->gr_gid;
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
  int ready[2], hold[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(hold), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // only syscalls: the parent has threads
    ::close(hold[1]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(65534) != 0) ::_exit(2);
    char ok = 0;
    for (int i = 0; i < 3; ++i) {  // two fill the cap, the third is refused
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(3);
      if (::write(fd, "G", 1) != 1) ::_exit(4);
      if (i == 2) {
        pollfd p{fd, POLLIN, 0};
        char c;
        ok = ::poll(&p, 1, 2000) == 1 && ::recv(fd, &c, 1, 0) <= 0 ? 'r' : 'n';
      }
    }
    if (::write(ready[1], &ok, 1) != 1) ::_exit(5);
    char c;
    (void)::read(hold[0], &c, 1);  // until the parent is done
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(hold[0]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  EXPECT_EQ(ok, 'r') << "the non-root connection over the cap was not refused";
  EXPECT_EQ(get(Via::kUnix, "/v1/status").status, 200);
  EXPECT_EQ(get(Via::kUnix, "/v1/status").status, 200);
  ::close(hold[1]);
  ::close(ready[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

}  // namespace
}  // namespace mtw::api
