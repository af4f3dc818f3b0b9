/*
 * media_engine.c - the gateway's optional native media engine (`--media-engine native`).
 *
 * Loaded with Deno.dlopen by src/media/native/engine.ts. It owns the gateway's two UDP sockets (the
 * door port and the phone media port) and one thread that receives on both:
 *
 *   - door media (CALLUP) of a call whose route is installed goes straight to the phones' UDP
 *     addresses, sent from the media socket;
 *   - phone audio (CALLDOWN) from the talker's latched address goes to the door from the door
 *     socket, paced to the real-time rate and rewritten (parties, timestamp, frame number, header
 *     form, magic) exactly as src/media/relay.ts does it;
 *   - everything else (signalling, name resolution, phone control datagrams, media of calls without
 *     a native route) is queued for JavaScript in a bounded ring per socket; a full ring drops the
 *     datagram and counts it.
 *
 * JavaScript owns every decision (which call, which phones, who talks): it installs and removes
 * routes; this file only applies them. Counters are read and reset by JavaScript.
 *
 * Build: cc -O2 -shared -fPIC -o libintercom_media.so media_engine.c -lpthread
 * (scripts/build_native.sh builds it for x86_64 and aarch64).
 *
 * Threading: one mutex guards the routes; the thread takes it once per received batch. Rings are
 * single-producer (the thread) single-consumer (JavaScript's main thread), guarded by the same
 * kind of mutex, with a condition variable for me_wait.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ME_VERSION 1
#define NSOCK 2          /* 0: door socket, 1: phone media socket */
#define BATCH 32         /* datagrams per recvmmsg */
#define DGRAM 2048       /* largest datagram received whole (as the JS ports) */
#define RING 512         /* datagrams queued for JavaScript per socket */
#define SLOTS 256        /* calls with routes */
#define FAN 16           /* phones per call */
#define HASH 1024        /* open-addressing tables, power of two, > 2 * SLOTS */

/* Media packet layout (docs/door-protocol.md §5). */
#define OFF_COMMAND 6
#define OFF_OP 8
#define OFF_CALLER 9
#define OFF_TS 57
#define OFF_DATA_TYPE 61
#define OFF_FRAME_NO 63
#define OFF_DATA_LEN 73
#define MEDIA_SHORT 77
#define MEDIA_LONG 86
#define VIDEOTALK 150
#define CALLUP 7
#define CALLDOWN 8
#define DT_AUDIO 1
#define FRAME_MS 8.0
#define PACE_BURST 16.0

/* Per-call counters, read and reset by me_collect (order = engine.ts COUNTER). */
enum {
  C_DOOR_IN, C_DOOR_IN_BYTES, C_TO_PHONES, C_TO_PHONES_BYTES, C_PHONE_IN, C_PHONE_IN_BYTES,
  C_TO_DOOR, C_TO_DOOR_BYTES, C_DROP_DOOR_AUDIO, C_DROP_PACED, C_DROP_NOT_MEDIA, C_N
};
/* Engine-wide counters (order = engine.ts STAT). */
enum {
  S_RECEIVED0, S_RECEIVED1, S_UP0, S_UP1, S_RING_FULL0, S_RING_FULL1, S_TRUNCATED, S_SEND_ERRORS,
  S_N
};

struct slot {
  int used;
  /* door route */
  uint32_t door_ip; /* network order */
  uint16_t door_port; /* network order */
  int door_native; /* door media of this call is forwarded here, not passed up */
  int talking; /* door audio is heard (there is a talker) */
  int nfan;
  struct sockaddr_in fan[FAN];
  int form; /* the door's header form: 77 or 86 */
  /* talker route */
  int talker;
  uint32_t tk_ip;
  uint16_t tk_port;
  uint8_t parties48[48];
  double pace_tokens, pace_at, ts_origin, last_heard;
  double out_ts;
  int out_frame;
  uint64_t c[C_N];
};

static struct slot slots[SLOTS];
static int16_t door_tab[HASH];   /* door ip -> slot + 1 (0 empty) */
static int16_t tk_tab[HASH];     /* talker (ip, port) -> slot + 1 */
static uint64_t stats[S_N];
static uint8_t magic[6], std_magic[6] = {'X', 'X', 'X', 'C', 'I', 'D'};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int fds[NSOCK] = {-1, -1};
static int stop_fd = -1;
static int running;
static pthread_t thr;

struct entry {
  uint32_t ip;
  uint16_t port;
  uint16_t len;
  uint8_t data[DGRAM];
};
struct ring {
  struct entry e[RING];
  unsigned head, tail; /* head: next to take; tail: next to fill */
};
static struct ring rings[NSOCK];
static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv = PTHREAD_COND_INITIALIZER;
static int stopping;

/*
 * Hooks for the fuzz harness (native/fuzz_media_engine.c), which defines them before it includes
 * this file, to feed drain() and see what flush() sends without sockets or the real clock. The
 * library build leaves them undefined and uses the system calls.
 */
#ifndef ME_RECVMMSG
#define ME_RECVMMSG recvmmsg
#endif
#ifndef ME_SENDMMSG
#define ME_SENDMMSG sendmmsg
#endif

static double now_ms(void) {
#ifdef ME_NOW_MS
  return ME_NOW_MS();
#else
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
#endif
}

static unsigned hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x45d9f3bu;
  x ^= x >> 16;
  return x & (HASH - 1);
}

static uint32_t tk_key(uint32_t ip, uint16_t port) { return ip * 2654435761u ^ port; }

/* Rebuilds both tables from the slots (route changes are rare). Caller holds mu. */
static void rebuild(void) {
  memset(door_tab, 0, sizeof door_tab);
  memset(tk_tab, 0, sizeof tk_tab);
  for (int i = 0; i < SLOTS; i++) {
    struct slot *s = &slots[i];
    if (!s->used) continue;
    if (s->door_ip) {
      unsigned h = hash32(s->door_ip);
      while (door_tab[h]) h = (h + 1) & (HASH - 1);
      door_tab[h] = (int16_t)(i + 1);
    }
    if (s->talker) {
      unsigned h = hash32(tk_key(s->tk_ip, s->tk_port));
      while (tk_tab[h]) h = (h + 1) & (HASH - 1);
      tk_tab[h] = (int16_t)(i + 1);
    }
  }
}

static struct slot *by_door(uint32_t ip) {
  for (unsigned h = hash32(ip);; h = (h + 1) & (HASH - 1)) {
    int k = door_tab[h];
    if (!k) return NULL;
    if (slots[k - 1].door_ip == ip) return &slots[k - 1];
  }
}

static struct slot *by_talker(uint32_t ip, uint16_t port) {
  for (unsigned h = hash32(tk_key(ip, port));; h = (h + 1) & (HASH - 1)) {
    int k = tk_tab[h];
    if (!k) return NULL;
    struct slot *s = &slots[k - 1];
    if (s->tk_ip == ip && s->tk_port == port) return s;
  }
}

static int payload_offset(const uint8_t *b, int n) {
  if (n < MEDIA_SHORT) return 0;
  int data_len = b[OFF_DATA_LEN] | (b[OFF_DATA_LEN + 1] << 8);
  int at = n - data_len;
  return at == MEDIA_SHORT || at == MEDIA_LONG ? at : 0;
}

/* ---- the outgoing batch of one socket ---- */

struct out {
  struct mmsghdr m[BATCH * FAN];
  struct iovec iov[BATCH * FAN];
  struct sockaddr_in to[BATCH * FAN];
  int n;
};
static struct out outs[NSOCK];
static uint8_t scratch[BATCH][DGRAM + 16]; /* re-framed phone audio */

static void flush(int sock) {
  struct out *o = &outs[sock];
  int sent = 0;
  while (sent < o->n) {
    int r = ME_SENDMMSG(fds[sock], o->m + sent, (unsigned)(o->n - sent), MSG_DONTWAIT);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      /* One failed datagram (unreachable, buffer full): count it and go on with the rest. */
      stats[S_SEND_ERRORS]++;
      sent++;
      continue;
    }
    sent += r;
  }
  o->n = 0;
}

static void queue_send(int sock, const uint8_t *data, int len, const struct sockaddr_in *to) {
  struct out *o = &outs[sock];
  if (o->n == BATCH * FAN) flush(sock);
  int k = o->n++;
  o->to[k] = *to;
  o->iov[k].iov_base = (void *)data;
  o->iov[k].iov_len = (size_t)len;
  memset(&o->m[k].msg_hdr, 0, sizeof o->m[k].msg_hdr);
  o->m[k].msg_hdr.msg_name = &o->to[k];
  o->m[k].msg_hdr.msg_namelen = sizeof o->to[k];
  o->m[k].msg_hdr.msg_iov = &o->iov[k];
  o->m[k].msg_hdr.msg_iovlen = 1;
}

/* ---- handling ---- */

static int is_magic(const uint8_t *b, const uint8_t *m) { return memcmp(b, m, 6) == 0; }

/* Door socket datagram: 1 when forwarded or dropped here, 0 to pass it up. Holds mu. */
static int door_datagram(uint8_t *b, int n, const struct sockaddr_in *from) {
  if (n < MEDIA_SHORT || b[OFF_OP] != CALLUP || b[OFF_COMMAND] != VIDEOTALK || !is_magic(b, magic))
    return 0;
  struct slot *s = by_door(from->sin_addr.s_addr);
  if (!s || !s->door_native) return 0;
  s->c[C_DOOR_IN]++;
  s->c[C_DOOR_IN_BYTES] += (uint64_t)n;
  int at = payload_offset(b, n);
  if (at) s->form = at;
  if (!s->talking && b[OFF_DATA_TYPE] == DT_AUDIO && b[OFF_DATA_TYPE + 1] == 0) {
    s->c[C_DROP_DOOR_AUDIO]++;
    return 1;
  }
  for (int i = 0; i < s->nfan; i++) queue_send(1, b, n, &s->fan[i]);
  s->c[C_TO_PHONES] += (uint64_t)s->nfan;
  s->c[C_TO_PHONES_BYTES] += (uint64_t)n * (uint64_t)s->nfan;
  return 1;
}

/* Media socket datagram: 1 when forwarded or dropped here, 0 to pass it up. Holds mu. */
static int phone_datagram(uint8_t *b, int n, const struct sockaddr_in *from, int k) {
  if (n > 0 && b[0] == '{') return 0; /* control: JavaScript latches */
  struct slot *s = by_talker(from->sin_addr.s_addr, from->sin_port);
  if (!s) return 0;
  double now = now_ms();
  s->last_heard = now;
  s->c[C_PHONE_IN]++;
  s->c[C_PHONE_IN_BYTES] += (uint64_t)n;
  int at = payload_offset(b, n);
  if (n < MEDIA_SHORT || b[OFF_OP] != CALLDOWN || b[OFF_COMMAND] != VIDEOTALK ||
      !(is_magic(b, magic) || is_magic(b, std_magic)) || at == 0) {
    s->c[C_DROP_NOT_MEDIA]++;
    return 1;
  }
  double tokens = s->pace_tokens + (now - s->pace_at) / FRAME_MS;
  if (tokens > PACE_BURST) tokens = PACE_BURST;
  s->pace_at = now;
  if (tokens < 1) {
    s->pace_tokens = tokens;
    s->c[C_DROP_PACED]++;
    return 1;
  }
  s->pace_tokens = tokens - 1;
  if (isnan(s->ts_origin)) s->ts_origin = now - FRAME_MS;
  double elapsed = floor(now - s->ts_origin);
  double next = s->out_ts + FRAME_MS;
  s->out_ts = elapsed > next ? elapsed : next;
  s->out_frame = s->out_frame >= 65535 ? 1 : s->out_frame + 1;
  uint8_t *out = b;
  int len = n;
  int form = s->form == MEDIA_LONG || s->form == MEDIA_SHORT ? s->form : at;
  if (at != form) {
    int data_len = n - at;
    out = scratch[k];
    len = form + data_len;
    memcpy(out, b, MEDIA_SHORT);
    memset(out + MEDIA_SHORT, 0, (size_t)(form - MEDIA_SHORT));
    memcpy(out + form, b + at, (size_t)data_len);
  }
  memcpy(out, magic, 6);
  memcpy(out + OFF_CALLER, s->parties48, 48);
  uint32_t ts = (uint32_t)(uint64_t)s->out_ts;
  out[OFF_TS] = ts & 0xff;
  out[OFF_TS + 1] = (ts >> 8) & 0xff;
  out[OFF_TS + 2] = (ts >> 16) & 0xff;
  out[OFF_TS + 3] = ts >> 24;
  out[OFF_FRAME_NO] = s->out_frame & 0xff;
  out[OFF_FRAME_NO + 1] = (s->out_frame >> 8) & 0xff;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = s->door_port};
  to.sin_addr.s_addr = s->door_ip;
  queue_send(0, out, len, &to);
  s->c[C_TO_DOOR]++;
  s->c[C_TO_DOOR_BYTES] += (uint64_t)len;
  return 1;
}

static void pass_up(int sock, const uint8_t *b, int n, const struct sockaddr_in *from) {
  pthread_mutex_lock(&ring_mu);
  struct ring *r = &rings[sock];
  if (r->tail - r->head == RING) {
    stats[S_RING_FULL0 + sock]++;
  } else {
    struct entry *e = &r->e[r->tail % RING];
    e->ip = from->sin_addr.s_addr;
    e->port = from->sin_port;
    e->len = (uint16_t)n;
    memcpy(e->data, b, (size_t)n);
    int was_empty = r->tail == r->head;
    r->tail++;
    stats[S_UP0 + sock]++;
    if (was_empty) pthread_cond_broadcast(&ring_cv);
  }
  pthread_mutex_unlock(&ring_mu);
}

static uint8_t rx[NSOCK][BATCH][DGRAM];

static void drain(int sock) {
  struct mmsghdr m[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  for (int round = 0; round < 8; round++) {
    for (int k = 0; k < BATCH; k++) {
      iov[k].iov_base = rx[sock][k];
      iov[k].iov_len = DGRAM;
      memset(&m[k].msg_hdr, 0, sizeof m[k].msg_hdr);
      m[k].msg_hdr.msg_name = &from[k];
      m[k].msg_hdr.msg_namelen = sizeof from[k];
      m[k].msg_hdr.msg_iov = &iov[k];
      m[k].msg_hdr.msg_iovlen = 1;
    }
    int n = ME_RECVMMSG(fds[sock], m, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    stats[S_RECEIVED0 + sock] += (uint64_t)n;
    pthread_mutex_lock(&mu);
    for (int k = 0; k < n; k++) {
      int len = (int)m[k].msg_len;
      if (m[k].msg_hdr.msg_flags & MSG_TRUNC) {
        stats[S_TRUNCATED]++; /* longer than any datagram of either protocol */
        continue;
      }
      if (from[k].sin_family != AF_INET) continue;
      int done = sock == 0 ? door_datagram(rx[sock][k], len, &from[k])
                           : phone_datagram(rx[sock][k], len, &from[k], k);
      if (!done) pass_up(sock, rx[sock][k], len, &from[k]);
    }
    pthread_mutex_unlock(&mu);
    flush(0);
    flush(1);
    if (n < BATCH) return;
  }
}

static void *loop(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "intercom-media"); /* for top, perf and the bench's chrt */
  struct pollfd p[3] = {
      {.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
  for (;;) {
    int r = poll(p, 3, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[2].revents) break;
    if (p[0].revents) drain(0);
    if (p[1].revents) drain(1);
  }
  return NULL;
}

/* ---- the API (engine.ts) ---- */

/** The ABI version engine.ts expects. */
int me_version(void) { return ME_VERSION; }

/**
 * Binds socket `sock` (0 door, 1 media) on 0.0.0.0:port, with SO_REUSEADDR when `reuse`.
 * Returns the bound port, or -errno.
 */
int me_bind(int sock, uint16_t port, int reuse) {
  if (sock < 0 || sock >= NSOCK || running || fds[sock] >= 0) return -EINVAL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (reuse) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  fds[sock] = fd;
  return ntohs(sa.sin_port);
}

/** Joins `group` on the interface with address `iface` (network order); loop on, TTL 5. */
int me_join(int sock, uint32_t group, uint32_t iface) {
  if (sock < 0 || sock >= NSOCK || fds[sock] < 0) return -EINVAL;
  struct ip_mreq mr = {.imr_multiaddr.s_addr = group, .imr_interface.s_addr = iface};
  if (setsockopt(fds[sock], IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) return -errno;
  int one = 1, ttl = 5;
  setsockopt(fds[sock], IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
  setsockopt(fds[sock], IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  return 0;
}

/** Starts the thread once both sockets are bound; `m` is the door protocol's 6-byte magic. */
int me_start(const uint8_t *m) {
  if (running || fds[0] < 0 || fds[1] < 0) return -EINVAL;
  memcpy(magic, m, 6);
  memset(slots, 0, sizeof slots);
  memset(stats, 0, sizeof stats);
  memset(rings, 0, sizeof rings);
  rebuild();
  stopping = 0;
  stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) return -errno;
  int e = pthread_create(&thr, NULL, loop, NULL);
  if (e) {
    close(stop_fd);
    stop_fd = -1;
    return -e;
  }
  running = 1;
  return 0;
}

/** Stops the thread, closes the sockets and wakes every me_wait. Idempotent. */
void me_stop(void) {
  pthread_mutex_lock(&ring_mu);
  stopping = 1;
  pthread_cond_broadcast(&ring_cv);
  pthread_mutex_unlock(&ring_mu);
  if (running) {
    uint64_t one = 1;
    ssize_t w = write(stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(thr, NULL);
    running = 0;
    close(stop_fd);
    stop_fd = -1;
  }
  for (int i = 0; i < NSOCK; i++) {
    if (fds[i] >= 0) close(fds[i]);
    fds[i] = -1;
  }
}

/**
 * Blocks (on a helper thread: engine.ts calls it non-blocking) until a datagram waits for
 * JavaScript, the engine stops or `timeout_ms` pass. Returns a mask of sockets with datagrams
 * (bit 0 door, bit 1 media), or -1 once stopped.
 */
int me_wait(int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&ring_mu);
  int mask = 0;
  for (;;) {
    if (stopping) {
      mask = -1;
      break;
    }
    for (int i = 0; i < NSOCK; i++)
      if (rings[i].tail != rings[i].head) mask |= 1 << i;
    if (mask) break;
    if (pthread_cond_timedwait(&ring_cv, &ring_mu, &until) == ETIMEDOUT) break;
  }
  pthread_mutex_unlock(&ring_mu);
  return mask;
}

/**
 * Takes the next queued datagram of `sock` into `buf` (`cap` bytes) and its source into
 * `from[0]` (IPv4, network order) and `from[1]` (port). Returns its length, or -1 when none.
 */
int me_take(int sock, uint8_t *buf, int cap, uint32_t *from) {
  if (sock < 0 || sock >= NSOCK || cap < 0) return -1;
  pthread_mutex_lock(&ring_mu);
  struct ring *r = &rings[sock];
  int n = -1;
  if (r->head != r->tail) {
    struct entry *e = &r->e[r->head % RING];
    n = e->len < cap ? e->len : cap;
    memcpy(buf, e->data, (size_t)n);
    from[0] = e->ip;
    from[1] = ntohs(e->port);
    r->head++;
  }
  pthread_mutex_unlock(&ring_mu);
  return n;
}

/** Sends from socket `sock` to ip (network order):port. Returns 0 or -errno. */
int me_send(int sock, const uint8_t *buf, int len, uint32_t ip, uint16_t port) {
  if (sock < 0 || sock >= NSOCK || fds[sock] < 0) return -EBADF;
  if (len < 0) return -EINVAL;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  to.sin_addr.s_addr = ip;
  ssize_t r = sendto(fds[sock], buf, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
  return r < 0 ? -errno : 0;
}

/**
 * Sets the door route of call slot `i`: its door, whether its door media is forwarded here
 * (`native`), whether door audio is heard (`talking`), its header form and its phones
 * (`n` addresses: ips[k] network order, ports[k]). A slot is in use from its first door route.
 */
int me_door(int i, uint32_t door_ip, uint16_t door_port, int native, int talking, int form, int n,
            const uint32_t *ips, const uint16_t *ports) {
  if (i < 0 || i >= SLOTS || n < 0 || n > FAN) return -EINVAL;
  pthread_mutex_lock(&mu);
  struct slot *s = &slots[i];
  if (!s->used) {
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->ts_origin = NAN;
  }
  s->door_ip = door_ip;
  s->door_port = htons(door_port);
  s->door_native = native;
  s->talking = talking;
  if (form == MEDIA_SHORT || form == MEDIA_LONG) s->form = form;
  s->nfan = n;
  for (int k = 0; k < n; k++) {
    s->fan[k] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(ports[k])};
    s->fan[k].sin_addr.s_addr = ips[k];
  }
  rebuild();
  pthread_mutex_unlock(&mu);
  return 0;
}

/**
 * Sets (`on`) or clears the talker route of slot `i`: phone audio from ip:port goes to the door,
 * continuing the JS relay's state (`state`: out timestamp, out frame, age of the timestamp origin
 * in ms or NaN, pace tokens).
 */
int me_talker(int i, int on, uint32_t ip, uint16_t port, const uint8_t *parties48,
              const double *state) {
  if (i < 0 || i >= SLOTS || !slots[i].used) return -EINVAL;
  pthread_mutex_lock(&mu);
  struct slot *s = &slots[i];
  s->talker = on;
  if (on) {
    double now = now_ms();
    s->tk_ip = ip;
    s->tk_port = htons(port);
    memcpy(s->parties48, parties48, 48);
    s->out_ts = state[0];
    s->out_frame = (int)state[1];
    s->ts_origin = isnan(state[2]) ? NAN : now - state[2];
    s->pace_tokens = state[3];
    s->pace_at = now;
    s->last_heard = 0;
  }
  rebuild();
  pthread_mutex_unlock(&mu);
  return 0;
}

/**
 * Reads and resets slot `i`'s counters into out[0..C_N), then out[C_N..]: header form, out
 * timestamp, out frame, age of the timestamp origin (ms, NaN: none), pace tokens, ms since the
 * talker was last heard (-1: not since the route was set).
 */
int me_collect(int i, double *out) {
  if (i < 0 || i >= SLOTS) return -EINVAL;
  pthread_mutex_lock(&mu);
  struct slot *s = &slots[i];
  double now = now_ms();
  for (int k = 0; k < C_N; k++) {
    out[k] = (double)s->c[k];
    s->c[k] = 0;
  }
  out[C_N] = s->form;
  out[C_N + 1] = s->out_ts;
  out[C_N + 2] = s->out_frame;
  out[C_N + 3] = isnan(s->ts_origin) ? NAN : now - s->ts_origin;
  double tokens = s->pace_tokens + (now - s->pace_at) / FRAME_MS;
  out[C_N + 4] = tokens > PACE_BURST ? PACE_BURST : tokens;
  out[C_N + 5] = s->last_heard > 0 ? now - s->last_heard : -1;
  pthread_mutex_unlock(&mu);
  return 0;
}

/** Frees slot `i` (the call ended): its media is not forwarded from now on. */
int me_free(int i) {
  if (i < 0 || i >= SLOTS) return -EINVAL;
  pthread_mutex_lock(&mu);
  memset(&slots[i], 0, sizeof slots[i]);
  rebuild();
  pthread_mutex_unlock(&mu);
  return 0;
}

/** Engine-wide counters into out[0..S_N). */
void me_stats(double *out) {
  pthread_mutex_lock(&ring_mu);
  for (int k = 0; k < S_N; k++) out[k] = (double)stats[k];
  pthread_mutex_unlock(&ring_mu);
}
