/*
 * The agent's lifetime and its loop: create (buffer, uplink, sources), run (poll sources,
 * tick the pipeline, step the uplink, serve status, sleep until the next deadline), drain,
 * destroy. The pipeline is in pipeline.c, reload in reload.c, status in status.c; see
 * agent.h for the contracts. One struct rn_agent, on the loop thread.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_log.h"
#include "rn_mem.h"
#include "rn_sd.h"

#define IDLE_MAX_MS 1000 /* the longest sleep: an idle agent wakes at most once a second */
#define POLL_MS 50       /* sources without a wait_fd are polled this often */
#define WAITFD_MAX 64

/* The kernel's id of this boot, which pairs with CLOCK_BOOTTIME (chunk.h, uplink.h). */
static void read_boot_id(char *out, size_t cap)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	out[0] = 0;
	if (f && fgets(out, (int)cap, f))
		out[strcspn(out, " \r\n")] = 0;
	if (f)
		fclose(f);
}

int rn_agent_create(struct rn_agent **out, const struct rn_agent_conf *conf)
{
	struct rn_agent *a;
	char path[4200];
	int rc, recovered = 0;

	*out = NULL;
	if (!(a = rn_calloc(1, sizeof(*a))))
		return RN_ENOMEM;
	a->conf = conf;
	a->started_us = rn_mono_us();
	rn_lograte_init(&a->dead_log, RN_AGENT_DEAD_LOG_PERIOD_US, a->started_us);
	a->status_fd = -1;
	a->watchdog_us = rn_sd_watchdog_us();
	if (conf->device_id)
		snprintf(a->device_id, sizeof(a->device_id), "%s", conf->device_id);
	else if (gethostname(a->device_id, sizeof(a->device_id) - 1))
		snprintf(a->device_id, sizeof(a->device_id), "unknown");
	read_boot_id(a->boot_id, sizeof(a->boot_id));
	snprintf(path, sizeof(path), "%s/buffer.db", conf->data_dir);
	struct rn_buffer_options bo = {.path = path,
				       .sync_full = conf->sync,
				       .max_bytes = conf->buffer_max_bytes,
				       .reserve_bytes = conf->buffer_reserve};
	if ((rc = rn_buffer_open(&a->buffer, &bo, &recovered)))
		goto fail;
	if ((rc = rn_agent__uplink_open(a, 0, &a->uplink)))
		goto fail;
	for (size_t i = 0; i < conf->sources.n; i++)
		if ((rc = rn_agent__source_start(
			     a, conf, (const struct rn_source_conf *)conf->sources.items + i)))
			goto fail;
	if ((rc = rn_agent__register_orphans(a, a->uplink)))
		goto fail;
	if (recovered)
		rn_log_error("agent",
			     "the buffer was corrupt and has been set aside; started anew");
	a->buffer_recovered = recovered;
	rn_agent__status_socket_open(a);
	*out = a;
	return 0;
fail:
	rn_agent_destroy(a);
	return rc;
}

/* How long the loop may sleep: until the pipeline's next deadline or the next watchdog
 * ping, never more than IDLE_MAX_MS; POLL_MS while a source has no descriptor to wait on. */
static int sleep_ms(struct rn_agent *a, int nofd)
{
	int64_t now = rn_mono_us(), t = rn_agent__next_deadline(a);
	if (a->watchdog_us && a->next_watchdog_us < t)
		t = a->next_watchdog_us;
	if (a->next_status_us > now && a->next_status_us < t)
		t = a->next_status_us; /* a change waits at most until then to reach status.json */
	int64_t ms = t <= now ? 0 : (t - now + 999) / 1000;
	int64_t cap = nofd ? POLL_MS : IDLE_MAX_MS;
	return (int)(ms < cap ? ms : cap);
}

int rn_agent_run(struct rn_agent *a, struct rn_agent_signals *sig)
{
	struct rn_uplink_waitfd wfd[WAITFD_MAX];
	/* Whether the last wait saw the status socket or the wake pipe readable (or failed):
	 * only then are they read. A failing accept4() is not cheap (the kernel
	 * makes a socket inode before it finds the queue empty), and at one per iteration it
	 * was 16 % of the agent's CPU while a backlog drained (docs/benchmarks.md). */
	int status_ready = 1, wake_ready = 1;
	while (!sig->stop) {
		int64_t now = rn_mono_us();
		int more = 0, nw = 0, nofd = 0;
		if (sig->reload) {
			sig->reload = 0;
			return RN_AGENT_RELOAD;
		}
		if (a->watchdog_us && now >= a->next_watchdog_us) {
			rn_sd_notify("WATCHDOG=1");
			a->next_watchdog_us = now + a->watchdog_us / 3; /* > twice per interval */
		}
		/* the status socket and the wake pipe go first: the uplink watches 16 at most */
		int status_i = -1, wake_i = -1;
		if (a->status_fd >= 0) {
			status_i = nw;
			wfd[nw++] = (struct rn_uplink_waitfd){.fd = a->status_fd, .events = POLLIN};
		}
		if (sig->wake_fd > 0) {
			char buf[64];
			while (wake_ready && read(sig->wake_fd, buf, sizeof(buf)) > 0)
				; /* the flags say what happened */
			wake_i = nw;
			wfd[nw++] = (struct rn_uplink_waitfd){.fd = sig->wake_fd, .events = POLLIN};
		}
		for (size_t i = 0; i < a->nsrc; i++) {
			struct source *s = a->src[i];
			int m = 0, rc;
			if (s->have_pending || s->retiring)
				continue;
			s->poll_now_us = rn_now_us();
			if ((rc = s->p->poll(s->inst, rn_mono_us(), &m)))
				rn_log_error("agent", "source %s: %s", s->conf->name,
					     rn_strerror(rc));
			s->poll_failed = rc;
			s->poll_now_us = 0;
			more |= m;
			short ev = 0;
			int fd = -1;
			if (s->p->wait_fd && nw < WAITFD_MAX)
				fd = s->p->wait_fd(s->inst, &ev);
			if (fd >= 0)
				wfd[nw++] = (struct rn_uplink_waitfd){.fd = fd, .events = ev};
			else
				nofd = 1;
		}
		rn_agent__tick(a, now);
		rn_agent__reap(a);
		rn_uplink_step(a->uplink);
		rn_agent__health_step(a); /* after the step: a call it just opened gets one */
		if (status_ready)
			rn_agent__status_socket_serve(a);
		int now_please = sig->status_now;
		sig->status_now = 0; /* before the write: a SIGUSR1 during it is not lost */
		rn_agent__status_write(a, now_please);
		for (int i = 0; i < nw; i++)
			wfd[i].revents = 0;
		int failed = rn_uplink_wait(a->uplink, nw ? wfd : NULL, nw,
					    more ? 0 : sleep_ms(a, nofd));
		status_ready = failed || (status_i >= 0 && (wfd[status_i].revents & POLLIN));
		wake_ready = failed || (wake_i >= 0 && (wfd[wake_i].revents & POLLIN));
	}
	return RN_AGENT_STOPPED;
}

void rn_agent_drain(struct rn_agent *a)
{
	int64_t until = rn_mono_us() + 2000000;
	rn_log_info("agent", "stopping: committing open chunks and draining");
	for (size_t i = 0; i < a->nsrc; i++) {
		rn_agent__close_chunk(a->src[i]);
		if (a->src[i]->pos_dirty)
			rn_agent__tick(a, rn_mono_us());
	}
	while (!rn_uplink_idle(a->uplink) && rn_mono_us() < until) {
		rn_uplink_step(a->uplink);
		rn_uplink_wait(a->uplink, NULL, 0, 20);
	}
	rn_agent__acks_apply(a);
	rn_agent__status_write(a, 1);
}

void rn_agent_destroy(struct rn_agent *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nsrc; i++)
		rn_agent__source_free(a->src[i]);
	rn_free(a->src);
	rn_agent__status_socket_close(a);
	rn_uplink_destroy(a->uplink);
	rn_buffer_close(a->buffer);
	rn_buf_free(&a->snap);
	a->nsrc = 0;
	rn_agent__gc_gens(a);
	for (size_t i = 0; i < a->ngens; i++) {
		rn_conf_free(rn_agent_conf_table, a->gens[i]);
		rn_free(a->gens[i]);
	}
	rn_free(a);
}
