/*
 * fwd_thread.c - a tiny UDP forwarder thread to load into Deno with Deno.dlopen
 * (the "last resort" in docs/performance.md).  JavaScript owns the control plane
 * (which source goes where); this thread owns the data plane.
 *
 *   int  fwd_start(uint16_t port_a, uint16_t port_b)   bind 127.0.0.1 ports, start thread
 *   int  fwd_route(int side, uint16_t src_port, uint16_t dst_port)
 *        side 0: datagram on A from 127.0.0.1:src_port -> sent from B to 127.0.0.1:dst_port
 *        side 1: datagram on B from 127.0.0.1:src_port -> sent from A to 127.0.0.1:dst_port
 *        dst_port 0 removes the route.  Thread-safe (single writer, any time).
 *   void fwd_stats(uint64_t out[4])   received, forwarded, unrouted, send errors
 *   void fwd_stop(void)
 *
 * The route table here is keyed by source port only (bench mapping); a product
 * version would key by (ip, port) and carry the destination ip too.
 * Data path: poll() + recvmmsg()/sendmmsg() batches of up to 64.
 *
 * Build: cc -O2 -shared -fPIC -o libfwd.so fwd_thread.c -lpthread
 * (one .so per target architecture, e.g. aarch64-linux-gnu-gcc for arm64).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define BUF 2048

static int fds[2] = {-1, -1};
static _Atomic uint16_t routes[2][65536]; /* [side][src port] -> dst port, 0 = none */
static _Atomic uint64_t st_recv, st_fwd, st_unrouted, st_err;
static _Atomic int running;
static pthread_t thr;

static int bind_udp(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

static void drain(int side) {
  static unsigned char data[2][BATCH][BUF];
  static struct sockaddr_in from[2][BATCH], to[2][BATCH];
  struct mmsghdr rx[BATCH], tx[BATCH];
  struct iovec iov[BATCH], oiov[BATCH];
  int in = fds[side], out = fds[!side];
  for (;;) {
    for (int k = 0; k < BATCH; k++) {
      iov[k].iov_base = data[side][k];
      iov[k].iov_len = BUF;
      memset(&rx[k].msg_hdr, 0, sizeof rx[k].msg_hdr);
      rx[k].msg_hdr.msg_name = &from[side][k];
      rx[k].msg_hdr.msg_namelen = sizeof from[side][k];
      rx[k].msg_hdr.msg_iov = &iov[k];
      rx[k].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(in, rx, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    st_recv += (uint64_t)n;
    int m = 0;
    for (int k = 0; k < n; k++) {
      uint16_t dst = atomic_load_explicit(&routes[side][ntohs(from[side][k].sin_port)], memory_order_relaxed);
      if (!dst) {
        st_unrouted++;
        continue;
      }
      to[side][m] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(dst)};
      to[side][m].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      oiov[m].iov_base = data[side][k];
      oiov[m].iov_len = rx[k].msg_len;
      memset(&tx[m].msg_hdr, 0, sizeof tx[m].msg_hdr);
      tx[m].msg_hdr.msg_name = &to[side][m];
      tx[m].msg_hdr.msg_namelen = sizeof to[side][m];
      tx[m].msg_hdr.msg_iov = &oiov[m];
      tx[m].msg_hdr.msg_iovlen = 1;
      m++;
    }
    int sent = 0;
    while (sent < m) {
      int r = sendmmsg(out, tx + sent, (unsigned)(m - sent), 0);
      if (r <= 0) {
        st_err += (uint64_t)(m - sent);
        break;
      }
      sent += r;
    }
    st_fwd += (uint64_t)sent;
    if (n < BATCH) return;
  }
}

static void *loop(void *arg) {
  (void)arg;
  struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
  while (running) {
    if (poll(p, 2, 200) <= 0) continue;
    if (p[0].revents & POLLIN) drain(0);
    if (p[1].revents & POLLIN) drain(1);
  }
  return NULL;
}

int fwd_start(uint16_t port_a, uint16_t port_b) {
  if (running) return -EBUSY;
  int a = bind_udp(port_a);
  if (a < 0) return a;
  int b = bind_udp(port_b);
  if (b < 0) {
    close(a);
    return b;
  }
  fds[0] = a;
  fds[1] = b;
  running = 1;
  int e = pthread_create(&thr, NULL, loop, NULL);
  if (e) {
    running = 0;
    close(a);
    close(b);
    return -e;
  }
  return 0;
}

int fwd_route(int side, uint16_t src_port, uint16_t dst_port) {
  if (side < 0 || side > 1) return -EINVAL;
  atomic_store_explicit(&routes[side][src_port], dst_port, memory_order_relaxed);
  return 0;
}

void fwd_stats(uint64_t out[4]) {
  out[0] = st_recv;
  out[1] = st_fwd;
  out[2] = st_unrouted;
  out[3] = st_err;
}

void fwd_stop(void) {
  if (!running) return;
  running = 0;
  pthread_join(thr, NULL);
  close(fds[0]);
  close(fds[1]);
}
