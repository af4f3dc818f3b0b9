/*
 * relay.c - minimal single-threaded C reference relay (see README.md).
 *
 *   relay PORT_A PORT_B DOOR_BASE PHONE_BASE CALLS
 *
 * Socket A = 127.0.0.1:PORT_A (door side), socket B = 127.0.0.1:PORT_B (phone side).
 * Datagram on A from 127.0.0.1:(DOOR_BASE+i), 0 <= i < CALLS
 *     -> sent from B to 127.0.0.1:(PHONE_BASE+i)
 * Datagram on B from 127.0.0.1:(PHONE_BASE+i)
 *     -> sent from A to 127.0.0.1:(DOOR_BASE+i)
 * Anything else is dropped.  Prints "READY" on stdout once both sockets are bound.
 * poll() + recvfrom(MSG_DONTWAIT)/sendto, one packet per syscall, default socket
 * buffers unless RELAY_RCVBUF=<bytes> is set (experiment only).
 *
 * Build: cc -O2 -o relay relay.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bind_udp(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    fprintf(stderr, "bind %d: %s\n", port, strerror(errno));
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: relay PORT_A PORT_B DOOR_BASE PHONE_BASE CALLS\n");
    return 2;
  }
  int pa = atoi(argv[1]), pb = atoi(argv[2]);
  int door_base = atoi(argv[3]), phone_base = atoi(argv[4]), calls = atoi(argv[5]);
  int fa = bind_udp(pa), fb = bind_udp(pb);
  const char *rb = getenv("RELAY_RCVBUF"); /* optional SO_RCVBUF experiment */
  if (rb && atoi(rb) > 0) {
    int v = atoi(rb);
    setsockopt(fa, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v);
    setsockopt(fb, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v);
  }
  printf("READY\n");
  fflush(stdout);
  struct pollfd pfd[2] = {{.fd = fa, .events = POLLIN}, {.fd = fb, .events = POLLIN}};
  unsigned char buf[65536];
  for (;;) {
    if (poll(pfd, 2, -1) < 0 && errno != EINTR) return 1;
    for (int s = 0; s < 2; s++) {
      if (!(pfd[s].revents & POLLIN)) continue;
      int in = s ? fb : fa, out = s ? fa : fb;
      int src_base = s ? phone_base : door_base, dst_base = s ? door_base : phone_base;
      for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(in, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0) break;
        int i = ntohs(from.sin_port) - src_base;
        if (i < 0 || i >= calls) continue;
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(dst_base + i)};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sendto(out, buf, (size_t)n, 0, (struct sockaddr *)&to, sizeof to);
      }
    }
  }
}
