/*
 * vqload: the real-guest rig's load and verify program, run inside the guest
 * (compiled statically by scripts/guest/prepare.sh).
 *
 *   vqload write  --dev PATH --offset N --length N --bs N --seed N [--jobs N] [--buffered] [--fsync] [--pin]
 *   vqload verify --dev PATH --offset N --length N --bs N --seed N [--jobs N] [--buffered] [--pin]
 *   vqload bench  --dev PATH --mode randread|randwrite --bs N --jobs N --seconds N --span N [--pin]
 *   (every operation also takes --tag NAME, repeated in its RESULT line as tag=NAME)
 *
 * Numbers take a K, M or G suffix (powers of 1024). write/verify move the range
 * [offset, offset + length) in requests of bs bytes; job j does requests j,
 * j + jobs, ... with its own synchronous reads or writes, so jobs is the queue
 * depth. I/O is O_DIRECT unless --buffered. The data is a pattern anyone can
 * regenerate: the 32-bit little-endian word at byte offset o is
 * mix32((o / 4) * 0x9E3779B1 + seed) (see pattern.ts for the host's copy), so a
 * misplaced, stale or torn block never matches. verify compares every word and
 * reports the first mismatch; both report csum, the sum over requests of the
 * CRC-32 (zlib's) of each request's bytes, which the host computes from the disk
 * file the same way. bench does random bs-aligned requests within [0, span) for
 * a number of seconds.
 *
 * Output: one line "RESULT op=... key=value ..." on stdout; exit status 0 when
 * every request succeeded (and, for verify, matched), 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 64

static const char *op, *dev, *mode = "randread", *tag = "-";
static uint64_t offset, length, bs = 4096, span, seconds = 3;
static uint32_t seed;
static int jobs = 1, buffered, do_fsync, pin;
static int fd;
static uint32_t crc_table[256];

struct job {
  int index;
  pthread_t thread;
  uint64_t ios, bytes, csum, mismatches, first_bad;
  int err;
  uint64_t err_at;
};
static struct job job[MAX_JOBS];

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

static uint32_t pattern_word(uint64_t byte_offset) {
  return mix32((uint32_t)(byte_offset / 4) * 0x9E3779B1U + seed);
}

static void fill(unsigned char *buf, uint64_t at, uint64_t n) {
  for (uint64_t i = 0; i + 4 <= n; i += 4) {
    uint32_t w = pattern_word(at + i);
    buf[i] = w;
    buf[i + 1] = w >> 8;
    buf[i + 2] = w >> 16;
    buf[i + 3] = w >> 24;
  }
}

/* The offset of the first word of buf that differs from the pattern, or UINT64_MAX. */
static uint64_t compare(const unsigned char *buf, uint64_t at, uint64_t n) {
  for (uint64_t i = 0; i + 4 <= n; i += 4) {
    uint32_t w = pattern_word(at + i);
    uint32_t got = buf[i] | buf[i + 1] << 8 | buf[i + 2] << 16 | (uint32_t)buf[i + 3] << 24;
    if (w != got) return at + i;
  }
  return UINT64_MAX;
}

static void crc_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    crc_table[n] = c;
  }
}

static uint32_t crc32(const unsigned char *buf, uint64_t n) {
  uint32_t c = 0xFFFFFFFFU;
  for (uint64_t i = 0; i < n; i++) c = crc_table[(c ^ buf[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin_self(int j) {
  if (!pin) return;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(j % (cpus > 0 ? cpus : 1), &set);
  sched_setaffinity(0, sizeof set, &set);
}

static int full_io(int writing, unsigned char *buf, uint64_t n, uint64_t at) {
  uint64_t done = 0;
  while (done < n) {
    ssize_t r = writing ? pwrite(fd, buf + done, n - done, at + done) : pread(fd, buf + done, n - done, at + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    if (r == 0) return EIO; /* past the end of the disk */
    done += r;
  }
  return 0;
}

static void *run_range(void *arg) {
  struct job *me = arg;
  int writing = strcmp(op, "write") == 0;
  unsigned char *buf;
  pin_self(me->index);
  me->first_bad = UINT64_MAX;
  if (posix_memalign((void **)&buf, 4096, bs)) {
    me->err = ENOMEM;
    return NULL;
  }
  uint64_t count = (length + bs - 1) / bs;
  for (uint64_t r = me->index; r < count; r += jobs) {
    uint64_t at = offset + r * bs;
    uint64_t n = at + bs > offset + length ? offset + length - at : bs;
    if (writing) fill(buf, at, n);
    int e = full_io(writing, buf, n, at);
    if (e) {
      me->err = e;
      me->err_at = at;
      break;
    }
    if (!writing) {
      uint64_t bad = compare(buf, at, n);
      if (bad != UINT64_MAX) {
        me->mismatches++;
        if (bad < me->first_bad) me->first_bad = bad;
      }
    }
    me->csum += crc32(buf, n);
    me->ios++;
    me->bytes += n;
  }
  free(buf);
  return NULL;
}

static void *run_bench(void *arg) {
  struct job *me = arg;
  int writing = strcmp(mode, "randwrite") == 0;
  unsigned char *buf;
  pin_self(me->index);
  if (posix_memalign((void **)&buf, 4096, bs)) {
    me->err = ENOMEM;
    return NULL;
  }
  uint64_t rng = 0x9E3779B97F4A7C15ULL * (me->index + 1) + seed;
  uint64_t slots = span / bs;
  double end = now() + seconds;
  fill(buf, 0, bs);
  while (now() < end) {
    for (int k = 0; k < 16; k++) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      uint64_t at = (rng % slots) * bs;
      int e = full_io(writing, buf, bs, at);
      if (e) {
        me->err = e;
        me->err_at = at;
        free(buf);
        return NULL;
      }
      me->ios++;
      me->bytes += bs;
    }
  }
  free(buf);
  return NULL;
}

static uint64_t number(const char *s) {
  char *end;
  uint64_t v = strtoull(s, &end, 0);
  switch (*end) {
  case 'K': case 'k': v <<= 10; break;
  case 'M': case 'm': v <<= 20; break;
  case 'G': case 'g': v <<= 30; break;
  case 0: break;
  default:
    fprintf(stderr, "vqload: not a number: %s\n", s);
    exit(2);
  }
  return v;
}

static void usage(const char *why) {
  fprintf(stderr, "vqload: %s\nusage: vqload write|verify|bench --dev PATH ... (see the source's header)\n", why);
  printf("RESULT op=%s error=usage\n", op ? op : "none");
  exit(2);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"dev", required_argument, 0, 'd'},     {"offset", required_argument, 0, 'o'},
      {"length", required_argument, 0, 'l'},  {"bs", required_argument, 0, 'b'},
      {"seed", required_argument, 0, 's'},    {"jobs", required_argument, 0, 'j'},
      {"mode", required_argument, 0, 'm'},    {"seconds", required_argument, 0, 't'},
      {"span", required_argument, 0, 'p'},    {"buffered", no_argument, 0, 'B'},
      {"fsync", no_argument, 0, 'F'},         {"pin", no_argument, 0, 'P'},
      {"tag", required_argument, 0, 'T'},
      {0, 0, 0, 0},
  };
  if (argc < 2) usage("no operation");
  op = argv[1];
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dev = optarg; break;
    case 'o': offset = number(optarg); break;
    case 'l': length = number(optarg); break;
    case 'b': bs = number(optarg); break;
    case 's': seed = (uint32_t)number(optarg); break;
    case 'j': jobs = (int)number(optarg); break;
    case 'm': mode = optarg; break;
    case 't': seconds = number(optarg); break;
    case 'p': span = number(optarg); break;
    case 'B': buffered = 1; break;
    case 'F': do_fsync = 1; break;
    case 'P': pin = 1; break;
    case 'T': tag = optarg; break;
    default: usage("unknown option");
    }
  }
  int range = strcmp(op, "write") == 0 || strcmp(op, "verify") == 0;
  if (!range && strcmp(op, "bench") != 0) usage("operation must be write, verify or bench");
  if (!dev) usage("--dev is required");
  if (jobs < 1 || jobs > MAX_JOBS) usage("--jobs must be 1..64");
  if (bs < 4 || bs % 4 || bs > (64u << 20)) usage("--bs must be a multiple of 4 up to 64M");
  if (range && (length == 0 || offset % 4 || length % 4)) usage("--offset and --length must be multiples of 4, length > 0");
  if (!range && (span < bs || (strcmp(mode, "randread") && strcmp(mode, "randwrite")))) usage("bench needs --span >= --bs and --mode randread|randwrite");
  crc_init();

  int writing = range ? strcmp(op, "write") == 0 : strcmp(mode, "randwrite") == 0;
  int flags = (writing ? O_RDWR : O_RDONLY) | (buffered ? 0 : O_DIRECT);
  if (range && writing && buffered) flags |= O_CREAT;
  fd = open(dev, flags, 0644);
  if (fd < 0) {
    int e = errno;
    printf("RESULT op=%s tag=%s error=open errno=%d errname=%s\n", op, tag, e, strerrorname_np(e) ? strerrorname_np(e) : "?");
    return 1;
  }

  double t0 = now();
  for (int j = 0; j < jobs; j++) {
    job[j].index = j;
    if (pthread_create(&job[j].thread, NULL, range ? run_range : run_bench, &job[j])) {
      printf("RESULT op=%s error=thread\n", op);
      return 1;
    }
  }
  struct job total = {0};
  total.first_bad = UINT64_MAX;
  for (int j = 0; j < jobs; j++) {
    pthread_join(job[j].thread, NULL);
    total.ios += job[j].ios;
    total.bytes += job[j].bytes;
    total.csum += job[j].csum;
    total.mismatches += job[j].mismatches;
    if (range && job[j].first_bad < total.first_bad) total.first_bad = job[j].first_bad;
    if (job[j].err && !total.err) {
      total.err = job[j].err;
      total.err_at = job[j].err_at;
    }
  }
  int fsync_err = 0;
  if (do_fsync && !total.err && fsync(fd) < 0) fsync_err = errno;
  double secs = now() - t0;
  close(fd);

  printf("RESULT op=%s tag=%s mode=%s bs=%llu jobs=%d ios=%llu bytes=%llu secs=%.3f iops=%.0f mibps=%.1f csum=%llu",
         op, tag, range ? (buffered ? "buffered" : "direct") : mode, (unsigned long long)bs, jobs,
         (unsigned long long)total.ios, (unsigned long long)total.bytes, secs, total.ios / secs,
         total.bytes / secs / 1048576.0, (unsigned long long)total.csum);
  if (strcmp(op, "verify") == 0) {
    printf(" mismatches=%llu", (unsigned long long)total.mismatches);
    if (total.mismatches) printf(" first_bad=%llu", (unsigned long long)total.first_bad);
  }
  if (total.err) {
    const char *name = strerrorname_np(total.err);
    printf(" error=io errno=%d errname=%s at=%llu", total.err, name ? name : "?", (unsigned long long)total.err_at);
  }
  if (fsync_err) {
    const char *name = strerrorname_np(fsync_err);
    printf(" error=fsync errno=%d errname=%s", fsync_err, name ? name : "?");
  }
  printf("\n");
  return total.err || fsync_err || total.mismatches ? 1 : 0;
}
