/* Worker threads, a bounded job queue and an eventfd back to the owner; see pool.h. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"

struct job {
	rn_pool_run_fn run;
	rn_pool_done_fn done;
	void *arg;
	struct job *next;
};

/* A FIFO of jobs. */
struct jobq {
	struct job *head, *tail;
};

struct rn_pool {
	pthread_mutex_t mu;   /* guards todo, finished, stopping */
	pthread_cond_t wake;  /* a job was queued, or stopping */
	struct jobq todo;     /* submitted, not started */
	struct jobq finished; /* run returned, done not called yet */
	int stopping;         /* destroy began: workers leave once todo is taken away */
	int efd;              /* eventfd: > 0 while finished may hold jobs */
	size_t depth;         /* jobs submitted and not yet handed to done (owner only) */
	size_t queue_max;
	unsigned nthreads; /* started */
	pthread_t threads[RN_POOL_THREADS_MAX];
	char name[16];
};

static void q_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *q_pop(struct jobq *q)
{
	struct job *j = q->head;
	if (j && !(q->head = j->next))
		q->tail = NULL;
	return j;
}

/* Tells the owner that finished jobs wait. An eventfd write fails only when the counter
 * would overflow (it cannot: the owner resets it), so a failure is logged, not handled. */
static void signal_owner(struct rn_pool *p)
{
	uint64_t one = 1;
	if (write(p->efd, &one, sizeof(one)) != sizeof(one))
		rn_log_error(p->name, "cannot wake the loop: %s", strerror(errno));
}

static void *worker(void *arg)
{
	struct rn_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j;
		while (!(j = q_pop(&p->todo)) && !p->stopping)
			pthread_cond_wait(&p->wake, &p->mu);
		if (!j)
			break;
		pthread_mutex_unlock(&p->mu);
		j->run(j->arg); /* arg is the worker's until here */
		pthread_mutex_lock(&p->mu);
		q_push(&p->finished, j);
		signal_owner(p);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int rn_pool_create(struct rn_pool **out, const struct rn_pool_options *o)
{
	static const struct rn_pool_options none = {0};
	struct rn_pool *p;
	unsigned want;
	int rc;

	*out = NULL;
	if (!o)
		o = &none;
	want = o->threads ? o->threads : 1;
	if (want > RN_POOL_THREADS_MAX)
		return RN_EINVAL;
	if (!(p = rn_calloc(1, sizeof(*p))))
		return RN_ENOMEM;
	snprintf(p->name, sizeof(p->name), "%s", o->name ? o->name : "pool");
	p->queue_max = o->queue_max ? o->queue_max : 64;
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rn_log_error(p->name, "eventfd: %s", strerror(errno));
		rn_free(p);
		return RN_EIO;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	for (; p->nthreads < want; p->nthreads++) {
		if ((rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p))) {
			rn_log_error(p->name, "cannot start a worker thread: %s", strerror(rc));
			rn_pool_destroy(p);
			return RN_EIO;
		}
		char tn[16];
		snprintf(tn, sizeof(tn), "%.12s-%u", p->name, p->nthreads);
		pthread_setname_np(p->threads[p->nthreads], tn);
	}
	*out = p;
	return 0;
}

int rn_pool_submit(struct rn_pool *p, rn_pool_run_fn run, rn_pool_done_fn done, void *arg)
{
	struct job *j;
	if (p->depth >= p->queue_max || p->stopping) /* stopping: set by this thread only */
		return RN_EAGAIN;
	if (!(j = rn_malloc(sizeof(*j))))
		return RN_ENOMEM;
	*j = (struct job){run, done, arg, NULL};
	pthread_mutex_lock(&p->mu);
	q_push(&p->todo, j);
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->mu);
	p->depth++;
	return 0;
}

int rn_pool_fd(const struct rn_pool *p)
{
	return p->efd;
}

size_t rn_pool_depth(const struct rn_pool *p)
{
	return p->depth;
}

/* Hands every job of q to done (cancelled as given), outside the lock. */
static size_t finish(struct rn_pool *p, struct jobq *q, int cancelled)
{
	size_t n = 0;
	struct job *j;
	while ((j = q_pop(q))) {
		p->depth--;
		j->done(j->arg, cancelled);
		rn_free(j);
		n++;
	}
	return n;
}

size_t rn_pool_complete(struct rn_pool *p)
{
	struct jobq q;
	uint64_t v;
	/* workers queue and signal under the lock: resetting the counter and taking the queue
	 * under it too keeps "readable" equal to "finished jobs wait" (no spurious wake-up,
	 * none lost) */
	pthread_mutex_lock(&p->mu);
	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rn_log_error(p->name, "eventfd read: %s", strerror(errno));
	q = p->finished;
	p->finished.head = p->finished.tail = NULL;
	pthread_mutex_unlock(&p->mu);
	return finish(p, &q, 0);
}

void rn_pool_destroy(struct rn_pool *p)
{
	struct jobq cancelled;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	cancelled = p->todo; /* never started: done(arg, 1) */
	p->todo.head = p->todo.tail = NULL;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++) /* running jobs finish first */
		pthread_join(p->threads[i], NULL);
	finish(p, &cancelled, 1);
	rn_pool_complete(p);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->mu);
	close(p->efd);
	rn_free(p);
}
