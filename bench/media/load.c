/*
 * load.c - paced intercom media load generator + receiver for relay benchmarks.
 *
 * Simulates N calls.  Call i owns two UDP sockets on loopback:
 *   door  socket bound to DOOR_IP:DOOR_BASE+i : sends door video (1277 B, 200 pkt/s) and
 *                                        door audio (141 B, 125 pkt/s) to relay port A,
 *                                        receives phone audio back from relay port A
 *   phone socket bound to 127.0.0.1:PHONE_BASE+i : sends phone audio (141 B, 125 pkt/s)
 *                                        to relay port B, receives door video/audio from B
 * DOOR_IP is 127.0.0.1 for every call, or with --door-ip-base X the address X+i
 * (one loopback IP per door, as the product keys doors by IP; 127.0.0.0/8 only).
 *
 * Every datagram is a valid XXXCID media packet (door-protocol.md section 5): door
 * streams CALLUP (op 7), phone audio CALLDOWN (op 8), 77-byte header with a correct
 * Datalen (length - 77) at bytes 73-74.  The bench's own fields (call, stream,
 * sequence number, send time) are in the payload from byte 77, which a relay that
 * rewrites the header (bytes 9-76) leaves alone.  Latency is measured from the
 * CLOCK_MONOTONIC send timestamp to the user-space receive time.
 *
 * Sends are spread evenly: each of the three stream groups (video, door audio,
 * phone audio) is one periodic sequence with interval period/N that walks the
 * calls in order, so the aggregate is smooth at any N.
 *
 * Web-phone talkers (ws_viewers.ts, kind 3) send their audio over the relay's WebSocket; the
 * relay forwards it to the door sockets here, where it is counted apart (talk_ws_*), as the
 * UDP talker's audio is (talk_udp_*, also in the totals).  --no-phone-audio: this generator
 * sends no phone audio (the web phones talk, or nobody does); --start-at NS: the schedule
 * starts at that CLOCK_MONOTONIC time (shared with the WebSocket talkers' window).
 *
 * Usage:
 *   load --a PORT --b PORT --door-base P --phone-base Q --calls N
 *        [--warmup S] [--duration S] [--pid RELAY_PID] [--rate-scale X]
 *        [--door-ip-base 127.0.1.1] [--no-phone-audio 1] [--start-at NS]
 * Prints one JSON line on stdout.
 *
 * Build: cc -O2 -o load load.c -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Datagram layout (little endian):
 *   0..76  XXXCID media header: magic, 6 command 150, 7 type 1, 8 op (7 door, 8 phone),
 *          9..56 parties, 57 timestamp ms, 61 data type, 63 frame no, 65 frame length,
 *          69 total packets 1, 71 packet index 1, 73 Datalen = length - 77, 75 chunk 1200
 *   then the bench fields, at B = 77:
 *   B+0..1  call index (u16)
 *   B+2     kind: 0 door video, 1 door audio, 2 phone audio, 3 web-phone audio (ws_viewers.ts)
 *   B+3     flags: bit0 = counted (sent inside the measurement window)
 *   B+4..7  per-stream sequence number (u32)
 *   B+8..15 send timestamp, CLOCK_MONOTONIC ns (u64)
 *   then zero padding to 1277 (video) or 141 (audio) bytes */
#define B 77
#define HDR (B + 16)

static int calls = 10, port_a = 47100, port_b = 47101, door_base = 47200, phone_base = 47600;
static double warmup_s = 1.0, duration_s = 4.0, rate_scale = 1.0;
static int relay_pid = 0;
static uint32_t door_ip_base = 0x7f000001; /* host order */
static int door_ip_per_call = 0;
static int *door_fd, *phone_fd;

static volatile int sending_done = 0;
static volatile int stop_rx = 0;
static uint64_t sent_counted = 0, sent_total = 0;
static uint64_t recv_counted = 0, recv_total = 0, recv_bad = 0, reordered = 0;
static uint32_t *last_seq; /* per (call, kind): highest seq + 1 seen */
enum { KINDS = 4 };
static int no_phone_audio = 0;
static uint64_t start_at = 0;
/* the talkers' audio at the doors, per path: 0 UDP (kind 2), 1 WebSocket (kind 3) */
static uint64_t talk_sent[2], talk_recv[2];
static uint32_t *talk_lat[2];
static size_t talk_lat_n[2], talk_lat_cap;
static uint64_t late_max_ns = 0;
static uint32_t *lat; /* ns latency of counted packets */
static size_t lat_n = 0, lat_cap = 0;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long relay_cpu_ticks(void) {
  if (!relay_pid) return -1;
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", relay_pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may contain spaces */
  if (!p) return -1;
  /* after ") " come fields 3..; utime is field 14, stime 15 */
  long ut = 0, st = 0;
  int field = 2;
  for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
    field++;
    if (field == 14) ut = atol(tok);
    if (field == 15) { st = atol(tok); break; }
  }
  return ut + st;
}

/* busy ticks (everything but idle/iowait) of one CPU from /proc/stat */
static int relay_core = 1;
static long core_busy_ticks(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  char line[512], want[16];
  snprintf(want, sizeof want, "cpu%d ", relay_core);
  long r = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, want, strlen(want))) continue;
    long v[10] = {0};
    sscanf(line + strlen(want), "%ld %ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
           &v[6], &v[7]);
    r = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* user nice system irq softirq steal */
    break;
  }
  fclose(f);
  return r;
}

static int mk_sock(uint32_t ip, int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); exit(2); }
  int big = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(ip);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    fprintf(stderr, "bind %u.%u.%u.%u:%d: %s\n", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port,
            strerror(errno));
    exit(2);
  }
  return fd;
}

static void *rx_thread(void *arg) {
  (void)arg;
  int ep = epoll_create1(0);
  for (int i = 0; i < calls; i++) {
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = door_fd[i];
    epoll_ctl(ep, EPOLL_CTL_ADD, door_fd[i], &ev);
    ev.data.fd = phone_fd[i];
    epoll_ctl(ep, EPOLL_CTL_ADD, phone_fd[i], &ev);
  }
  enum { VLEN = 64 };
  static unsigned char bufs[VLEN][2048];
  struct mmsghdr msgs[VLEN];
  struct iovec iov[VLEN];
  struct epoll_event evs[256];
  while (!stop_rx) {
    int ne = epoll_wait(ep, evs, 256, 20);
    for (int e = 0; e < ne; e++) {
      int fd = evs[e].data.fd;
      for (;;) {
        for (int k = 0; k < VLEN; k++) {
          iov[k].iov_base = bufs[k];
          iov[k].iov_len = sizeof bufs[k];
          memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, VLEN, MSG_DONTWAIT, NULL);
        if (n <= 0) break;
        uint64_t t = now_ns();
        for (int k = 0; k < n; k++) {
          unsigned char *b = bufs[k];
          if (msgs[k].msg_len < HDR || memcmp(b, "XXXCID", 6) != 0) { recv_bad++; continue; }
          int kind = b[B + 2];
          if (kind != 3) recv_total++;
          if (b[B + 3] & 1) {
            uint64_t ts;
            memcpy(&ts, b + B + 8, 8);
            uint32_t l = (uint32_t)((t - ts) > 0xffffffffull ? 0xffffffffu : (t - ts));
            uint16_t ci;
            uint32_t sq;
            memcpy(&ci, b + B, 2);
            memcpy(&sq, b + B + 4, 4);
            if (ci < calls && kind < KINDS) {
              uint32_t *ls = &last_seq[(size_t)ci * KINDS + kind];
              if (sq + 1 < *ls) reordered++;
              else *ls = sq + 1;
            }
            if (kind >= 2 && kind <= 3) {
              int w = kind - 2;
              talk_recv[w]++;
              if (talk_lat_n[w] < talk_lat_cap) talk_lat[w][talk_lat_n[w]++] = l;
            }
            if (kind == 3) continue; /* not sent by this generator: apart from the totals */
            recv_counted++;
            if (lat_n < lat_cap) lat[lat_n++] = l;
          }
        }
        if (n < VLEN) break;
      }
    }
  }
  return NULL;
}

static int sizes_of(int g) { return g == 0 ? 1277 : 141; }

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--a")) port_a = atoi(v);
    else if (!strcmp(k, "--b")) port_b = atoi(v);
    else if (!strcmp(k, "--door-base")) door_base = atoi(v);
    else if (!strcmp(k, "--phone-base")) phone_base = atoi(v);
    else if (!strcmp(k, "--calls")) calls = atoi(v);
    else if (!strcmp(k, "--warmup")) warmup_s = atof(v);
    else if (!strcmp(k, "--duration")) duration_s = atof(v);
    else if (!strcmp(k, "--pid")) relay_pid = atoi(v);
    else if (!strcmp(k, "--rate-scale")) rate_scale = atof(v);
    else if (!strcmp(k, "--core")) relay_core = atoi(v);
    else if (!strcmp(k, "--no-phone-audio")) no_phone_audio = atoi(v);
    else if (!strcmp(k, "--start-at")) start_at = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--door-ip-base")) {
      struct in_addr ia;
      if (inet_pton(AF_INET, v, &ia) != 1 || (ntohl(ia.s_addr) >> 24) != 127) {
        fprintf(stderr, "--door-ip-base must be a 127.x.y.z address\n");
        return 2;
      }
      door_ip_base = ntohl(ia.s_addr);
      door_ip_per_call = 1;
    }
    else { fprintf(stderr, "unknown arg %s\n", k); return 2; }
  }
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  door_fd = calloc(calls, sizeof(int));
  phone_fd = calloc(calls, sizeof(int));
  for (int i = 0; i < calls; i++) {
    uint32_t dip = door_ip_base + (door_ip_per_call ? (uint32_t)i : 0);
    if ((dip >> 24) != 127) { fprintf(stderr, "too many calls for --door-ip-base\n"); return 2; }
    door_fd[i] = mk_sock(dip, door_base + i);
    phone_fd[i] = mk_sock(0x7f000001, phone_base + i);
  }
  double pps = calls * (200.0 + 125.0 + 125.0) * rate_scale;
  lat_cap = (size_t)(pps * duration_s * 1.1) + 1024;
  lat = malloc(lat_cap * sizeof(uint32_t));
  last_seq = calloc((size_t)calls * KINDS, sizeof(uint32_t));
  talk_lat_cap = (size_t)(calls * 125.0 * rate_scale * duration_s * 1.1) + 1024;
  talk_lat[0] = malloc(talk_lat_cap * sizeof(uint32_t));
  talk_lat[1] = malloc(talk_lat_cap * sizeof(uint32_t));

  struct sockaddr_in dst_a = {.sin_family = AF_INET, .sin_port = htons(port_a)};
  dst_a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_in dst_b = dst_a;
  dst_b.sin_port = htons(port_b);

  pthread_t rx;
  pthread_create(&rx, NULL, rx_thread, NULL);

  /* three stream groups: interval = period / calls */
  const int sizes[3] = {sizes_of(0), sizes_of(1), sizes_of(2)};
  const double period_ns[3] = {5e6 / rate_scale, 8e6 / rate_scale, 8e6 / rate_scale};
  uint64_t step[3], next[3];
  int idx[3] = {0, 0, 0};
  uint32_t *seq = calloc((size_t)calls * 3, sizeof(uint32_t));
  uint64_t t0 = now_ns() + 20000000ull; /* start in 20 ms */
  if (start_at) {
    if (start_at < t0) fprintf(stderr, "load: --start-at is %.1f ms too early\n", (t0 - start_at) / 1e6);
    else t0 = start_at;
  }
  for (int g = 0; g < 3; g++) {
    step[g] = (uint64_t)(period_ns[g] / calls);
    if (step[g] == 0) step[g] = 1;
  }
  next[0] = t0;
  next[1] = t0 + step[1] / 3;
  next[2] = no_phone_audio ? UINT64_MAX : t0 + 2 * step[2] / 3;
  uint64_t meas_start = t0 + (uint64_t)(warmup_s * 1e9);
  uint64_t meas_end = meas_start + (uint64_t)(duration_s * 1e9);
  /* one template per stream group: a valid media header, then the bench fields */
  static unsigned char pkts[3][2048];
  for (int g = 0; g < 3; g++) {
    unsigned char *p = pkts[g];
    memset(p, 0, sizeof pkts[g]);
    memcpy(p, "XXXCID", 6);
    p[6] = 150;                /* VIDEOTALK */
    p[7] = 1;                  /* ASK */
    p[8] = g == 2 ? 8 : 7;     /* CALLDOWN from the phone, CALLUP from the door */
    /* parties: door M00010100 (as in the seed), room S00010108090, padded with '0' */
    memset(p + 9, '0', 20);
    memcpy(p + 9, "M00010100", 9);
    p[29] = 127, p[30] = 0, p[31] = 1, p[32] = 1;
    memset(p + 33, '0', 20);
    memcpy(p + 33, "S00010108090", 12);
    p[53] = 127, p[54] = 0, p[55] = 0, p[56] = 1;
    uint16_t dtype = g == 0 ? 3 /* CIF P */ : 1 /* audio */;
    uint16_t dlen = (uint16_t)(sizes_of(g) - B);
    uint32_t flen = dlen;
    uint16_t one = 1, chunk = 1200;
    memcpy(p + 61, &dtype, 2);
    memcpy(p + 65, &flen, 4);
    memcpy(p + 69, &one, 2);
    memcpy(p + 71, &one, 2);
    memcpy(p + 73, &dlen, 2);
    memcpy(p + 75, &chunk, 2);
  }
  uint32_t *frame = calloc((size_t)calls * 3, sizeof(uint32_t));
  long cpu0 = -1, cpu1 = -1, core0 = -1, core1 = -1;
  uint64_t cpu_t0 = 0, cpu_t1 = 0;
  int in_meas = 0;

  for (;;) {
    int g = 0;
    if (next[1] < next[g]) g = 1;
    if (next[2] < next[g]) g = 2;
    uint64_t due = next[g];
    if (due >= meas_end) break;
    uint64_t t = now_ns();
    if (t < due) {
      struct timespec ts = {.tv_sec = due / 1000000000ull, .tv_nsec = due % 1000000000ull};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
      t = now_ns();
    } else if (t - due > late_max_ns && due >= meas_start) {
      late_max_ns = t - due;
    }
    if (!in_meas && due >= meas_start) {
      in_meas = 1;
      cpu0 = relay_cpu_ticks();
      core0 = core_busy_ticks();
      cpu_t0 = now_ns();
    }
    int i = idx[g];
    int counted = due >= meas_start;
    unsigned char *pkt = pkts[g];
    uint16_t ci = (uint16_t)i;
    uint32_t s = seq[(size_t)i * 3 + g]++;
    /* header: timestamp ms (the stream's media clock) and frame number, like a real sender */
    uint32_t media_ms = s * (g == 0 ? 5u : 8u);
    uint16_t fno = (uint16_t)(++frame[(size_t)i * 3 + g]);
    memcpy(pkt + 57, &media_ms, 4);
    memcpy(pkt + 63, &fno, 2);
    memcpy(pkt + B, &ci, 2);
    pkt[B + 2] = (unsigned char)g;
    pkt[B + 3] = (unsigned char)counted;
    memcpy(pkt + B + 4, &s, 4);
    uint64_t ts = now_ns();
    memcpy(pkt + B + 8, &ts, 8);
    int fd = g == 2 ? phone_fd[i] : door_fd[i];
    struct sockaddr_in *dst = g == 2 ? &dst_b : &dst_a;
    if (sendto(fd, pkt, sizes[g], 0, (struct sockaddr *)dst, sizeof *dst) == sizes[g]) {
      sent_total++;
      if (counted) sent_counted++;
      if (counted && g == 2) talk_sent[0]++;
    }
    next[g] += step[g];
    if (++idx[g] == calls) idx[g] = 0;
  }
  usleep(100000); /* drain 100 ms */
  cpu1 = relay_cpu_ticks();
  core1 = core_busy_ticks();
  cpu_t1 = now_ns();
  usleep(150000);
  stop_rx = 1;
  pthread_join(rx, NULL);

  qsort(lat, lat_n, sizeof(uint32_t), cmp_u32);
  double p50 = 0, p99 = 0, p999 = 0, mx = 0;
  if (lat_n) {
    p50 = lat[(size_t)(lat_n * 0.50)] / 1000.0;
    p99 = lat[(size_t)(lat_n * 0.99)] / 1000.0;
    p999 = lat[(size_t)(lat_n * 0.999)] / 1000.0;
    mx = lat[lat_n - 1] / 1000.0;
  }
  double tq[2][3] = {{0}};
  for (int w = 0; w < 2; w++) {
    size_t n = talk_lat_n[w];
    if (!n) continue;
    qsort(talk_lat[w], n, sizeof(uint32_t), cmp_u32);
    tq[w][0] = talk_lat[w][(size_t)(n * 0.50)] / 1000.0;
    tq[w][1] = talk_lat[w][(size_t)(n * 0.99)] / 1000.0;
    tq[w][2] = talk_lat[w][(size_t)(n * 0.999)] / 1000.0;
  }
  double loss = sent_counted ? 100.0 * (double)(sent_counted - (recv_counted > sent_counted ? sent_counted : recv_counted)) / (double)sent_counted : 0;
  long hz = sysconf(_SC_CLK_TCK);
  double cpu_ms = -1, cpu_pct = -1, cpu_us_pkt = -1;
  if (cpu0 >= 0 && cpu1 >= 0) {
    cpu_ms = (double)(cpu1 - cpu0) * 1000.0 / (double)hz;
    double wall_ms = (double)(cpu_t1 - cpu_t0) / 1e6;
    cpu_pct = 100.0 * cpu_ms / wall_ms;
    cpu_us_pkt = sent_counted ? cpu_ms * 1000.0 / (double)sent_counted : -1;
  }
  /* share of the relay's core used by anything other than the relay (noise) */
  double other_pct = -1;
  if (core0 >= 0 && core1 >= 0 && cpu0 >= 0 && cpu1 >= 0) {
    double wall_ms = (double)(cpu_t1 - cpu_t0) / 1e6;
    double other_ms = (double)((core1 - core0) - (cpu1 - cpu0)) * 1000.0 / (double)hz;
    other_pct = 100.0 * (other_ms < 0 ? 0 : other_ms) / wall_ms;
  }
  printf("{\"calls\":%d,\"pps\":%.0f,\"sent\":%llu,\"recv\":%llu,\"loss_pct\":%.4f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
         "\"cpu_ms\":%.0f,\"cpu_pct\":%.1f,\"other_pct\":%.1f,\"cpu_us_per_pkt\":%.2f,\"gen_late_max_us\":%.1f,"
         "\"reordered\":%llu,\"recv_total\":%llu,\"recv_bad\":%llu,"
         "\"talk_udp_sent\":%llu,\"talk_udp_recv\":%llu,\"talk_udp_p50_us\":%.1f,\"talk_udp_p99_us\":%.1f,"
         "\"talk_udp_p999_us\":%.1f,\"talk_ws_recv\":%llu,\"talk_ws_p50_us\":%.1f,\"talk_ws_p99_us\":%.1f,"
         "\"talk_ws_p999_us\":%.1f}\n",
         calls, pps, (unsigned long long)sent_counted, (unsigned long long)recv_counted, loss, p50, p99, p999, mx,
         cpu_ms, cpu_pct, other_pct, cpu_us_pkt, late_max_ns / 1000.0, (unsigned long long)reordered,
         (unsigned long long)recv_total,
         (unsigned long long)recv_bad, (unsigned long long)talk_sent[0], (unsigned long long)talk_recv[0],
         tq[0][0], tq[0][1], tq[0][2], (unsigned long long)talk_recv[1], tq[1][0], tq[1][1], tq[1][2]);
  return 0;
}
