#include "ipc/control_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/detached.hpp>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>

#include "ipc/control_socket.h"

namespace mtw::ipc {
namespace {

using base::UniqueFd;
using Next = ControlChannel::Next;
using End = ControlChannel::End;
using Stage = ControlChannel::Stage;

// A connected SEQPACKET pair: `ours` goes to the channel, `peer` plays the other side.
struct Pair {
  UniqueFd ours, peer;
};

Pair seqpacket_pair() {
  int sp[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  return {UniqueFd(sp[0]), UniqueFd(sp[1])};
}

void send_raw(int sock, proto::ByteSpan bytes, int fd = -1) {
  ASSERT_TRUE(control::send_datagram(sock, bytes, fd));
}

void send_msg(int sock, const control::Message& m, int fd = -1) {
  auto bytes = control::encode(m);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  send_raw(sock, *bytes, fd);
}

// What one run saw.
struct Seen {
  std::vector<control::MsgType> types;
  std::vector<std::size_t> fd_counts;
  std::vector<base::Errc> errors;
  std::vector<Stage> stages;
  std::optional<End> end;
};

struct Policy {
  std::size_t stop_after_messages = SIZE_MAX;
  bool stop_on_error = false;
  bool close_in_handler = false;
};

// Runs a channel over `fd` until it ends (the io_context runs dry).
Seen run_channel(UniqueFd fd, Policy policy = {}) {
  asio::io_context io;
  asio::posix::stream_descriptor d(io, fd.release());
  error_code ec;
  d.non_blocking(true, ec);
  Seen seen;
  ControlChannel channel(
      d,
      [&](control::Message m, std::vector<UniqueFd> fds) {
        seen.types.push_back(control::type_of(m));
        seen.fd_counts.push_back(fds.size());
        if (policy.close_in_handler) d.close();
        return seen.types.size() >= policy.stop_after_messages ? Next::kStop : Next::kContinue;
      },
      [&](Stage stage, const base::Error& e) {
        seen.stages.push_back(stage);
        seen.errors.push_back(e.code);
        return policy.stop_on_error ? Next::kStop : Next::kContinue;
      });
  asio::co_spawn(
      io, [&]() -> awaitable<void> { seen.end = co_await channel.run(); }, asio::detached);
  io.run();
  return seen;
}

TEST(ControlChannel, DeliversMessagesWithTheirFdsInOrderThenEof) {
  auto [ours, peer] = seqpacket_pair();
  send_msg(peer.get(), control::ReportRequest{});
  send_msg(peer.get(), control::SetLimits{10, control::kKeep, 500});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  control::Handoff h;
  h.data = proto::Bytes(5, std::byte{1});
  send_msg(peer.get(), h, r.get());
  peer.reset();  // EOF after the three
  auto seen = run_channel(std::move(ours));
  ASSERT_EQ(seen.types.size(), 3u);
  EXPECT_EQ(seen.types[0], control::MsgType::kReportRequest);
  EXPECT_EQ(seen.types[1], control::MsgType::kSetLimits);
  EXPECT_EQ(seen.types[2], control::MsgType::kHandoff);
  EXPECT_EQ(seen.fd_counts, (std::vector<std::size_t>{0, 0, 1}));
  EXPECT_TRUE(seen.errors.empty());
  EXPECT_EQ(seen.end, End::kEof);
}

TEST(ControlChannel, GarbageIsReportedAndTheNextMessageStillArrives) {
  auto [ours, peer] = seqpacket_pair();
  const std::string junk = "GET / HTTP/1.1\r\n\r\n";
  send_raw(peer.get(), proto::as_bytes(junk));
  send_msg(peer.get(), control::ReportRequest{});
  peer.reset();
  auto seen = run_channel(std::move(ours));
  EXPECT_EQ(seen.errors, (std::vector<base::Errc>{base::Errc::kBadInput}));
  EXPECT_EQ(seen.stages, (std::vector<Stage>{Stage::kDecode}));
  ASSERT_EQ(seen.types.size(), 1u);
  EXPECT_EQ(seen.types[0], control::MsgType::kReportRequest);
  EXPECT_EQ(seen.end, End::kEof);
}

TEST(ControlChannel, PartialFrameIsReportedNotWaitedFor) {
  // One datagram is one message: a header that promises more body than the
  // datagram holds is an error at once, never a reason to wait for more.
  auto [ours, peer] = seqpacket_pair();
  auto full = control::encode(control::SetLimits{1, 2, 3});
  ASSERT_TRUE(full);
  send_raw(peer.get(), proto::ByteSpan(full->data(), full->size() - 4));
  send_raw(peer.get(),
           proto::ByteSpan(full->data(), control::kHeaderSize - 1));  // not even a header
  send_msg(peer.get(), control::SetLimits{1, 2, 3});
  peer.reset();
  auto seen = run_channel(std::move(ours));
  ASSERT_EQ(seen.errors.size(), 2u);
  ASSERT_EQ(seen.types.size(), 1u);
  EXPECT_EQ(seen.types[0], control::MsgType::kSetLimits);
  EXPECT_EQ(seen.end, End::kEof);
}

TEST(ControlChannel, OversizedDatagramIsDroppedAndItsFdClosed) {
  std::signal(SIGPIPE, SIG_IGN);  // the check below writes to a pipe without a reader
  auto [ours, peer] = seqpacket_pair();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  const int sndbuf = 1 << 20;
  ASSERT_EQ(::setsockopt(peer.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  proto::Bytes big(control::kMaxMessageSize + 1, std::byte{0x4d});
  send_raw(peer.get(), big, r.get());
  r.reset();  // the only other copy of the read end is in flight
  send_msg(peer.get(), control::ReportRequest{});
  peer.reset();
  auto seen = run_channel(std::move(ours));
  EXPECT_EQ(seen.errors, (std::vector<base::Errc>{base::Errc::kTooLarge}));
  EXPECT_EQ(seen.stages, (std::vector<Stage>{Stage::kReceive}));
  ASSERT_EQ(seen.types.size(), 1u);
  EXPECT_EQ(seen.types[0], control::MsgType::kReportRequest);
  // The dropped datagram's fd was closed: nobody holds the read end any more.
  EXPECT_EQ(::write(w.get(), "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
}

TEST(ControlChannel, FdCountThatDoesNotMatchTheTypeIsAnError) {
  auto [ours, peer] = seqpacket_pair();
  control::Handoff h;
  send_msg(peer.get(), h);  // a handoff must carry its socket
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  send_msg(peer.get(), control::ReportRequest{}, r.get());  // and a report request none
  peer.reset();
  auto seen = run_channel(std::move(ours));
  EXPECT_EQ(seen.errors.size(), 2u);
  EXPECT_TRUE(seen.types.empty());
  EXPECT_EQ(seen.end, End::kEof);
}

TEST(ControlChannel, HandlerStopEndsTheRunBeforeTheRest) {
  auto [ours, peer] = seqpacket_pair();
  send_msg(peer.get(), control::ReportRequest{});
  send_msg(peer.get(), control::ReportRequest{});
  send_msg(peer.get(), control::ReportRequest{});
  auto seen = run_channel(std::move(ours), Policy{.stop_after_messages = 2});
  EXPECT_EQ(seen.types.size(), 2u);
  EXPECT_EQ(seen.end, End::kStopped);
}

TEST(ControlChannel, ErrorHandlerStopEndsTheRun) {
  auto [ours, peer] = seqpacket_pair();
  send_raw(peer.get(), proto::as_bytes(std::string_view("junk junk junk")));
  send_msg(peer.get(), control::ReportRequest{});
  auto seen = run_channel(std::move(ours), Policy{.stop_on_error = true});
  EXPECT_EQ(seen.errors.size(), 1u);
  EXPECT_TRUE(seen.types.empty());
  EXPECT_EQ(seen.end, End::kStopped);
}

TEST(ControlChannel, DescriptorClosedByAHandlerEndsTheRun) {
  auto [ours, peer] = seqpacket_pair();
  send_msg(peer.get(), control::ReportRequest{});
  send_msg(peer.get(), control::ReportRequest{});
  auto seen = run_channel(std::move(ours), Policy{.close_in_handler = true});
  EXPECT_EQ(seen.types.size(), 1u);
  EXPECT_EQ(seen.end, End::kClosed);
}

TEST(ControlChannel, WaitsForDatagramsThatArriveLater) {
  auto [ours, peer] = seqpacket_pair();
  asio::io_context io;
  asio::posix::stream_descriptor d(io, ours.release());
  error_code ec;
  d.non_blocking(true, ec);
  std::vector<control::MsgType> types;
  std::optional<End> end;
  ControlChannel channel(
      d,
      [&](control::Message m, std::vector<UniqueFd>) {
        types.push_back(control::type_of(m));
        return Next::kContinue;
      },
      [](Stage, const base::Error&) { return Next::kContinue; });
  asio::co_spawn(
      io, [&]() -> awaitable<void> { end = co_await channel.run(); }, asio::detached);
  io.poll();  // the channel now waits on an empty socket
  EXPECT_TRUE(types.empty());
  EXPECT_FALSE(end);
  send_msg(peer.get(), control::Lane{3}, d.native_handle());
  io.poll();
  ASSERT_EQ(types.size(), 1u);
  EXPECT_EQ(types[0], control::MsgType::kLane);
  peer.reset();
  io.run();
  EXPECT_EQ(end, End::kEof);
}

}  // namespace
}  // namespace mtw::ipc
