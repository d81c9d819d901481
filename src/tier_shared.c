/*
 * tier_shared.c - the shared tier (tier_shared.h says what it is; doc/SHARED.md why it is
 * built this way): object paths, publication by link(), verified reads and quarantine, the
 * usage ledgers, eviction by mtime, the maintenance scan and the parallel file operations.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "err.h"
#include "record.h"
#include "tier_shared.h"

#define SHARED_FORMAT	 "kvgrid-shared 1\n"
#define LEDGER_MAGIC	 0x5547564bu /* "KVGU" */
#define LEDGER_VERSION	 1u
#define LEDGERS_MAX	 64 /* tenants one grid keeps ledgers for, and tenants in a view */
#define SCAN_RESCANS_MAX 2  /* full scans one make_room() may do before giving up */
#define REL_MAX		 128
#define TOUCH_SLOTS	 4096
#define SEEN_SLOTS	 65536 /* keys recently seen present (1 MiB) */
#define REC_F_SHARED	 0x2   /* record.h flags: an object of the shared tier */
#define BG_UNLINKS_MAX	 1024  /* published temporaries waiting for their unlink() */
#define BG_TOUCHES_MAX	 1024  /* objects waiting for their mtime refresh */
#define BG_NAME_MAX	 128   /* a temporary's name under its <kk> directory, NUL included */

/* A usage ledger on disk: one writer's counts for one tenant, rewritten whole. */
struct ledger_rec {
	uint32_t magic;
	uint32_t version;
	uint64_t pub_bytes, pub_blocks; /* published by this writer (link succeeded) */
	uint64_t rm_bytes, rm_blocks;	/* removed by this writer (unlink/rename succeeded) */
	uint8_t writer[16];
	uint64_t csum; /* XXH3-64 of bytes 0..55 */
};
_Static_assert(sizeof(struct ledger_rec) == 64, "a usage ledger is 64 bytes on disk");
_Static_assert(offsetof(struct ledger_rec, csum) == 56, "ledger checksum at byte 56");

struct ledger {
	char tenant[17];
	int dirty;	     /* r differs from what the file says */
	int busy;	     /* being written out without sh->mu (ledger_take) */
	uint64_t seq;	     /* of the file written last; 0: none yet */
	uint64_t flushed_us; /* when */
	struct ledger_rec r;
};

/* Usage of one tenant as summed from the ledgers. */
struct tenant_use {
	char tenant[17];
	int64_t bytes, blocks;
};

struct cand {
	int64_t mtime_ns;
	uint64_t size;
	int tenant_own; /* in this grid's tenant directory */
	char tenant[17];
	char rel[REL_MAX];
};

struct batch {
	size_t n, next, done;
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	struct batch *link;
};

struct shared {
	struct log *log;
	char root[4096];
	char tenant[17];
	uint64_t cap, tcap;
	int sync;
	uint32_t grace_s, touch_s, refresh_ms;
	uint8_t writer[16];
	char writer_hex[33];
	uint64_t seq;	/* temporary names (atomic) */
	int no_rename2; /* renameat2(RENAME_NOREPLACE) refused once: link() (atomic) */

	/* this tenant's <kk> directories, opened once (O_PATH): an object is then reached by one
	 * name lookup instead of one per path component (each a round trip where the client
	 * caches no entries).  -1: not open yet; -2: use full paths.  Atomic; kkmu guards
	 * renewals, and replaced descriptors stay open in retired[] until shared_close. */
	int kkfd[256];
	uint64_t kk_checked_us[256]; /* atomic: when a miss under kkfd[kk] last checked the
				      * full path (KK_RECHECK_US) */
	pthread_mutex_t kkmu;
	int retired[256];
	int nretired;

	/* the pool: pmu guards batches and stop */
	pthread_mutex_t pmu;
	pthread_cond_t pcv, pdone;
	struct batch *batches;
	int stop;
	pthread_t *thr;
	uint32_t nthr;

	/* deferred work, done by the background thread (bg_main) off the callers' paths: the
	 * temporaries that link() published (their unlink), and the objects whose recency a
	 * local hit asked to refresh (their utimensat).  bmu guards the two queues and bstop.
	 * Bounded: a publisher that finds the queue full unlinks its temporary itself; a touch
	 * that finds it full is dropped (recency is a hint). */
	pthread_mutex_t bmu;
	pthread_cond_t bcv;
	pthread_t bg;
	int bg_started, bstop;
	struct bg_unlink {
		int at; /* a <kk> descriptor: open until shared_close, retired or not */
		char name[BG_NAME_MAX];
	} * unlinks;
	uint32_t nunlinks;
	kvg_key *touches;
	uint32_t ntouches;

	/* the maintenance thread: jmu guards jstop */
	pthread_t jan;
	int jan_started;
	pthread_mutex_t jmu;
	pthread_cond_t jcv;
	int jstop;

	/* mu guards what follows */
	pthread_mutex_t mu;
	struct ledger led[LEDGERS_MAX];
	int nled;
	struct tenant_use others[LEDGERS_MAX]; /* other writers' ledgers, at view_us */
	int nothers;
	uint64_t view_us;
	int viewing; /* a thread re-reads the view without mu (view_refresh_unlocked) */
	struct cand *cands;
	size_t ncand, cand_next;

	/* counters (atomic) */
	/* keys seen present within cache_ms (smu; direct-mapped by key) */
	pthread_mutex_t smu;
	struct seen {
		uint64_t tag, until_us;
	} * seen;
	uint32_t cache_ms;
	uint32_t touched[TOUCH_SLOTS]; /* when this grid last refreshed an object's mtime,
					* by key (direct-mapped; atomic) */
	uint64_t hits, misses, evictions, bytes_read, bytes_written, csum_failures, io_errors,
	    published, temps_removed;
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void count(uint64_t *c, uint64_t n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static uint64_t span_of(uint64_t len)
{
	return REC_HDR_BYTES + len; /* an object's bytes: header block and payload */
}

/* ---- names ----------------------------------------------------------------------------- */

static void key_hex(const kvg_key *key, char *hex)
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < KVG_KEY_BYTES; i++) {
		hex[2 * i] = d[key->bytes[i] >> 4];
		hex[2 * i + 1] = d[key->bytes[i] & 15];
	}
	hex[64] = 0;
}

/* root/t-<tenant>/<kk>/<key>: the object's path (prefix "" ) or a sibling's (".tmp-" ...) */
static void obj_path(const struct shared *sh, const kvg_key *key, char *p, size_t len)
{
	char hex[65];
	key_hex(key, hex);
	snprintf(p, len, "%s/t-%s/%.2s/%s", sh->root, sh->tenant, hex, hex);
}

static void sibling_path(struct shared *sh, const kvg_key *key, const char *kind, char *p,
			 size_t len)
{
	char hex[65];
	key_hex(key, hex);
	uint64_t n = __atomic_add_fetch(&sh->seq, 1, __ATOMIC_RELAXED);
	snprintf(p, len, "%s/t-%s/%.2s/.%s-%s-%s-%" PRIu64, sh->root, sh->tenant, hex, kind, hex,
		 sh->writer_hex, n);
}

/* Makes root/t-<tenant>/<kk> for key (both levels; EEXIST is fine). */
static int obj_dirs(const struct shared *sh, const kvg_key *key)
{
	char p[4300], hex[65];
	key_hex(key, hex);
	snprintf(p, sizeof(p), "%s/t-%s", sh->root, sh->tenant);
	if (mkdir(p, 0755) && errno != EEXIST)
		return -errno;
	snprintf(p, sizeof(p), "%s/t-%s/%.2s", sh->root, sh->tenant, hex);
	if (mkdir(p, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The last component of path (a pointer into it). */
static const char *base_of(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

static int kk_open(const struct shared *sh, int kk)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/t-%s/%02x", sh->root, sh->tenant, kk);
	return open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* The directory descriptor that key's object names are relative to: a <kk> directory, or
 * AT_FDCWD when it cannot be opened (the names are then full paths, see rel_of()). */
static int kk_at(struct shared *sh, const kvg_key *key)
{
	int kk = key->bytes[0], fd = __atomic_load_n(&sh->kkfd[kk], __ATOMIC_ACQUIRE);
	if (fd >= 0 || fd == -2)
		return fd >= 0 ? fd : AT_FDCWD;
	int nfd = kk_open(sh, kk);
	if (nfd < 0)
		return AT_FDCWD; /* not made yet: obj_dirs() will, and a later call opens it */
	int expect = -1;
	if (!__atomic_compare_exchange_n(&sh->kkfd[kk], &expect, nfd, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		close(nfd); /* another thread opened it first */
		return expect >= 0 ? expect : AT_FDCWD;
	}
	return nfd;
}

/* A name relative to at: path's last component under a <kk> descriptor, else path. */
static const char *rel_of(int at, const char *path)
{
	return at == AT_FDCWD ? path : base_of(path);
}

/* A miss under an open <kk> directory is checked by full path (was the directory replaced
 * under this grid?) at most this often per directory: other misses cost one round trip, and
 * a replaced directory's reads miss for at most this long. */
#define KK_RECHECK_US 1000000

static int kk_recheck_due(struct shared *sh, const kvg_key *key)
{
	uint64_t now = mono_us(), *at = &sh->kk_checked_us[key->bytes[0]];
	uint64_t last = __atomic_load_n(at, __ATOMIC_RELAXED);
	if (last && now - last < KK_RECHECK_US)
		return 0;
	return __atomic_compare_exchange_n(at, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* The <kk> descriptor old failed where the full path worked: the directory was replaced
 * under this grid.  Drops it (it stays open, retired, as other threads may be using it) so
 * that the next use opens the new one.  After 256 such, old stays: every failure through it
 * is then retried by full path, slower but as correct. */
static void kk_renew(struct shared *sh, const kvg_key *key, int old)
{
	int kk = key->bytes[0];
	pthread_mutex_lock(&sh->kkmu);
	if (__atomic_load_n(&sh->kkfd[kk], __ATOMIC_ACQUIRE) == old && sh->nretired < 256) {
		sh->retired[sh->nretired++] = old;
		__atomic_store_n(&sh->kkfd[kk], -1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&sh->kkmu);
}

/* ---- keys seen present (sh->smu) ---------------------------------------------------------- */

/*
 * A lookup answers from here for cache_ms after a key was seen in the tier (stat, read or
 * publish), so a warm lookup of a long prefix makes no round trip.  It can be wrong only
 * one way: a key removed since by another host looks present, and its load is a miss.
 */
static struct seen *seen_slot(struct shared *sh, const kvg_key *key, uint64_t *tag)
{
	uint64_t a, b;
	memcpy(&a, key->bytes, 8);
	memcpy(&b, key->bytes + 8, 8);
	*tag = a | 1;
	return &sh->seen[b % SEEN_SLOTS];
}

static int seen_has(struct shared *sh, const kvg_key *key)
{
	if (!sh->seen)
		return 0;
	uint64_t tag;
	struct seen *e = seen_slot(sh, key, &tag);
	pthread_mutex_lock(&sh->smu);
	int yes = e->tag == tag && e->until_us > mono_us();
	pthread_mutex_unlock(&sh->smu);
	return yes;
}

/* Remembers key as present (present = 1) or forgets it. */
static void seen_set(struct shared *sh, const kvg_key *key, int present)
{
	if (!sh->seen)
		return;
	uint64_t tag;
	struct seen *e = seen_slot(sh, key, &tag);
	pthread_mutex_lock(&sh->smu);
	if (present) {
		e->tag = tag;
		e->until_us = mono_us() + (uint64_t)sh->cache_ms * 1000;
	} else if (e->tag == tag) {
		e->tag = 0;
	}
	pthread_mutex_unlock(&sh->smu);
}

/* ---- deferred work (sh->bmu) --------------------------------------------------------------- */

/*
 * What need not delay the caller: the unlink() of a temporary once link() has published it
 * (one round trip on a network filesystem, after which the store has nothing left to wait
 * for), and the mtime refresh that a local hit of a published block asks for.  A temporary
 * whose unlink is lost (a crash, a full queue at close) is harmless: it has the object's
 * bytes under a name no reader looks up, and the maintenance pass removes it after
 * shared_grace_s.
 */

/* When this grid last made key's object recent (published it, or refreshed its mtime). */
static uint32_t *touch_slot(struct shared *sh, const kvg_key *key)
{
	uint32_t slot;
	memcpy(&slot, key->bytes, sizeof(slot));
	return &sh->touched[slot % TOUCH_SLOTS];
}

/* Unlinks the temporary name (relative to at) now or, queued, soon. */
static void tmp_drop(struct shared *sh, int at, const char *name)
{
	if (at != AT_FDCWD && sh->unlinks && strlen(name) < BG_NAME_MAX) {
		pthread_mutex_lock(&sh->bmu);
		int queued = !sh->bstop && sh->nunlinks < BG_UNLINKS_MAX;
		if (queued) {
			struct bg_unlink *u = &sh->unlinks[sh->nunlinks++];
			u->at = at;
			snprintf(u->name, sizeof(u->name), "%s", name);
			if (sh->nunlinks == 1 && !sh->ntouches)
				pthread_cond_signal(&sh->bcv);
		}
		pthread_mutex_unlock(&sh->bmu);
		if (queued)
			return;
	}
	unlinkat(at, name, 0);
}

void shared_touch_later(struct shared *sh, const kvg_key *key)
{
	if (!sh->touch_s || !sh->touches)
		return;
	uint32_t now = (uint32_t)time(NULL), *last = touch_slot(sh, key);
	uint32_t was = __atomic_load_n(last, __ATOMIC_RELAXED);
	if (now - was < sh->touch_s ||
	    !__atomic_compare_exchange_n(last, &was, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return; /* made recent lately, or another thread is at it */
	pthread_mutex_lock(&sh->bmu);
	if (!sh->bstop && sh->ntouches < BG_TOUCHES_MAX) {
		sh->touches[sh->ntouches++] = *key;
		if (sh->ntouches == 1 && !sh->nunlinks)
			pthread_cond_signal(&sh->bcv);
	}
	pthread_mutex_unlock(&sh->bmu);
}

/* Sets key's object's mtime to now, if it is there; one that is gone is forgotten. */
static void touch_now(struct shared *sh, const kvg_key *key)
{
	char p[4300];
	obj_path(sh, key, p, sizeof(p));
	int at = kk_at(sh, key);
	if (utimensat(at, rel_of(at, p), NULL, 0) && errno == ENOENT)
		seen_set(sh, key, 0);
}

/* The background thread: takes the queues whole, works through them without bmu, and at
 * close does the unlinks left (not the touches). */
static void *bg_main(void *arg)
{
	struct shared *sh = arg;
	struct bg_unlink *u = malloc(BG_UNLINKS_MAX * sizeof(*u));
	kvg_key *t = malloc(BG_TOUCHES_MAX * sizeof(*t));
	pthread_mutex_lock(&sh->bmu);
	for (;;) {
		while (!sh->bstop && !sh->nunlinks && !sh->ntouches)
			pthread_cond_wait(&sh->bcv, &sh->bmu);
		if (!u || !t || (sh->bstop && !sh->nunlinks))
			break;
		uint32_t nu = sh->nunlinks, nt = sh->bstop ? 0 : sh->ntouches;
		memcpy(u, sh->unlinks, nu * sizeof(*u));
		memcpy(t, sh->touches, nt * sizeof(*t));
		sh->nunlinks = 0;
		sh->ntouches = 0;
		pthread_mutex_unlock(&sh->bmu);
		for (uint32_t i = 0; i < nu; i++)
			unlinkat(u[i].at, u[i].name, 0);
		for (uint32_t i = 0; i < nt; i++)
			touch_now(sh, &t[i]);
		pthread_mutex_lock(&sh->bmu);
	}
	pthread_mutex_unlock(&sh->bmu);
	free(u);
	free(t);
	return NULL;
}

/* ---- ledgers (sh->mu) ------------------------------------------------------------------ */

/*
 * A ledger is never rewritten in place: another host's page cache could go on serving the
 * old bytes of a file overwritten there (doc/SHARED.md).  Each update is a new file
 * "<tenant>.<writer>.<seq>" (16 hex digits of seq), after which the previous one goes;
 * readers take each writer's highest seq.  A closed grid's last one is renamed
 * "<tenant>.<writer>.done", for another grid to fold into its own.
 */

static void ledger_seal(struct ledger_rec *r)
{
	r->csum = XXH3_64bits(r, offsetof(struct ledger_rec, csum));
}

static int ledger_check(const struct ledger_rec *r)
{
	return r->magic == LEDGER_MAGIC && r->version == LEDGER_VERSION &&
	       r->csum == XXH3_64bits(r, offsetof(struct ledger_rec, csum));
}

static void ledger_name(const struct shared *sh, const struct ledger *l, uint64_t seq, char *p,
			size_t len)
{
	snprintf(p, len, "%s/.kvgrid/usage/%s.%s.%016" PRIx64, sh->root, l->tenant, sh->writer_hex,
		 seq);
}

/* This writer's ledger for tenant (in memory until flushed); NULL past LEDGERS_MAX. */
static struct ledger *ledger_of(struct shared *sh, const char *tenant)
{
	for (int i = 0; i < sh->nled; i++)
		if (!strcmp(sh->led[i].tenant, tenant))
			return &sh->led[i];
	if (sh->nled == LEDGERS_MAX)
		return NULL;
	struct ledger *l = &sh->led[sh->nled++];
	memset(l, 0, sizeof(*l));
	snprintf(l->tenant, sizeof(l->tenant), "%s", tenant);
	l->r.magic = LEDGER_MAGIC;
	l->r.version = LEDGER_VERSION;
	memcpy(l->r.writer, sh->writer, 16);
	return l;
}

/* Takes a dirty ledger's counts for writing out as file seq + 1: 1 (*r, *seq set; l busy
 * until ledger_done) or 0 (clean, or another thread is writing it).  Locked. */
static int ledger_take(struct ledger *l, struct ledger_rec *r, uint64_t *seq)
{
	if (!l->dirty || l->busy)
		return 0;
	ledger_seal(&l->r);
	*r = l->r;
	*seq = l->seq;
	l->busy = 1;
	l->dirty = 0;
	return 1;
}

/* Writes r as tenant's ledger file seq + 1 and removes file seq.  0 or -1.  Unlocked. */
static int ledger_write(struct shared *sh, const struct ledger *l, const struct ledger_rec *r,
			uint64_t seq)
{
	char p[4300];
	ledger_name(sh, l, seq + 1, p, sizeof(p));
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int ok = write(fd, r, sizeof(*r)) == (ssize_t)sizeof(*r);
	ok = !close(fd) && ok;
	if (!ok) {
		unlink(p);
		return -1;
	}
	if (seq) {
		ledger_name(sh, l, seq, p, sizeof(p));
		unlink(p);
	}
	return 0;
}

/* Ends a ledger_take: file seq + 1 is the ledger now, or (failed) it stays dirty for the
 * next flush.  Locked. */
static void ledger_done(struct ledger *l, int rc, uint64_t seq)
{
	l->busy = 0;
	if (rc) {
		l->dirty = 1;
		return;
	}
	l->seq = seq + 1;
	l->flushed_us = mono_us();
}

/* Writes a dirty ledger as its next file and removes the previous one (unless another
 * thread is writing it out now: then that one carries on).  Locked. */
static void ledger_flush(struct shared *sh, struct ledger *l)
{
	struct ledger_rec r;
	uint64_t seq;
	if (ledger_take(l, &r, &seq))
		ledger_done(l, ledger_write(sh, l, &r, seq), seq);
}

/* Writes this writer's dirty ledgers out with sh->mu released during the file I/O, so that
 * publishers are not held up by it.  Called without sh->mu. */
static void ledgers_flush_unlocked(struct shared *sh)
{
	struct ledger_rec r[LEDGERS_MAX];
	uint64_t seq[LEDGERS_MAX];
	int idx[LEDGERS_MAX], n = 0;
	pthread_mutex_lock(&sh->mu);
	for (int i = 0; i < sh->nled; i++)
		if (ledger_take(&sh->led[i], &r[n], &seq[n]))
			idx[n++] = i;
	pthread_mutex_unlock(&sh->mu);
	int rc[LEDGERS_MAX];
	for (int k = 0; k < n; k++) /* led[] never moves and busy keeps others off */
		rc[k] = ledger_write(sh, &sh->led[idx[k]], &r[k], seq[k]);
	pthread_mutex_lock(&sh->mu);
	for (int k = 0; k < n; k++)
		ledger_done(&sh->led[idx[k]], rc[k], seq[k]);
	pthread_mutex_unlock(&sh->mu);
}

static void ledgers_flush(struct shared *sh)
{
	for (int i = 0; i < sh->nled; i++)
		ledger_flush(sh, &sh->led[i]);
}

/* Records a publication (sign +1) or a removal (-1) of span bytes by this writer.  Returns
 * 1 when the ledger is due to be written out (with refresh_ms 0 at once, else half of
 * refresh_ms after the last write: others re-read no more often), else 0.  Locked. */
static int ledger_count(struct shared *sh, const char *tenant, int sign, uint64_t span)
{
	struct ledger *l = ledger_of(sh, tenant);
	if (!l)
		return 0;
	if (sign > 0) {
		l->r.pub_bytes += span;
		l->r.pub_blocks++;
	} else {
		l->r.rm_bytes += span;
		l->r.rm_blocks++;
	}
	l->dirty = 1;
	return mono_us() - l->flushed_us >= (uint64_t)sh->refresh_ms * 500;
}

/* As ledger_count, writing the ledger out when it is due, under sh->mu.  Locked. */
static void ledger_add(struct shared *sh, const char *tenant, int sign, uint64_t span)
{
	if (ledger_count(sh, tenant, sign, span))
		ledger_flush(sh, ledger_of(sh, tenant));
}

static struct tenant_use *use_of(struct tenant_use *u, int *n, const char *tenant)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(u[i].tenant, tenant))
			return &u[i];
	if (*n == LEDGERS_MAX)
		return NULL;
	struct tenant_use *t = &u[(*n)++];
	memset(t, 0, sizeof(*t));
	snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
	return t;
}

/* Reads one ledger file into the sums: 0, -ENOENT if it went meanwhile, or -EINVAL for a
 * torn or foreign one (skipped). */
static int view_add_file(struct tenant_use *u, int *n, int dfd, const char *name)
{
	char tenant[17];
	memcpy(tenant, name, 16);
	tenant[16] = 0;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EINVAL;
	struct ledger_rec r;
	ssize_t got = pread(fd, &r, sizeof(r), 0);
	close(fd);
	struct tenant_use *t;
	if (got != (ssize_t)sizeof(r) || !ledger_check(&r) || !(t = use_of(u, n, tenant)))
		return -EINVAL;
	t->bytes += (int64_t)(r.pub_bytes - r.rm_bytes);
	t->blocks += (int64_t)(r.pub_blocks - r.rm_blocks);
	return 0;
}

/* A ledger file's name: "<tenant>.<writer>.<rest>", rest 16 hex digits (a live ledger's
 * seq) or anything else (a closed or claimed one, counted as it is). */
struct ledger_file {
	char name[128];
	uint64_t seq;
	int live;
};

static int ledger_file_parse(const char *nm, struct ledger_file *f)
{
	size_t L = strlen(nm);
	if (L < 16 + 1 + 32 + 2 || L >= sizeof(f->name) || nm[16] != '.' || nm[49] != '.')
		return -1;
	snprintf(f->name, sizeof(f->name), "%s", nm);
	char *end;
	f->seq = strtoull(nm + 50, &end, 16);
	f->live = L == 50 + 16 && !*end;
	return 0;
}

/* One pass over the ledger directory: -ENOENT if a file went while it was read. */
static int view_read(struct shared *sh, struct tenant_use *u, int *n)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/.kvgrid/usage", sh->root);
	DIR *d = opendir(p);
	if (!d)
		return -errno;
	struct ledger_file *f = NULL;
	size_t nf = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct ledger_file lf;
		if (ledger_file_parse(de->d_name, &lf) ||
		    !strncmp(de->d_name + 17, sh->writer_hex, 32)) /* ours: from memory */
			continue;
		size_t k;
		for (k = 0; lf.live && k < nf; k++) /* a writer's newest live file only */
			if (f[k].live && !strncmp(f[k].name, lf.name, 49))
				break;
		if (lf.live && k < nf) {
			if (lf.seq > f[k].seq)
				f[k] = lf;
			continue;
		}
		if (nf == cap) {
			struct ledger_file *nfp =
			    realloc(f, (cap = cap ? 2 * cap : 64) * sizeof(*f));
			if (!nfp)
				break;
			f = nfp;
		}
		f[nf++] = lf;
	}
	int rc = 0;
	*n = 0;
	for (size_t k = 0; k < nf && !rc; k++)
		if (view_add_file(u, n, dirfd(d), f[k].name) == -ENOENT)
			rc = -ENOENT;
	closedir(d);
	free(f);
	return rc;
}

/* Re-reads every other writer's ledger (this writer's dirty ones are written out first).
 * Locked. */
static void view_refresh(struct shared *sh)
{
	ledgers_flush(sh);
	struct tenant_use u[LEDGERS_MAX];
	int n = 0;
	for (int tries = 0; tries < 3; tries++) /* a writer replaced a file under us: again */
		if (view_read(sh, u, &n) != -ENOENT)
			break;
	memcpy(sh->others, u, sizeof(u[0]) * (size_t)n);
	sh->nothers = n;
	sh->view_us = mono_us();
}

/* Re-reads the other writers' ledgers without holding sh->mu during the reads, when the
 * view is older than refresh_ms and no other thread is at it: make_room() then finds it
 * fresh.  With refresh_ms 0, make_room() re-reads under sh->mu itself.  Unlocked. */
static void view_refresh_unlocked(struct shared *sh)
{
	if (!sh->refresh_ms)
		return;
	pthread_mutex_lock(&sh->mu);
	int stale = mono_us() - sh->view_us >= (uint64_t)sh->refresh_ms * 1000 && !sh->viewing;
	sh->viewing |= stale;
	pthread_mutex_unlock(&sh->mu);
	if (!stale)
		return;
	struct tenant_use u[LEDGERS_MAX];
	int n = 0, rc = -ENOENT;
	for (int tries = 0; tries < 3 && rc == -ENOENT; tries++)
		rc = view_read(sh, u, &n);
	pthread_mutex_lock(&sh->mu);
	if (rc == 0) {
		memcpy(sh->others, u, sizeof(u[0]) * (size_t)n);
		sh->nothers = n;
		sh->view_us = mono_us();
	}
	sh->viewing = 0;
	pthread_mutex_unlock(&sh->mu);
}

/* Usage in bytes and blocks of one tenant (NULL: all), others' and ours.  Locked. */
static int64_t usage_of(const struct shared *sh, const char *tenant, int64_t *blocks)
{
	int64_t b = 0, k = 0;
	for (int i = 0; i < sh->nothers; i++)
		if (!tenant || !strcmp(sh->others[i].tenant, tenant)) {
			b += sh->others[i].bytes;
			k += sh->others[i].blocks;
		}
	for (int i = 0; i < sh->nled; i++)
		if (!tenant || !strcmp(sh->led[i].tenant, tenant)) {
			b += (int64_t)(sh->led[i].r.pub_bytes - sh->led[i].r.rm_bytes);
			k += (int64_t)(sh->led[i].r.pub_blocks - sh->led[i].r.rm_blocks);
		}
	if (blocks)
		*blocks = k;
	return b;
}

/*
 * Ledgers of closed grids ("<tenant>.<writer>.done") are folded into this writer's: the
 * rename to a claim name succeeds for one host only, which adds the counts to its own ledger
 * and then removes the claim.  Keeps the ledger directory as small as the live grids.
 * Locked.
 */
static void ledgers_fold(struct shared *sh)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/.kvgrid/usage", sh->root);
	DIR *d = opendir(p);
	if (!d)
		return;
	struct dirent *de;
	int folded = 0;
	while ((de = readdir(d)) && folded < 256) {
		struct ledger_file lf;
		if (ledger_file_parse(de->d_name, &lf) || strcmp(de->d_name + 50, "done"))
			continue;
		char claim[512];
		snprintf(claim, sizeof(claim), "%.100s.fold-%s", de->d_name, sh->writer_hex);
		if (renameat(dirfd(d), de->d_name, dirfd(d), claim))
			continue; /* another host took it */
		int fd = openat(dirfd(d), claim, O_RDONLY | O_CLOEXEC);
		struct ledger_rec r;
		char tenant[17];
		memcpy(tenant, de->d_name, 16);
		tenant[16] = 0;
		struct ledger *l;
		if (fd >= 0 && pread(fd, &r, sizeof(r), 0) == (ssize_t)sizeof(r) &&
		    ledger_check(&r) && (l = ledger_of(sh, tenant))) {
			l->r.pub_bytes += r.pub_bytes;
			l->r.pub_blocks += r.pub_blocks;
			l->r.rm_bytes += r.rm_bytes;
			l->r.rm_blocks += r.rm_blocks;
			l->dirty = 1;
			ledger_flush(sh, l);
		}
		if (fd >= 0)
			close(fd);
		unlinkat(dirfd(d), claim, 0);
		folded++;
	}
	closedir(d);
}

/* ---- the tree scan: candidates for eviction, old temporaries, true usage ------------------ */

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->mtime_ns < y->mtime_ns ? -1 : x->mtime_ns > y->mtime_ns;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int is_hex_key(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* The key an object's name (64 hex digits) spells: 0 or -1. */
static int key_of_hex(const char *s, kvg_key *key)
{
	if (!is_hex_key(s))
		return -1;
	for (int i = 0; i < KVG_KEY_BYTES; i++) {
		int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
		int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' : s[2 * i + 1] - 'a' + 10;
		key->bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

struct scan_out {
	struct cand *c;
	size_t n, cap;
	struct tenant_use use[LEDGERS_MAX];
	int nuse;
};

/* One <kk> directory: objects become candidates; temporaries and quarantined objects older
 * than the grace period are removed (they were never counted in a ledger). */
static void scan_kk(struct shared *sh, const char *tdir, const char *tenant, const char *kk,
		    struct scan_out *o)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/%s/%s", sh->root, tdir, kk);
	DIR *d = opendir(p);
	if (!d)
		return;
	int64_t now_ns = (int64_t)time(NULL) * 1000000000;
	struct dirent *de;
	struct stat st;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		if (!strcmp(nm, ".") || !strcmp(nm, ".."))
			continue;
		if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (!strncmp(nm, ".tmp-", 5) || !strncmp(nm, ".bad-", 5)) {
			if (now_ns - mtime_ns(&st) > (int64_t)sh->grace_s * 1000000000 &&
			    unlinkat(dirfd(d), nm, 0) == 0)
				count(&sh->temps_removed, 1);
			continue;
		}
		if (!is_hex_key(nm))
			continue;
		struct tenant_use *u = use_of(o->use, &o->nuse, tenant);
		if (u) {
			u->bytes += st.st_size;
			u->blocks++;
		}
		if (o->n == o->cap) {
			size_t nc = o->cap ? 2 * o->cap : 1024;
			struct cand *c = realloc(o->c, nc * sizeof(*c));
			if (!c)
				continue;
			o->c = c;
			o->cap = nc;
		}
		struct cand *c = &o->c[o->n++];
		c->mtime_ns = mtime_ns(&st);
		c->size = (uint64_t)st.st_size;
		snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
		c->tenant_own = !strcmp(tenant, sh->tenant);
		snprintf(c->rel, sizeof(c->rel), "%s/%s/%s", tdir, kk, nm);
	}
	closedir(d);
}

/* Walks every tenant directory (no lock held). */
static int scan_tree(struct shared *sh, struct scan_out *o)
{
	memset(o, 0, sizeof(*o));
	DIR *d = opendir(sh->root);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "t-", 2) || strlen(de->d_name) != 18)
			continue;
		for (int k = 0; k < 256; k++) {
			char kk[3];
			snprintf(kk, sizeof(kk), "%02x", k);
			scan_kk(sh, de->d_name, de->d_name + 2, kk, o);
		}
	}
	closedir(d);
	qsort(o->c, o->n, sizeof(*o->c), cand_cmp);
	return 0;
}

/* The scan's candidates replace the old ones.  Locked. */
static void cands_take(struct shared *sh, struct scan_out *o)
{
	free(sh->cands);
	sh->cands = o->c;
	sh->ncand = o->n;
	sh->cand_next = 0;
	o->c = NULL;
}

/* ---- eviction (sh->mu) ------------------------------------------------------------------- */

/* Removes candidate c if it is still the object the scan saw (an object read since then has
 * a newer mtime and stays).  Returns its bytes if this call removed it, else 0.  Locked. */
static uint64_t evict_one(struct shared *sh, const struct cand *c)
{
	char p[4300];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", sh->root, c->rel);
	if (stat(p, &st) || mtime_ns(&st) != c->mtime_ns)
		return 0;
	if (unlink(p))
		return 0; /* another host evicted it first: its ledger counts it */
	kvg_key key;
	if (c->tenant_own && key_of_hex(base_of(c->rel), &key) == 0)
		seen_set(sh, &key, 0);
	ledger_add(sh, c->tenant, -1, (uint64_t)st.st_size);
	count(&sh->evictions, 1);
	return (uint64_t)st.st_size;
}

/* Bytes over the capacity and over the tenant quota if need more bytes arrive.  Locked. */
static void over_by(const struct shared *sh, uint64_t need, int64_t *all, int64_t *ten)
{
	int64_t total = usage_of(sh, NULL, NULL), mine = usage_of(sh, sh->tenant, NULL);
	/* evicting down to 95% leaves room for a few stores before the next eviction */
	*all = (int64_t)(total + (int64_t)need) - (int64_t)sh->cap;
	if (*all > 0)
		*all += (int64_t)(sh->cap / 20);
	*ten = 0;
	if (sh->tcap) {
		*ten = (int64_t)(mine + (int64_t)need) - (int64_t)sh->tcap;
		if (*ten > 0)
			*ten += (int64_t)(sh->tcap / 20);
	}
}

/*
 * Makes room for need bytes of this grid's tenant: evicts the least recently used objects
 * (of any tenant for the capacity, of this tenant for its quota) until both limits hold,
 * and at least extra bytes in any case (the filesystem said ENOSPC below the capacity).
 * Returns 0, or KVG_EFULL when nothing more can be evicted.  Locked.
 */
static int make_room(struct shared *sh, uint64_t need, uint64_t extra)
{
	if (need > sh->cap || (sh->tcap && need > sh->tcap))
		return KVG_EFULL;
	if (mono_us() - sh->view_us >= (uint64_t)sh->refresh_ms * 1000)
		view_refresh(sh);
	int64_t all, ten, freed = 0;
	over_by(sh, need, &all, &ten);
	int rescans = 0;
	while (all > 0 || ten > 0 || freed < (int64_t)extra) {
		if (sh->cand_next == sh->ncand) {
			if (rescans++ == SCAN_RESCANS_MAX)
				return KVG_EFULL;
			struct scan_out o;
			if (scan_tree(sh, &o))
				return KVG_EFULL;
			cands_take(sh, &o);
			view_refresh(sh);
			over_by(sh, need, &all, &ten);
			continue;
		}
		const struct cand *c = &sh->cands[sh->cand_next++];
		if (all <= 0 && freed >= (int64_t)extra && !c->tenant_own)
			continue; /* only the quota is exceeded: this tenant's objects go */
		int64_t got = (int64_t)evict_one(sh, c);
		all -= got;
		freed += got;
		if (c->tenant_own)
			ten -= got;
	}
	return 0;
}

/* ---- publish ------------------------------------------------------------------------------ */

#define WRITE_IOV_MAX 64 /* pieces handed to one pwritev() */

/* Header block and payload (the pieces iov[0..cnt), len bytes in all) in as few requests as
 * the filesystem takes: 0 or -errno. */
static int write_object(int fd, const uint8_t *blk, const struct iovec *iov, int cnt, size_t len)
{
	size_t done = 0, total = REC_HDR_BYTES + len;
	while (done < total) {
		struct iovec v[WRITE_IOV_MAX];
		int n = 0;
		if (done < REC_HDR_BYTES)
			v[n++] = (struct iovec){(void *)(blk + done), REC_HDR_BYTES - done};
		/* the payload pieces from byte `in` of the payload on */
		size_t in = done < REC_HDR_BYTES ? 0 : done - REC_HDR_BYTES, at = 0;
		for (int k = 0; k < cnt && n < WRITE_IOV_MAX; k++) {
			size_t l = iov[k].iov_len;
			if (at + l > in) {
				size_t skip = in > at ? in - at : 0;
				v[n++] =
				    (struct iovec){(uint8_t *)iov[k].iov_base + skip, l - skip};
			}
			at += l;
		}
		ssize_t w = pwritev(fd, v, n, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return 0;
}

/* Writes the whole object (the pieces iov[0..cnt), len bytes) to a new temporary file tmp
 * (relative to at).  Returns 0 or -errno (tmp removed). */
static int write_temp(struct shared *sh, int at, const char *tmp, const kvg_key *key,
		      const struct iovec *iov, int cnt, size_t len, uint32_t depth, uint32_t parts)
{
	int fd = openat(at, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	static __thread uint8_t blk[REC_HDR_BYTES] __attribute__((aligned(4096)));
	memset(blk, 0, sizeof(blk));
	struct rec_hdr h = {.magic = REC_MAGIC,
			    .format = KVG_FORMAT_VERSION,
			    .flags = REC_F_SHARED,
			    .seq = (uint64_t)time(NULL),
			    .payload_len = len,
			    .depth = depth,
			    .parts = parts ? parts : 1};
	if (h.parts > REC_PARTS_MAX || len % h.parts)
		h.parts = 1;
	memcpy(h.key, key->bytes, KVG_KEY_BYTES);
	memcpy(h.grid_id, sh->writer, 16);
	memcpy(blk, &h, sizeof(h));
	rec_hdr_seal_payload(blk, iov, cnt);
	int rc = write_object(fd, blk, iov, cnt, len);
	if (!rc && sh->sync && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (rc)
		unlinkat(at, tmp, 0);
	return rc;
}

/*
 * Publishes tmp as final without ever replacing an object: renameat2(RENAME_NOREPLACE)
 * (one operation), or where the filesystem does not have it, link() then unlink(tmp) --
 * handed to the background thread, off the store's path.
 * Returns 1 if this call published it, 0 if the name already held an object, or -errno.
 */
static int publish_name(struct shared *sh, int at, const char *tmp, const char *final)
{
	int rc;
	if (!__atomic_load_n(&sh->no_rename2, __ATOMIC_RELAXED)) {
		if (syscall(SYS_renameat2, at, tmp, at, final, 1 /* NOREPLACE */) == 0)
			return 1;
		if (errno == EEXIST) {
			tmp_drop(sh, at, tmp);
			return 0;
		}
		if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
			rc = -errno;
			unlinkat(at, tmp, 0);
			return rc;
		}
		/* not on this filesystem (GlusterFS's FUSE client): link() from now on */
		__atomic_store_n(&sh->no_rename2, 1, __ATOMIC_RELAXED);
	}
	if (linkat(at, tmp, at, final, 0) == 0)
		rc = 1;
	else
		rc = errno == EEXIST ? 0 : -errno;
	if (rc >= 0)
		tmp_drop(sh, at, tmp); /* the object is published (or was): nothing waits for it */
	else
		unlinkat(at, tmp, 0);
	return rc;
}

int shared_publish(struct shared *sh, const kvg_key *key, const void *buf, size_t len,
		   uint32_t depth, uint32_t parts)
{
	struct iovec iov = {(void *)buf, len};
	return shared_publishv(sh, key, &iov, 1, depth, parts, NULL);
}

int shared_publishv(struct shared *sh, const kvg_key *key, const struct iovec *iov, int cnt,
		    uint32_t depth, uint32_t parts, int *published)
{
	size_t len = 0;
	for (int k = 0; k < cnt; k++)
		len += iov[k].iov_len;
	if (published)
		*published = 0;
	char final[4300], tmp[4300];
	if (seen_has(sh, key))
		return 0; /* content-addressed: the same key holds the same bytes */
	/* No stat() of the final name first: that is one more round trip for every new block,
	 * and publish_name() finds a block already there anyway (EEXIST) */
	obj_path(sh, key, final, sizeof(final));
	uint64_t span = span_of(len);
	int rc = 0, at = AT_FDCWD;
	view_refresh_unlocked(sh);
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&sh->mu);
		rc = make_room(sh, span, attempt ? 4 * span : 0); /* after ENOSPC: more */
		pthread_mutex_unlock(&sh->mu);
		if (rc)
			break;
		sibling_path(sh, key, "tmp", tmp, sizeof(tmp));
		at = kk_at(sh, key);
		rc = write_temp(sh, at, rel_of(at, tmp), key, iov, cnt, len, depth, parts);
		if ((rc == -ENOENT || rc == -ESTALE) && obj_dirs(sh, key) == 0) {
			/* the <kk> not made yet, or replaced under this grid */
			if (at != AT_FDCWD)
				kk_renew(sh, key, at);
			at = AT_FDCWD;
			rc = write_temp(sh, at, tmp, key, iov, cnt, len, depth, parts);
		}
		if (rc != -ENOSPC && rc != -EDQUOT)
			break;
	}
	if (rc) {
		if (rc != KVG_EFULL)
			count(&sh->io_errors, 1);
		return rc;
	}
	rc = publish_name(sh, at, rel_of(at, tmp), rel_of(at, final));
	if (rc < 0) {
		count(&sh->io_errors, 1);
		return rc;
	}
	count(&sh->bytes_written, len);
	seen_set(sh, key, 1);
	if (rc == 1) {
		__atomic_store_n(touch_slot(sh, key), (uint32_t)time(NULL), __ATOMIC_RELAXED);
		if (published)
			*published = 1;
		count(&sh->published, 1);
		pthread_mutex_lock(&sh->mu);
		int due = ledger_count(sh, sh->tenant, +1, span);
		pthread_mutex_unlock(&sh->mu);
		if (due)
			ledgers_flush_unlocked(sh);
	}
	return 0;
}

/* ---- read ----------------------------------------------------------------------------------- */

/* Moves an object that failed verification out of the way, if the name still holds the
 * inode that was read (another host may have quarantined it and republished since). */
static void quarantine(struct shared *sh, const kvg_key *key, const char *final,
		       const struct stat *seen)
{
	struct stat now;
	char bad[4300];
	count(&sh->csum_failures, 1);
	if (stat(final, &now) || now.st_ino != seen->st_ino || now.st_dev != seen->st_dev)
		return;
	sibling_path(sh, key, "bad", bad, sizeof(bad));
	if (rename(final, bad) == 0) {
		pthread_mutex_lock(&sh->mu);
		ledger_add(sh, sh->tenant, -1, (uint64_t)seen->st_size);
		pthread_mutex_unlock(&sh->mu);
		log_msg(sh->log, LOG_WARN, "shared tier: %s failed verification: quarantined",
			final);
	}
}

/* Checks an object's header block against key.  0 or KVG_ECORRUPT. */
static int check_header(const uint8_t *blk, const kvg_key *key, struct rec_hdr *h)
{
	if (rec_hdr_check(blk, REC_HDR_BYTES, h) || !(h->flags & REC_F_SHARED))
		return KVG_ECORRUPT;
	if (memcmp(h->key, key->bytes, KVG_KEY_BYTES))
		return KVG_ECORRUPT; /* an object under another key's name is never served */
	return rec_parts_check(blk, h);
}

static int verify_payload(const uint8_t *blk, const struct rec_hdr *h, void *buf)
{
	struct iovec iov = {buf, h->payload_len};
	for (uint32_t p = 0; p < h->parts; p++)
		if (rec_part_verify(blk, h, p, &iov, 1))
			return KVG_ECORRUPT;
	return 0;
}

/* Reads up to 4096 + cap bytes from the start of the object, header block into blk and
 * payload into buf, in as few requests as the filesystem takes: bytes read or -errno. */
static ssize_t read_object(int fd, uint8_t *blk, void *buf, size_t cap)
{
	size_t done = 0, total = REC_HDR_BYTES + cap;
	while (done < total) {
		struct iovec iov[2];
		int n = 0;
		if (done < REC_HDR_BYTES)
			iov[n++] = (struct iovec){blk + done, REC_HDR_BYTES - done};
		size_t in = done < REC_HDR_BYTES ? 0 : done - REC_HDR_BYTES;
		if (cap > in)
			iov[n++] = (struct iovec){(uint8_t *)buf + in, cap - in};
		ssize_t r = preadv(fd, iov, n, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Refreshes the object's recency (its mtime) when neither its publication (h->seq) nor
 * this grid's last refresh of it is within touch_s: at most one metadata write per object
 * and touch_s from each host, and no stat on the read path. */
static void touch(struct shared *sh, int fd, const kvg_key *key, const struct rec_hdr *h)
{
	if (!sh->touch_s)
		return;
	uint32_t now = (uint32_t)time(NULL), *last = touch_slot(sh, key);
	uint32_t was = __atomic_load_n(last, __ATOMIC_RELAXED);
	if (now - (uint32_t)h->seq < sh->touch_s) {
		if ((uint32_t)h->seq - was < 1u << 31) /* later than what the slot says */
			__atomic_store_n(last, (uint32_t)h->seq, __ATOMIC_RELAXED);
		return;
	}
	if (now - was < sh->touch_s)
		return;
	__atomic_store_n(last, now, __ATOMIC_RELAXED);
	(void)futimens(fd, NULL);
}

int shared_read(struct shared *sh, const kvg_key *key, void *buf, size_t cap, size_t *len,
		uint32_t *depth)
{
	char final[4300];
	obj_path(sh, key, final, sizeof(final));
	int at = kk_at(sh, key);
	int fd = openat(at, rel_of(at, final), O_RDONLY | O_CLOEXEC);
	if (fd < 0 && at != AT_FDCWD &&
	    (errno == ESTALE || (errno == ENOENT && kk_recheck_due(sh, key)))) {
		/* missing, or the <kk> replaced: ESTALE says so, ENOENT is checked now and then */
		fd = open(final, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			kk_renew(sh, key, at);
	}
	if (fd < 0) {
		if (errno != ENOENT && errno != ESTALE)
			count(&sh->io_errors, 1);
		seen_set(sh, key, 0);
		count(&sh->misses, 1);
		return KVG_ENOTFOUND;
	}
	/* the whole file is read, in order: a wider readahead window, more of its requests in
	 * flight at once (a hint; no round trip) */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	static __thread uint8_t blk[REC_HDR_BYTES] __attribute__((aligned(4096)));
	struct rec_hdr h;
	ssize_t got = read_object(fd, blk, buf, cap);
	int rc = got < 0 ? (int)got : got < REC_HDR_BYTES ? KVG_ECORRUPT : 0;
	rc = rc ? rc : check_header(blk, key, &h);
	if (!rc && h.payload_len > cap) {
		*len = h.payload_len;
		close(fd);
		return KVG_EBUFSIZE;
	}
	/* the file is exactly header + payload: shorter is cut, longer (seen when the buffer
	 * had room for more) is not an object of this format */
	if (!rc && (uint64_t)got != span_of(h.payload_len))
		rc = KVG_ECORRUPT;
	rc = rc ? rc : verify_payload(blk, &h, buf);
	struct stat st;
	if (rc == KVG_ECORRUPT && fstat(fd, &st) == 0)
		quarantine(sh, key, final, &st);
	else if (rc == KVG_ECORRUPT)
		count(&sh->csum_failures, 1);
	else if (rc)
		count(&sh->io_errors, 1); /* EIO, ESTALE: a miss, the object stays */
	if (!rc)
		touch(sh, fd, key, &h);
	close(fd);
	seen_set(sh, key, !rc);
	if (rc) {
		count(&sh->misses, 1);
		return rc == KVG_ECORRUPT ? KVG_ECORRUPT : KVG_ENOTFOUND;
	}
	count(&sh->hits, 1);
	count(&sh->bytes_read, h.payload_len);
	*len = h.payload_len;
	*depth = h.depth;
	return 0;
}

/* ---- lookup and delete ---------------------------------------------------------------------- */

struct present_ctx {
	struct shared *sh;
	const kvg_key *keys;
	size_t first_miss; /* atomic: the smallest missing index found */
};

static void present_one(void *arg, size_t i)
{
	struct present_ctx *c = arg;
	if (i >= __atomic_load_n(&c->first_miss, __ATOMIC_RELAXED))
		return; /* past a miss already: the prefix ends before */
	char p[4300];
	struct stat st;
	if (seen_has(c->sh, &c->keys[i]))
		return;
	obj_path(c->sh, &c->keys[i], p, sizeof(p));
	if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= REC_HDR_BYTES) {
		seen_set(c->sh, &c->keys[i], 1);
		return;
	}
	size_t cur = __atomic_load_n(&c->first_miss, __ATOMIC_RELAXED);
	while (i < cur && !__atomic_compare_exchange_n(&c->first_miss, &cur, i, 0, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

size_t shared_present_run(struct shared *sh, const kvg_key *keys, size_t n, uint8_t *tiers)
{
	struct present_ctx c = {sh, keys, n};
	shared_parallel(sh, n, present_one, &c);
	for (size_t i = 0; tiers && i < c.first_miss; i++)
		tiers[i] = KVG_TIER_SHARED;
	return c.first_miss;
}

int shared_exists(struct shared *sh, const kvg_key *key)
{
	if (seen_has(sh, key))
		return 1;
	char p[4300];
	struct stat st;
	obj_path(sh, key, p, sizeof(p));
	int at = kk_at(sh, key);
	int rc = fstatat(at, rel_of(at, p), &st, 0);
	if (rc && at != AT_FDCWD &&
	    (errno == ESTALE || (errno == ENOENT && kk_recheck_due(sh, key)))) {
		rc = stat(p, &st); /* missing, or the <kk> replaced under this grid */
		if (rc == 0)
			kk_renew(sh, key, at);
	}
	int yes = rc == 0 && S_ISREG(st.st_mode) && st.st_size >= REC_HDR_BYTES;
	seen_set(sh, key, yes);
	return yes;
}

int shared_delete(struct shared *sh, const kvg_key *key)
{
	char p[4300];
	struct stat st;
	obj_path(sh, key, p, sizeof(p));
	seen_set(sh, key, 0);
	if (stat(p, &st) || unlink(p))
		return 0;
	pthread_mutex_lock(&sh->mu);
	ledger_add(sh, sh->tenant, -1, (uint64_t)st.st_size);
	pthread_mutex_unlock(&sh->mu);
	return 1;
}

/* ---- the pool ----------------------------------------------------------------------------------
 */

/* Takes an index of a batch with work left, b first if given.  pmu held. */
static struct batch *pool_take(struct shared *sh, struct batch *b, size_t *i)
{
	if (!b)
		for (b = sh->batches; b && b->next == b->n; b = b->link)
			;
	if (!b || b->next == b->n)
		return NULL;
	*i = b->next++;
	return b;
}

static void pool_run(struct shared *sh, struct batch *b, size_t i)
{
	pthread_mutex_unlock(&sh->pmu);
	b->fn(b->ctx, i);
	pthread_mutex_lock(&sh->pmu);
	if (++b->done == b->n)
		pthread_cond_broadcast(&sh->pdone);
}

static void *pool_main(void *arg)
{
	struct shared *sh = arg;
	pthread_mutex_lock(&sh->pmu);
	while (!sh->stop) {
		size_t i;
		struct batch *b = pool_take(sh, NULL, &i);
		if (!b) {
			pthread_cond_wait(&sh->pcv, &sh->pmu);
			continue;
		}
		pool_run(sh, b, i);
	}
	pthread_mutex_unlock(&sh->pmu);
	return NULL;
}

void shared_parallel(struct shared *sh, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
	if (n == 0)
		return;
	if (n == 1 || !sh->nthr) {
		for (size_t i = 0; i < n; i++)
			fn(ctx, i);
		return;
	}
	struct batch b = {.n = n, .fn = fn, .ctx = ctx};
	pthread_mutex_lock(&sh->pmu);
	b.link = sh->batches;
	sh->batches = &b;
	pthread_cond_broadcast(&sh->pcv);
	size_t i;
	while (pool_take(sh, &b, &i))
		pool_run(sh, &b, i);
	while (b.done < b.n)
		pthread_cond_wait(&sh->pdone, &sh->pmu);
	struct batch **pp = &sh->batches;
	while (*pp != &b)
		pp = &(*pp)->link;
	*pp = b.link;
	pthread_mutex_unlock(&sh->pmu);
}

/* ---- maintenance ---------------------------------------------------------------------------- */

/* Sums of the view, per tenant, for comparing two views.  Locked. */
static int views_equal(const struct tenant_use *a, int na, const struct tenant_use *b, int nb)
{
	return na == nb && !memcmp(a, b, sizeof(*a) * (size_t)na);
}

static void view_snapshot(struct shared *sh, struct tenant_use *u, int *n)
{
	*n = 0;
	for (int i = 0; i < sh->nothers; i++) {
		struct tenant_use *t = use_of(u, n, sh->others[i].tenant);
		t->bytes += sh->others[i].bytes;
		t->blocks += sh->others[i].blocks;
	}
	for (int i = 0; i < sh->nled; i++) {
		struct tenant_use *t = use_of(u, n, sh->led[i].tenant);
		t->bytes += (int64_t)(sh->led[i].r.pub_bytes - sh->led[i].r.rm_bytes);
		t->blocks += (int64_t)(sh->led[i].r.pub_blocks - sh->led[i].r.rm_blocks);
	}
}

/* The ledgers said a and the tree holds o: this writer's ledgers take the difference, so the
 * sums match the tree again (after a crash between a link and its ledger write).  Locked. */
static void reconcile(struct shared *sh, const struct tenant_use *a, int na,
		      const struct scan_out *o)
{
	for (int i = 0; i < o->nuse; i++) {
		int64_t lb = 0, lk = 0;
		for (int j = 0; j < na; j++)
			if (!strcmp(a[j].tenant, o->use[i].tenant)) {
				lb = a[j].bytes;
				lk = a[j].blocks;
			}
		int64_t db = o->use[i].bytes - lb, dk = o->use[i].blocks - lk;
		if (!db && !dk)
			continue;
		struct ledger *l = ledger_of(sh, o->use[i].tenant);
		if (!l)
			continue;
		if (db > 0)
			l->r.pub_bytes += (uint64_t)db;
		else
			l->r.rm_bytes += (uint64_t)-db;
		if (dk > 0)
			l->r.pub_blocks += (uint64_t)dk;
		else
			l->r.rm_blocks += (uint64_t)-dk;
		l->dirty = 1;
		ledger_flush(sh, l);
		log_msg(sh->log, LOG_INFO,
			"shared tier: tenant %s usage corrected by %" PRId64 " bytes",
			o->use[i].tenant, db);
	}
	for (int j = 0; j < na; j++) { /* a tenant whose objects are all gone */
		int seen = 0;
		for (int i = 0; i < o->nuse; i++)
			seen |= !strcmp(a[j].tenant, o->use[i].tenant);
		struct ledger *l;
		if (!seen && (a[j].bytes || a[j].blocks) && (l = ledger_of(sh, a[j].tenant))) {
			l->r.rm_bytes += (uint64_t)a[j].bytes;
			l->r.rm_blocks += (uint64_t)a[j].blocks;
			l->dirty = 1;
			ledger_flush(sh, l);
		}
	}
}

int shared_scan(struct shared *sh)
{
	struct tenant_use a[LEDGERS_MAX], b[LEDGERS_MAX];
	int na, nb;
	pthread_mutex_lock(&sh->mu);
	view_refresh(sh);
	view_snapshot(sh, a, &na);
	pthread_mutex_unlock(&sh->mu);
	struct scan_out o;
	int rc = scan_tree(sh, &o);
	if (rc)
		return rc;
	pthread_mutex_lock(&sh->mu);
	view_refresh(sh);
	view_snapshot(sh, b, &nb);
	if (views_equal(a, na, b, nb)) /* nobody published or removed during the scan */
		reconcile(sh, a, na, &o);
	cands_take(sh, &o);
	pthread_mutex_unlock(&sh->mu);
	return 0;
}

/* Makes this tenant's 256 <kk> directories, in order, when its tenant directory is new
 * (made here): the maintenance thread does it at start, so that a new tier's stores do not
 * each pay a failed create and two mkdirs (obj_dirs() still makes any that is missing), and
 * stops early when the grid closes. */
static void tenant_dirs(struct shared *sh)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/t-%s", sh->root, sh->tenant);
	if (mkdir(p, 0755))
		return; /* there already (or cannot be made: the stores will say) */
	for (int kk = 0; kk < 256 && !__atomic_load_n(&sh->jstop, __ATOMIC_RELAXED); kk++) {
		snprintf(p, sizeof(p), "%s/t-%s/%02x", sh->root, sh->tenant, kk);
		(void)mkdir(p, 0755); /* EEXIST: another host made it */
	}
}

static void *janitor_main(void *arg)
{
	struct shared *sh = arg;
	tenant_dirs(sh);
	pthread_mutex_lock(&sh->jmu);
	while (!sh->jstop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += sh->grace_s;
		pthread_cond_timedwait(&sh->jcv, &sh->jmu, &ts);
		if (sh->jstop)
			break;
		pthread_mutex_unlock(&sh->jmu);
		shared_scan(sh);
		pthread_mutex_lock(&sh->jmu);
	}
	pthread_mutex_unlock(&sh->jmu);
	return NULL;
}

/* ---- open, close, stats ------------------------------------------------------------------- */

/* Creates or checks root/.kvgrid/FORMAT and the ledger directory. */
static int layout_init(struct shared *sh, char *err, size_t err_len)
{
	char p[4300];
	struct stat st;
	(void)mkdir(sh->root, 0755); /* its parent must exist */
	if (stat(sh->root, &st) || !S_ISDIR(st.st_mode))
		return err_set(err, err_len, KVG_ECONFIG, "shared_dir: %s is not a directory",
			       sh->root);
	snprintf(p, sizeof(p), "%s/.kvgrid", sh->root);
	if (mkdir(p, 0755) && errno != EEXIST)
		return err_set(err, err_len, -errno, "shared_dir: cannot create %s: %s", p,
			       strerror(errno));
	snprintf(p, sizeof(p), "%s/.kvgrid/usage", sh->root);
	if (mkdir(p, 0755) && errno != EEXIST)
		return err_set(err, err_len, -errno, "shared_dir: cannot create %s: %s", p,
			       strerror(errno));
	snprintf(p, sizeof(p), "%s/.kvgrid/FORMAT", sh->root);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0) {
		int w = write(fd, SHARED_FORMAT, strlen(SHARED_FORMAT)) ==
			(ssize_t)strlen(SHARED_FORMAT);
		close(fd);
		if (!w)
			return err_set(err, err_len, -EIO, "shared_dir: cannot write %s", p);
		return 0;
	}
	char got[64] = {0};
	size_t n = 0;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && n < sizeof(got) - 1) { /* a read may return less than there is */
		ssize_t r = read(fd, got + n, sizeof(got) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (fd >= 0)
		close(fd);
	/* a part of the line (empty included): another host is writing it, or a read failed */
	if (strncmp(got, SHARED_FORMAT, strlen(got)))
		return err_set(err, err_len, KVG_ECONFIG,
			       "shared_dir: %s does not say '%.*s': another format", p,
			       (int)strlen(SHARED_FORMAT) - 1, SHARED_FORMAT);
	return 0;
}

static void writer_id(struct shared *sh)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, sh->writer, 16) != 16) {
		uint64_t t = mono_us() ^ ((uint64_t)getpid() << 32);
		memcpy(sh->writer, &t, 8);
		memcpy(sh->writer + 8, &sh, sizeof(void *) < 8 ? sizeof(void *) : 8);
	}
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 16; i++)
		snprintf(sh->writer_hex + 2 * i, 3, "%02x", sh->writer[i]);
}

static int threads_start(struct shared *sh, uint32_t n)
{
	sh->thr = calloc(n, sizeof(pthread_t));
	if (!sh->thr)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (pthread_create(&sh->thr[i], NULL, pool_main, sh))
			return -EAGAIN;
		sh->nthr++;
	}
	if (pthread_create(&sh->bg, NULL, bg_main, sh))
		return -EAGAIN;
	sh->bg_started = 1;
	if (pthread_create(&sh->jan, NULL, janitor_main, sh))
		return -EAGAIN;
	sh->jan_started = 1;
	return 0;
}

int shared_open(const struct kvg_config *cfg, struct log *log, struct shared **out, char *err,
		size_t err_len)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	sh->log = log;
	snprintf(sh->root, sizeof(sh->root), "%s", cfg->shared_dir);
	snprintf(sh->tenant, sizeof(sh->tenant), "%016" PRIx64,
		 (uint64_t)XXH3_64bits(cfg->tenant, strlen(cfg->tenant)));
	sh->cap = cfg->shared_bytes;
	sh->tcap = cfg->shared_tenant_bytes;
	sh->sync = cfg->shared_sync;
	sh->grace_s = cfg->shared_grace_s ? cfg->shared_grace_s : 600;
	sh->touch_s = cfg->shared_touch_s;
	sh->refresh_ms = cfg->shared_refresh_ms;
	pthread_mutex_init(&sh->pmu, NULL);
	pthread_cond_init(&sh->pcv, NULL);
	pthread_cond_init(&sh->pdone, NULL);
	pthread_mutex_init(&sh->jmu, NULL);
	pthread_cond_init(&sh->jcv, NULL);
	pthread_mutex_init(&sh->mu, NULL);
	pthread_mutex_init(&sh->smu, NULL);
	pthread_mutex_init(&sh->kkmu, NULL);
	pthread_mutex_init(&sh->bmu, NULL);
	pthread_cond_init(&sh->bcv, NULL);
	/* without them (no memory), temporaries are unlinked at once and hits touch nothing */
	sh->unlinks = malloc(BG_UNLINKS_MAX * sizeof(*sh->unlinks));
	sh->touches = malloc(BG_TOUCHES_MAX * sizeof(*sh->touches));
	for (int i = 0; i < 256; i++)
		sh->kkfd[i] = -1;
	sh->cache_ms = cfg->shared_cache_ms;
	if (sh->cache_ms && !(sh->seen = calloc(SEEN_SLOTS, sizeof(*sh->seen)))) {
		free(sh->unlinks);
		free(sh->touches);
		free(sh);
		return -ENOMEM;
	}
	writer_id(sh);
	int rc = layout_init(sh, err, err_len);
	if (!rc && !sh->cap) {
		struct statvfs v;
		if (statvfs(sh->root, &v))
			rc = err_set(err, err_len, -errno, "shared_dir: statvfs: %s",
				     strerror(errno));
		else
			sh->cap = (uint64_t)v.f_blocks * v.f_frsize / 2;
	}
	if (!rc) {
		pthread_mutex_lock(&sh->mu);
		ledgers_fold(sh);
		view_refresh(sh);
		pthread_mutex_unlock(&sh->mu);
		rc = threads_start(sh, cfg->shared_threads ? cfg->shared_threads : 8);
		if (rc)
			err_set(err, err_len, rc, "shared tier: cannot start its threads");
	}
	if (rc) {
		shared_close(sh);
		return rc;
	}
	log_msg(log, LOG_INFO, "shared tier %s: capacity %" PRIu64 " MiB, writer %s", sh->root,
		sh->cap >> 20, sh->writer_hex);
	*out = sh;
	return 0;
}

/* Writes this writer's ledgers out and marks them closed (".done"), for another grid to
 * fold. */
static void ledgers_close(struct shared *sh)
{
	for (int i = 0; i < sh->nled; i++) {
		struct ledger *l = &sh->led[i];
		ledger_flush(sh, l);
		if (!l->seq)
			continue;
		char a[4300], b[4300];
		ledger_name(sh, l, l->seq, a, sizeof(a));
		snprintf(b, sizeof(b), "%s/.kvgrid/usage/%s.%s.done", sh->root, l->tenant,
			 sh->writer_hex);
		(void)rename(a, b);
	}
	sh->nled = 0;
}

void shared_close(struct shared *sh)
{
	if (!sh)
		return;
	pthread_mutex_lock(&sh->pmu);
	sh->stop = 1;
	pthread_cond_broadcast(&sh->pcv);
	pthread_mutex_unlock(&sh->pmu);
	for (uint32_t i = 0; i < sh->nthr; i++)
		pthread_join(sh->thr[i], NULL);
	pthread_mutex_lock(&sh->bmu);
	sh->bstop = 1; /* the unlinks queued are done first, the touches dropped */
	pthread_cond_broadcast(&sh->bcv);
	pthread_mutex_unlock(&sh->bmu);
	if (sh->bg_started)
		pthread_join(sh->bg, NULL);
	for (uint32_t i = 0; i < sh->nunlinks; i++) /* the thread never started */
		unlinkat(sh->unlinks[i].at, sh->unlinks[i].name, 0);
	if (sh->jan_started) {
		pthread_mutex_lock(&sh->jmu);
		__atomic_store_n(&sh->jstop, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&sh->jcv);
		pthread_mutex_unlock(&sh->jmu);
		pthread_join(sh->jan, NULL);
	}
	ledgers_close(sh);
	for (int i = 0; i < 256; i++)
		if (sh->kkfd[i] >= 0)
			close(sh->kkfd[i]);
	for (int i = 0; i < sh->nretired; i++)
		close(sh->retired[i]);
	pthread_mutex_destroy(&sh->kkmu);
	pthread_mutex_destroy(&sh->bmu);
	pthread_cond_destroy(&sh->bcv);
	free(sh->unlinks);
	free(sh->touches);
	free(sh->thr);
	free(sh->cands);
	pthread_mutex_destroy(&sh->pmu);
	pthread_cond_destroy(&sh->pcv);
	pthread_cond_destroy(&sh->pdone);
	pthread_mutex_destroy(&sh->jmu);
	pthread_cond_destroy(&sh->jcv);
	pthread_mutex_destroy(&sh->mu);
	pthread_mutex_destroy(&sh->smu);
	free(sh->seen);
	free(sh);
}

void shared_stats(struct shared *sh, struct kvg_tier_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&sh->mu);
	ledgers_flush(sh);
	if (mono_us() - sh->view_us >= (uint64_t)sh->refresh_ms * 1000)
		view_refresh(sh);
	int64_t blocks, bytes = usage_of(sh, NULL, &blocks);
	pthread_mutex_unlock(&sh->mu);
	out->capacity_bytes = sh->cap;
	out->bytes = bytes > 0 ? (uint64_t)bytes : 0;
	out->blocks = blocks > 0 ? (uint64_t)blocks : 0;
#define LOAD(x) __atomic_load_n(&sh->x, __ATOMIC_RELAXED)
	out->hits = LOAD(hits);
	out->misses = LOAD(misses);
	out->evictions = LOAD(evictions);
	out->bytes_read = LOAD(bytes_read);
	out->bytes_written = LOAD(bytes_written);
	out->checksum_failures = LOAD(csum_failures);
	out->io_errors = LOAD(io_errors);
	out->demotions = LOAD(published); /* blocks this grid wrote down into the tier */
#undef LOAD
	snprintf(out->backend, sizeof(out->backend), "posix");
}
