/*
 * fuzz_media_engine.c - libFuzzer harness of the native media engine (native/media_engine.c).
 *
 * It includes media_engine.c, so the static receive path (drain, door_datagram, phone_datagram,
 * pass_up, flush) is driven exactly as the engine's thread drives it, with recvmmsg, sendmmsg and
 * the clock replaced by the hooks below: no socket is opened, fds stay at invalid values and the
 * thread is never started. Each input is a program of operations: routes (me_door, me_talker,
 * me_free), batches of datagrams of any length and content on the door or the phone socket,
 * me_take with any capacity, me_collect, me_wait(0), me_stats, clock steps and failing sends.
 *
 * Beside ASan and UBSan, it checks what media_engine.c and docs/door-protocol.md §5 promise, against
 * a model of its own (a linear search over the routes, not the engine's hash tables):
 *   - a datagram longer than 2048 bytes is counted as truncated and neither forwarded nor passed up;
 *   - what is passed up is the datagram as received (bytes, source), in order, and me_take returns
 *     min(length, cap) bytes of it; at most 512 wait per socket, the rest are counted as ring_full;
 *   - door media (CALLUP, VIDEOTALK, the door's magic) of a native route goes unchanged to each of
 *     the route's phones, door audio only while talking; the door's header form is learnt from it;
 *   - phone audio (CALLDOWN) of the talker goes to the route's door with the door's header form
 *     (77 or 86; the phone's own while none is known), the payload unchanged, data length right,
 *     the door's magic, the route's parties, frame numbers counting 1..65535; what is not sent is
 *     counted as paced or not media;
 *   - the counters add up: received = truncated + handled + passed up + ring full, send errors are
 *     the failures injected.
 *
 * Build and run: scripts/fuzz_native.sh [--seconds N].
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct mmsghdr;
static int fake_recvmmsg(int fd, struct mmsghdr *m, unsigned vlen, int flags, void *timeout);
static int fake_sendmmsg(int fd, struct mmsghdr *m, unsigned vlen, int flags);
static double fake_now(void);
#define ME_RECVMMSG fake_recvmmsg
#define ME_SENDMMSG fake_sendmmsg
#define ME_NOW_MS fake_now

#include "media_engine.c"

#define CHECK(c)                                                                   \
  do {                                                                             \
    if (!(c)) {                                                                    \
      fprintf(stderr, "fuzz_media_engine: invariant failed at line %d: %s\n", __LINE__, #c); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

/* Fake sockets: the door socket is fd FD0, the media socket FD1 (both invalid for the kernel). */
#define FD0 (-100)
#define FD1 (-101)
#define MAXLEN 2100  /* longest datagram the harness sends (longer than DGRAM: truncation) */
#define MAXPEND 640  /* datagrams per batch operation (more than RING: ring overflow) */

/* ---- the input ---- */

static const uint8_t *in_p;
static size_t in_n;

static uint8_t u8(void) {
  if (!in_n) return 0;
  in_n--;
  return *in_p++;
}
static uint16_t u16(void) { return (uint16_t)(u8() | u8() << 8); }
static uint32_t u32(void) { return (uint32_t)u16() | (uint32_t)u16() << 16; }

/* Addresses from a small set, so that datagrams hit routes; now and then any. */
static uint32_t pick_ip(void) {
  uint8_t b = u8();
  if (b < 224) return htonl(0x0a000001u + (b & 3)); /* 10.0.0.1 .. 10.0.0.4 */
  if (b < 240) return 0;
  return u32();
}
static uint16_t pick_port(void) {
  uint8_t b = u8();
  if (b < 224) return (uint16_t)(5000 + (b & 3));
  return u16();
}
static int pick_slot(void) {
  uint8_t b = u8();
  if (b < 240) return b & 7;
  if (b < 248) return (int)u8(); /* 0..255 */
  return b & 1 ? -1 : SLOTS;
}

/* ---- the clock and the fake sockets ---- */

static double clock_ms;
static double fake_now(void) { return clock_ms; }

struct pend {
  uint32_t ip;
  uint16_t port; /* network order */
  sa_family_t family;
  int len;
  uint8_t data[MAXLEN];
};
static struct pend pend[MAXPEND];
static int npend, next_pend;

static int fake_recvmmsg(int fd, struct mmsghdr *m, unsigned vlen, int flags, void *timeout) {
  (void)flags;
  (void)timeout;
  CHECK(fd == FD0 || fd == FD1);
  if (next_pend == npend) {
    errno = EAGAIN;
    return -1;
  }
  unsigned k = 0;
  for (; k < vlen && next_pend < npend; k++, next_pend++) {
    struct pend *p = &pend[next_pend];
    struct msghdr *h = &m[k].msg_hdr;
    CHECK(h->msg_iovlen == 1 && h->msg_iov[0].iov_len == DGRAM);
    size_t c = (size_t)p->len < h->msg_iov[0].iov_len ? (size_t)p->len : h->msg_iov[0].iov_len;
    memcpy(h->msg_iov[0].iov_base, p->data, c);
    struct sockaddr_in sa = {.sin_family = p->family, .sin_port = p->port};
    sa.sin_addr.s_addr = p->ip;
    CHECK(h->msg_namelen >= sizeof sa);
    memcpy(h->msg_name, &sa, sizeof sa);
    h->msg_namelen = sizeof sa;
    h->msg_flags = (size_t)p->len > c ? MSG_TRUNC : 0;
    m[k].msg_len = (unsigned)c;
  }
  return (int)k;
}

/* A datagram the engine tried to send (every attempt once, in order). */
struct sent {
  struct sockaddr_in to;
  int len;
  const uint8_t *base;
  uint8_t data[DGRAM + 16];
};
#define MAXSENT (MAXPEND * FAN)
static struct sent sent_log[NSOCK][MAXSENT];
static int nsent[NSOCK];
static int flush_seen[NSOCK], retry_pending[NSOCK];
static int send_mode;  /* 0 ok, 1 every call fails, 2 partial sends, 3 EINTR then ok */
static uint64_t send_errors_injected;

static int fake_sendmmsg(int fd, struct mmsghdr *m, unsigned vlen, int flags) {
  CHECK(fd == FD0 || fd == FD1);
  CHECK(flags == MSG_DONTWAIT);
  int sock = fd == FD0 ? 0 : 1;
  int base = (int)(m - outs[sock].m);
  CHECK(base >= 0 && vlen >= 1 && base + (int)vlen <= BATCH * FAN && base + (int)vlen == outs[sock].n);
  int retry = retry_pending[sock];
  retry_pending[sock] = 0;
  if (base == 0 && !retry) flush_seen[sock] = 0;
  for (unsigned j = 0; j < vlen; j++) {
    int idx = base + (int)j;
    if (idx < flush_seen[sock]) continue;
    flush_seen[sock] = idx + 1;
    struct msghdr *h = &m[j].msg_hdr;
    CHECK(h->msg_iovlen == 1 && h->msg_namelen == sizeof(struct sockaddr_in));
    CHECK(h->msg_iov[0].iov_len <= DGRAM + 16);
    CHECK(nsent[sock] < MAXSENT);
    struct sent *s = &sent_log[sock][nsent[sock]++];
    memcpy(&s->to, h->msg_name, sizeof s->to);
    s->len = (int)h->msg_iov[0].iov_len;
    s->base = h->msg_iov[0].iov_base;
    memcpy(s->data, h->msg_iov[0].iov_base, (size_t)s->len); /* ASan: the whole buffer is readable */
  }
  switch (send_mode) {
  case 1:
    send_errors_injected++;
    errno = ENETUNREACH;
    return -1;
  case 2: {
    int r = (int)(vlen > 3 ? 3 : vlen) - 1; /* 0: counted as a failure too */
    if (r == 0) send_errors_injected++;
    return r;
  }
  case 3:
    if (base == 0 && !retry) {
      retry_pending[sock] = 1;
      errno = EINTR;
      return -1;
    }
    return (int)vlen;
  default:
    return (int)vlen;
  }
}

/* ---- the model ---- */

struct mslot {
  int used, native, talking, nfan, talker, form, frame;
  uint32_t door_ip, tk_ip;
  uint16_t door_port, tk_port; /* network order */
  uint32_t fan_ip[FAN];
  uint16_t fan_port[FAN]; /* network order */
  uint8_t parties[48];
  uint64_t c[C_N]; /* counters collected, then the engine's of this slot */
};
static struct mslot ms[SLOTS];

struct up {
  uint32_t ip;
  uint16_t port;
  int len;
  uint8_t data[DGRAM];
};
static struct up shadow[NSOCK][RING];
static unsigned sh_head[NSOCK], sh_n[NSOCK];
static uint64_t want_up[NSOCK], want_full[NSOCK], want_trunc, want_recv[NSOCK];

static int mpayload(const uint8_t *b, int n) {
  if (n < 77) return 0;
  int dl = b[73] | b[74] << 8;
  return n - dl == 77 || n - dl == 86 ? n - dl : 0;
}

static int model_door(uint32_t ip) {
  if (!ip) return -1;
  for (int i = 0; i < SLOTS; i++)
    if (ms[i].used && ms[i].door_ip == ip) return i;
  return -1;
}
static int model_talker(uint32_t ip, uint16_t port) {
  for (int i = 0; i < SLOTS; i++)
    if (ms[i].used && ms[i].talker && ms[i].tk_ip == ip && ms[i].tk_port == port) return i;
  return -1;
}

static void shadow_push(int sock, const struct pend *p) {
  if (sh_n[sock] == RING) {
    want_full[sock]++;
    return;
  }
  struct up *u = &shadow[sock][(sh_head[sock] + sh_n[sock]) % RING];
  u->ip = p->ip;
  u->port = p->port;
  u->len = p->len;
  memcpy(u->data, p->data, (size_t)p->len);
  sh_n[sock]++;
  want_up[sock]++;
}

static void check_stats(void) {
  for (int s = 0; s < NSOCK; s++) {
    CHECK(rings[s].tail - rings[s].head == sh_n[s]);
    CHECK(sh_n[s] <= RING);
    CHECK(stats[S_UP0 + s] == want_up[s]);
    CHECK(stats[S_RING_FULL0 + s] == want_full[s]);
    CHECK(stats[S_RECEIVED0 + s] == want_recv[s]);
  }
  CHECK(stats[S_TRUNCATED] == want_trunc);
  CHECK(stats[S_SEND_ERRORS] == send_errors_injected);
}

/* ---- operations ---- */

static void op_door(void) {
  int i = pick_slot();
  uint32_t ip = pick_ip();
  uint16_t port = pick_port();
  uint8_t f = u8();
  int native = f & 1, talking = (f >> 1) & 1;
  int forms[4] = {0, MEDIA_SHORT, MEDIA_LONG, u8()};
  int form = forms[(f >> 2) & 3];
  int n = u8() % (FAN + 2);
  uint32_t ips[FAN + 1];
  uint16_t ports[FAN + 1];
  for (int k = 0; k < n; k++) {
    ips[k] = pick_ip();
    ports[k] = pick_port();
  }
  int r = me_door(i, ip, port, native, talking, form, n, ips, ports);
  if (i < 0 || i >= SLOTS || n > FAN) {
    CHECK(r == -EINVAL);
    return;
  }
  CHECK(r == 0);
  struct mslot *m = &ms[i];
  if (!m->used) {
    memset(m, 0, sizeof *m);
    m->used = 1;
  }
  m->door_ip = ip;
  m->door_port = htons(port);
  m->native = native;
  m->talking = talking;
  if (form == MEDIA_SHORT || form == MEDIA_LONG) m->form = form;
  m->nfan = n;
  for (int k = 0; k < n; k++) {
    m->fan_ip[k] = ips[k];
    m->fan_port[k] = htons(ports[k]);
  }
}

static void op_talker(void) {
  int i = pick_slot();
  int on = u8() & 1;
  uint32_t ip = pick_ip();
  uint16_t port = pick_port();
  uint8_t parties[48];
  for (int k = 0; k < 48; k++) parties[k] = (uint8_t)(k < 8 ? u8() : 'a' + k);
  /* The relay's state, as src/media/relay.ts keeps it: out timestamp >= 0, frame 0..65535, age of
   * the origin or NaN, tokens up to the burst. */
  double st[4];
  uint8_t f = u8();
  st[0] = f & 1 ? (double)u32() * (f & 2 ? 4096.0 : 1.0) : (double)u16();
  st[1] = (double)u16();
  st[2] = f & 4 ? NAN : (double)u16();
  st[3] = (double)(int8_t)u8() / 8.0;
  int r = me_talker(i, on, ip, port, parties, st);
  if (i < 0 || i >= SLOTS || !ms[i].used) {
    CHECK(r == -EINVAL);
    return;
  }
  CHECK(r == 0);
  struct mslot *m = &ms[i];
  m->talker = on;
  if (on) {
    m->tk_ip = ip;
    m->tk_port = htons(port);
    memcpy(m->parties, parties, 48);
    m->frame = (int)st[1];
  }
}

static void gen_datagram(struct pend *p) {
  p->ip = pick_ip();
  p->port = htons(pick_port());
  uint8_t kind = u8();
  p->family = kind == 255 ? AF_INET6 : AF_INET;
  uint8_t fill = u8();
  switch (kind & 3) {
  case 0: { /* raw bytes (a real packet in the seeds), the rest of them a pattern */
    p->len = u16() % MAXLEN;
    int k = 0;
    for (; k < p->len && in_n; k++) p->data[k] = u8();
    for (; k < p->len; k++) p->data[k] = (uint8_t)(fill + k);
    break;
  }
  case 1:
  case 2: { /* a media packet, short or long header form, more or less well formed */
    int form = kind & 4 ? MEDIA_LONG : MEDIA_SHORT;
    uint8_t big = u8();
    int plen = big < 192 ? big : u16() % (MAXLEN - form + 1);
    p->len = form + plen;
    for (int k = 0; k < p->len; k++) p->data[k] = (uint8_t)(fill * 7 + k);
    static const uint8_t oem[6] = {'A', 'B', 'C', 'D', 'E', 'F'};
    uint8_t v = u8();
    memcpy(p->data, (v & 3) == 0 ? std_magic : (v & 3) == 1 ? oem : magic, 6);
    p->data[OFF_COMMAND] = v & 4 ? u8() : VIDEOTALK;
    p->data[7] = 1;
    p->data[OFF_OP] = v & 8 ? u8() : (kind & 1 ? CALLUP : CALLDOWN);
    p->data[OFF_DATA_TYPE] = v & 16 ? 0 : DT_AUDIO;
    p->data[OFF_DATA_TYPE + 1] = v & 32 ? u8() : 0;
    int dl = v & 64 ? u16() : plen;
    p->data[OFF_DATA_LEN] = (uint8_t)dl;
    p->data[OFF_DATA_LEN + 1] = (uint8_t)(dl >> 8);
    if (v & 128) { /* a few bytes anywhere */
      int c = u8() & 7;
      for (int k = 0; k < c; k++) p->data[u16() % p->len] = u8();
    }
    break;
  }
  default: /* control, or lengths at the edges */
    if (fill & 1) {
      p->len = 1 + u8();
      memset(p->data, ' ', (size_t)p->len);
      p->data[0] = '{';
    } else {
      static const int edge[8] = {0, 1, 76, 77, 86, 2047, 2048, 2049};
      p->len = edge[(fill >> 1) & 7];
      memset(p->data, fill, (size_t)p->len);
    }
  }
}

/* Feeds npend datagrams to socket `sock` through drain(), then checks what came out. */
static void run_batch(int sock) {
  nsent[0] = nsent[1] = 0;
  next_pend = 0;
  /* The model's decision for each datagram, in order. */
  static int slot_of[MAXPEND], fwd[MAXPEND];
  uint64_t before[SLOTS][C_N];
  for (int i = 0; i < SLOTS; i++) memcpy(before[i], slots[i].c, sizeof before[i]);
  for (int k = 0; k < npend; k++) {
    struct pend *p = &pend[k];
    slot_of[k] = -1;
    fwd[k] = 0;
    want_recv[sock]++;
    if (p->len > DGRAM) {
      want_trunc++;
      continue;
    }
    if (p->family != AF_INET) continue;
    const uint8_t *b = p->data;
    int n = p->len;
    if (sock == 0) {
      int i = -1;
      if (n >= MEDIA_SHORT && b[OFF_OP] == CALLUP && b[OFF_COMMAND] == VIDEOTALK &&
          memcmp(b, magic, 6) == 0)
        i = model_door(p->ip);
      if (i < 0 || !ms[i].native) {
        shadow_push(0, p);
        continue;
      }
      slot_of[k] = i;
      ms[i].c[C_DOOR_IN]++;
      int at = mpayload(b, n);
      if (at) ms[i].form = at;
      fwd[k] = ms[i].talking || !(b[OFF_DATA_TYPE] == DT_AUDIO && b[OFF_DATA_TYPE + 1] == 0);
    } else {
      int i = n > 0 && b[0] == '{' ? -1 : model_talker(p->ip, p->port);
      if (i < 0) {
        shadow_push(1, p);
        continue;
      }
      slot_of[k] = i;
      ms[i].c[C_PHONE_IN]++;
      fwd[k] = n >= MEDIA_SHORT && b[OFF_OP] == CALLDOWN && b[OFF_COMMAND] == VIDEOTALK &&
               (memcmp(b, magic, 6) == 0 || memcmp(b, std_magic, 6) == 0) && mpayload(b, n);
    }
  }
  unsigned tail0 = rings[sock].tail;
  int rounds = 0;
  while (next_pend < npend) {
    drain(sock);
    CHECK(++rounds <= MAXPEND);
  }
  drain(sock); /* nothing left: returns at once */
  if (sock == 0) {
    CHECK(nsent[0] == 0);
    /* Door media goes unchanged to every phone of the route, in order. */
    int j = 0;
    for (int k = 0; k < npend; k++) {
      if (!fwd[k]) continue;
      struct mslot *m = &ms[slot_of[k]];
      for (int f = 0; f < m->nfan; f++, j++) {
        CHECK(j < nsent[1]);
        struct sent *s = &sent_log[1][j];
        CHECK(s->len == pend[k].len && memcmp(s->data, pend[k].data, (size_t)s->len) == 0);
        CHECK(s->to.sin_family == AF_INET && s->to.sin_addr.s_addr == m->fan_ip[f] &&
              s->to.sin_port == m->fan_port[f]);
      }
    }
    CHECK(j == nsent[1]);
  } else {
    CHECK(nsent[1] == 0);
    /* Phone audio goes to the door in the door's form; the ones not sent were paced. */
    int j = 0;
    uint64_t paced = 0;
    for (int k = 0; k < npend; k++) {
      if (slot_of[k] < 0) continue;
      int i = slot_of[k];
      struct mslot *m = &ms[i];
      if (!fwd[k]) {
        m->c[C_DROP_NOT_MEDIA]++;
        continue;
      }
      const uint8_t *b = pend[k].data;
      int n = pend[k].len, at = mpayload(b, n);
      int form = m->form ? m->form : at;
      int len = form + (n - at);
      struct sent *s = j < nsent[0] ? &sent_log[0][j] : NULL;
      int match = s && s->to.sin_addr.s_addr == m->door_ip && s->to.sin_port == m->door_port &&
                  s->len == len && memcmp(s->data + form, b + at, (size_t)(n - at)) == 0 &&
                  memcmp(s->data + 9, m->parties, 48) == 0 &&
                  memcmp(s->data + OFF_COMMAND, b + OFF_COMMAND, 3) == 0;
      if (!match) {
        m->c[C_DROP_PACED]++;
        paced++;
        continue;
      }
      j++;
      CHECK(s->to.sin_family == AF_INET);
      CHECK(memcmp(s->data, magic, 6) == 0);
      CHECK(memcmp(s->data + OFF_DATA_TYPE, b + OFF_DATA_TYPE, 2) == 0);
      CHECK(memcmp(s->data + OFF_FRAME_NO + 2, b + OFF_FRAME_NO + 2, MEDIA_SHORT - OFF_FRAME_NO - 2) == 0);
      CHECK(mpayload(s->data, s->len) == form);
      if (form == MEDIA_LONG) {
        for (int q = MEDIA_SHORT; q < MEDIA_LONG; q++)
          CHECK(s->data[q] == (at == MEDIA_LONG ? b[q] : 0));
      }
      int frame = s->data[OFF_FRAME_NO] | s->data[OFF_FRAME_NO + 1] << 8;
      int want = m->frame >= 65535 ? 1 : m->frame + 1;
      CHECK(frame == want);
      m->frame = frame;
      m->c[C_TO_DOOR]++;
    }
    CHECK(j == nsent[0]);
    uint64_t d = 0;
    for (int i = 0; i < SLOTS; i++) d += slots[i].c[C_DROP_PACED] - before[i][C_DROP_PACED];
    CHECK(d == paced);
  }
  /* What was passed up is the datagram as received. */
  for (unsigned t = tail0; t != rings[sock].tail; t++) {
    struct entry *e = &rings[sock].e[t % RING];
    unsigned pos = t - rings[sock].head;
    CHECK(pos < sh_n[sock]);
    struct up *u = &shadow[sock][(sh_head[sock] + pos) % RING];
    CHECK(e->ip == u->ip && e->port == u->port && e->len == u->len);
    CHECK(memcmp(e->data, u->data, (size_t)u->len) == 0);
  }
  /* The engine's counters of each slot are the model's. */
  for (int i = 0; i < SLOTS; i++) {
    if (!ms[i].used) continue;
    CHECK(slots[i].form == ms[i].form);
    CHECK(slots[i].c[C_DOOR_IN] == ms[i].c[C_DOOR_IN]);
    CHECK(slots[i].c[C_PHONE_IN] == ms[i].c[C_PHONE_IN]);
    CHECK(slots[i].c[C_TO_DOOR] == ms[i].c[C_TO_DOOR]);
    CHECK(slots[i].c[C_DROP_NOT_MEDIA] == ms[i].c[C_DROP_NOT_MEDIA]);
    CHECK(slots[i].c[C_DROP_PACED] == ms[i].c[C_DROP_PACED]);
    CHECK(slots[i].c[C_PHONE_IN] ==
          slots[i].c[C_TO_DOOR] + slots[i].c[C_DROP_PACED] + slots[i].c[C_DROP_NOT_MEDIA]);
  }
  check_stats();
}

static void op_batch(int sock) {
  uint8_t b = u8();
  int count = b < 200 ? 1 + b % 40 : b < 250 ? 1 + u16() % MAXPEND : MAXPEND;
  uint8_t rep = u8(); /* repeat each generated datagram this many times (cheap floods) */
  int each = rep < 128 ? 1 : 1 + rep % 64;
  npend = 0;
  while (npend < count) {
    gen_datagram(&pend[npend]);
    int k = npend++;
    for (int r = 1; r < each && npend < count; r++) pend[npend++] = pend[k];
  }
  run_batch(sock);
}

static void op_take(void) {
  int sock = u8() & 1;
  static const int caps[4] = {0, 77, DGRAM, 1};
  uint8_t c = u8();
  int cap = c < 128 ? caps[c & 3] : u16() % (DGRAM + 64);
  uint8_t *buf = malloc(cap ? (size_t)cap : 1); /* exactly cap bytes: ASan sees any overflow */
  uint32_t from[2];
  int n = me_take(sock, buf, cap, from);
  if (!sh_n[sock]) {
    CHECK(n == -1);
  } else {
    struct up *u = &shadow[sock][sh_head[sock]];
    int want = u->len < cap ? u->len : cap;
    CHECK(n == want);
    CHECK(memcmp(buf, u->data, (size_t)n) == 0);
    CHECK(from[0] == u->ip && from[1] == ntohs(u->port));
    sh_head[sock] = (sh_head[sock] + 1) % RING;
    sh_n[sock]--;
  }
  free(buf);
}

static void collect_into_model(int i) {
  double *out = malloc(sizeof(double) * (C_N + 6));
  int r = me_collect(i, out);
  if (i < 0 || i >= SLOTS) {
    CHECK(r == -EINVAL);
    free(out);
    return;
  }
  CHECK(r == 0);
  for (int k = 0; k < C_N; k++) CHECK(slots[i].c[k] == 0);
  if (ms[i].used) {
    CHECK(out[C_N] == ms[i].form);
    CHECK(out[C_DOOR_IN] == (double)ms[i].c[C_DOOR_IN]);
    CHECK(out[C_PHONE_IN] == (double)ms[i].c[C_PHONE_IN]);
    CHECK(out[C_TO_DOOR] == (double)ms[i].c[C_TO_DOOR]);
    CHECK(out[C_N + 4] <= PACE_BURST || isnan(out[C_N + 4]));
    memset(ms[i].c, 0, sizeof ms[i].c);
  }
  free(out);
}

static void op_free(void) {
  int i = pick_slot();
  collect_into_model(i);
  int r = me_free(i);
  if (i < 0 || i >= SLOTS) {
    CHECK(r == -EINVAL);
    return;
  }
  CHECK(r == 0);
  memset(&ms[i], 0, sizeof ms[i]);
}

static void reset(void) {
  memset(slots, 0, sizeof slots);
  memset(stats, 0, sizeof stats);
  for (int s = 0; s < NSOCK; s++) rings[s].head = rings[s].tail = outs[s].n = 0;
  rebuild();
  memset(ms, 0, sizeof ms);
  memset(sh_head, 0, sizeof sh_head);
  memset(sh_n, 0, sizeof sh_n);
  memset(want_up, 0, sizeof want_up);
  memset(want_full, 0, sizeof want_full);
  memset(want_recv, 0, sizeof want_recv);
  want_trunc = 0;
  send_errors_injected = 0;
  send_mode = 0;
  memset(retry_pending, 0, sizeof retry_pending);
  fds[0] = FD0;
  fds[1] = FD1;
  stopping = 0;
  clock_ms = 1e6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in_p = data;
  in_n = size;
  reset();
  /* The door protocol's magic: the standard one or an OEM's. */
  uint8_t first = u8();
  memcpy(magic, first & 1 ? (const uint8_t *)"OEMCID" : std_magic, 6);
  for (int ops = 0; in_n && ops < 256; ops++) {
    switch (u8() % 11) {
    case 0: op_door(); break;
    case 1: op_talker(); break;
    case 2: op_batch(0); break;
    case 3: op_batch(1); break;
    case 4: op_take(); break;
    case 5: collect_into_model(pick_slot()); break;
    case 6: op_free(); break;
    case 7: { /* the clock: small steps, a pause, a leap */
      uint8_t b = u8();
      clock_ms += b < 200 ? b / 8.0 : b < 250 ? u16() : (double)u32() * 1000.0;
      break;
    }
    case 8: send_mode = u8() & 3; break;
    case 9: {
      int mask = me_wait(0);
      CHECK(mask == ((sh_n[0] ? 1 : 0) | (sh_n[1] ? 2 : 0)));
      double st[S_N];
      me_stats(st);
      for (int k = 0; k < S_N; k++) CHECK(st[k] == (double)stats[k]);
      check_stats();
      break;
    }
    default: {
      uint8_t b[4] = {1, 2, 3, 4};
      CHECK(me_send(u8() & 1, b, 4, pick_ip(), pick_port()) == -EBADF); /* no socket */
    }
    }
  }
  return 0;
}
