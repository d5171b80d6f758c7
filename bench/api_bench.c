// The floor under the API's CPU per request (api_bench.py --only floor): the
// least a server process can do per HTTP request over a Unix socket with
// epoll, i.e. the wake-up plus the same syscalls the API makes (epoll_wait,
// recv, send of a fixed ~1.2 KB answer, the recv that finds the socket
// empty), with no parsing or JSON. Built at run time by api_bench.py (cc -O2).
//
//   api_bench_floor SOCKET_PATH
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
    return 2;
  }
  int ls = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  unlink(argv[1]);
  if (ls < 0 || bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 16) != 0) {
    perror("api_bench_floor: listen");
    return 1;
  }
  enum { kBody = 1165 };  // the size of one user's status
  static char answer[kBody + 128];
  int hl = snprintf(
      answer, sizeof answer,
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", kBody);
  memset(answer + hl, ' ', kBody);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  char buf[4096];
  for (;;) {
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.fd = c};
        if (c >= 0) epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        continue;
      }
      // Edge-triggered: read until EAGAIN, answering each request (a
      // client that sends its next request at once is answered, not lost).
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        close(fd);
        continue;
      }
      while (r > 0) {
        send(fd, answer, (size_t)hl + kBody, MSG_NOSIGNAL);
        r = recv(fd, buf, sizeof buf, 0);  // usually EAGAIN, as Asio's next read
      }
    }
  }
}
