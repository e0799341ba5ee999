/*
 * A small pool of worker threads for work too slow for the event loop (today: the PBKDF2
 * check of a client secret on POST /oidc/v1/token; issue 13 will put Parquet encoding and
 * compaction here). The owner thread (the loop) submits a job: run(arg) runs on a worker,
 * then done(arg, cancelled) runs back on the owner thread when it calls rn_pool_complete.
 *
 * Completion reaches the loop through an eventfd (rn_pool_fd): a worker adds 1 after it
 * has queued a finished job, the loop watches the descriptor (an EV_READ|EV_PERSIST event)
 * and calls rn_pool_complete. Chosen over event_active from the worker because that needs
 * evthread_use_pthreads, which makes every libevent operation of the whole process take a
 * lock, for one wake-up per job; and because it keeps this module free of libevent, so its
 * unit test is plain threads and poll(2).
 *
 * Ownership rule (server/README.md "Threads"): from submit until run returns, the job's
 * work (arg, or the fields of arg that run uses, named so in the caller's struct) belongs
 * to the worker; run may touch only that and call only thread-safe functions
 * (rn_malloc/rn_free, rn_log_*, crypto.h), never the server, its streams, principals, the
 * materializer or any libevent object: copy what the job needs into arg at submit. The
 * owner may keep other fields of arg (list links, the request to answer) and touch those
 * meanwhile. Once run returns, all of arg is the owner thread's again, handed back in done
 * (the pool's mutex orders the worker's writes before done reads them).
 *
 * Bounded: at most queue_max jobs are in the pool (submitted and not yet handed to done);
 * past it submit fails at once with RN_EAGAIN, so a flood is refused rather than queued.
 *
 * Every submitted job gets exactly one done call, on the owner thread: cancelled = 0 after
 * run, cancelled = 1 without run (a job still queued when the pool is destroyed). done is
 * where the caller frees arg.
 *
 * Lifetime: rn_pool_create on the owner thread starts the workers; rn_pool_destroy (same
 * thread) cancels queued jobs, waits for running ones, calls every pending done, joins the
 * workers and frees the pool. Only submit, complete, depth and destroy are for the owner
 * thread; nothing of the pool is for run.
 */
#ifndef RN_SERVER_POOL_H
#define RN_SERVER_POOL_H

#include <stddef.h>

#define RN_POOL_THREADS_MAX 64

struct rn_pool;

/* A zeroed struct is valid: 1 thread, queue of 64. */
struct rn_pool_options {
	unsigned threads; /* workers, 1..RN_POOL_THREADS_MAX (0 = 1) */
	size_t queue_max; /* jobs in the pool at once (0 = 64) */
	const char *name; /* for log lines and thread names ("pool"); copied */
};

typedef void (*rn_pool_run_fn)(void *arg);
typedef void (*rn_pool_done_fn)(void *arg, int cancelled);

/* Starts a pool. 0; RN_EINVAL (threads over the max); RN_ENOMEM; RN_EIO (no eventfd, or no
 * thread could be started: the pool is not made). */
int rn_pool_create(struct rn_pool **out, const struct rn_pool_options *o);
/* See above; NULL is a no-op. */
void rn_pool_destroy(struct rn_pool *p);

/* Queues run(arg) then done(arg, 0). 0; RN_EAGAIN (queue_max jobs in the pool already, or
 * the pool is being destroyed); RN_ENOMEM. On an error neither function is called. */
int rn_pool_submit(struct rn_pool *p, rn_pool_run_fn run, rn_pool_done_fn done, void *arg);

/* The descriptor that becomes readable when finished jobs wait for rn_pool_complete. */
int rn_pool_fd(const struct rn_pool *p);

/* Runs done for every finished job, in the order they finished (and resets the
 * descriptor). Returns how many. Owner thread; done may submit again. */
size_t rn_pool_complete(struct rn_pool *p);

/* Jobs in the pool: queued, running, or finished and waiting for rn_pool_complete. */
size_t rn_pool_depth(const struct rn_pool *p);

#endif
