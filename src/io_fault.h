/*
 * io_fault.h - the fault-injecting I/O backend ("fault"), for tests.
 *
 * It wraps a real backend ("uring" or "psync": the plan's inner= clause, else
 * io_config.fault_inner, else psync) and applies a plan, a string such as
 *
 *     "seed=7; fail=write:3:EIO; short=read:0.1; tear=write:10; flip=read:0.01; powercut=20"
 *
 * whose grammar is in doc/DURABILITY.md.  It can fail an operation with any errno, shorten a
 * read or a write (the caller must resubmit the rest), tear a write (only a prefix reaches the
 * file, yet success is reported, as a disk that lost power after acknowledging would), flip
 * one bit in what a read returns, and cut the power: writes that no fsync has made durable are
 * undone (their previous bytes are written back), and every later operation fails with EIO.
 *
 * To undo writes the backend reads each range before it is overwritten (a synchronous pread in
 * io_submit(), bounded by undo_max bytes): this backend is for tests, not for speed.  Power
 * cuts model the bytes of files only; file creation, size changes and renames made outside the
 * backend are not rolled back.
 *
 * Everything here is thread-safe.  The counters of every fault backend a process created are
 * also summed process-wide (io_fault_totals), so a test can see what was injected inside a grid
 * without reaching into it.
 */
#ifndef KVG_IO_FAULT_H
#define KVG_IO_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* What a fault backend saw and injected.  Monotonic counters. */
struct io_fault_counts {
	uint64_t reads, writes, fsyncs;			  /* operations submitted */
	uint64_t eio, enospc, eintr, eagain, other_errno; /* operations failed on purpose */
	uint64_t shorts;				  /* reads and writes shortened */
	uint64_t tears;		 /* writes torn: a prefix reached the file, success reported */
	uint64_t flips;		 /* bits flipped in read results */
	uint64_t powercuts;	 /* power cuts (0 or 1 per backend) */
	uint64_t dropped_writes; /* unsynced writes undone by a power cut */
	uint64_t dropped_bytes;
	uint64_t refused;  /* operations failed with EIO because the power was off */
	uint64_t cut_kept; /* power cut, cutmode=mixed: unsynced writes that survived */
	uint64_t cut_torn; /* ... and unsynced writes of which only a prefix survived */
	uint64_t delays;   /* operations held back before they reached the disk */
};

/* Sum of every fault injected (not counting operations refused after a power cut). */
uint64_t io_fault_injected(const struct io_fault_counts *c);

/* Accumulates src into dst. */
void io_fault_counts_add(struct io_fault_counts *dst, const struct io_fault_counts *src);

/*
 * Parses plan without creating anything.  Returns 0, or -EINVAL with a one-line reason in
 * err (which may be NULL).  Pure: safe on any string (fuzzed).
 */
int io_fault_plan_check(const char *plan, char *err, size_t err_len);

/*
 * Creates a fault backend over the given inner ops (io_fault_ops.create does this with
 * io_find(cfg->fault_inner)).  Returns 0, -EINVAL for a bad plan, or -errno.
 */
int io_fault_create_over(const struct io_ops *inner, const struct io_config *cfg,
			 struct io_backend **out);

/* Copies the counters of one fault backend (b must have been created by this module). */
void io_fault_counts_get(struct io_backend *b, struct io_fault_counts *out);

/*
 * Cuts the power of b now: waits for nothing, drops every write not yet made durable once the
 * operations in flight have finished, and fails everything after with EIO.  Idempotent.
 */
void io_fault_powercut(struct io_backend *b);

/* Process-wide: the counters of every fault backend created so far, live or destroyed. */
void io_fault_totals(struct io_fault_counts *out);

/* Process-wide: cuts the power of every live fault backend.  Returns how many it cut. */
int io_fault_powercut_all(void);

/* 1 if some live fault backend has lost its power and finished dropping writes. */
int io_fault_powered_off(void);

#endif
