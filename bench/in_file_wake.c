/*
 * in_file_wake: what the file source costs while nothing it tails changes, driven through its
 * plugin table the way the agent's loop drives it (wait on wait_fd for at most 1 s, then
 * poll), in one scenario:
 *   missing    the glob's directories (DIR/m/a/b/<star>.log) do not exist yet; idle for
 *              SECONDS, then they and a file appear: the time until its first record.
 *   neighbour  the tailed file (DIR/n/app.log) is idle; another file beside it gets a line
 *              every 10 ms.
 *   ancestor   as `missing`, while files come and go in DIR/c (the deepest existing
 *              directory) every 100 ms.
 * The writes are done by a child process, so the CPU time printed is the source's alone.
 * Prints wakeups (wait_fd readable) per second, polls per second, CPU ms per second and, for
 * `missing`, the latency. Built and compared with a baseline revision by bench/in_file_wake.sh.
 * Usage: in_file_wake DIR missing|neighbour|ancestor SECONDS
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plugin.h"
#include "rn_clock.h"
#include "rn_conf.h"
#include "rn_err.h"
#include "rn_log.h"

extern const struct rn_source_plugin rn_in_file;

static size_t records;

static int h_emit(void *ctx, const struct rn_record *r)
{
	(void)ctx;
	(void)r;
	records++;
	return 0;
}

static void h_pos(void *ctx)
{
	(void)ctx;
}

static int h_load(void *ctx, struct rn_buf *out)
{
	(void)ctx;
	(void)out;
	return RN_ENOTFOUND;
}

static int h_accepting(void *ctx)
{
	(void)ctx;
	return 1;
}

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void append(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		(void)!write(fd, line, strlen(line));
		close(fd);
	}
}

/* The child's writes, until killed. */
static void writer(const char *dir, const char *scenario)
{
	char p[4200];
	for (unsigned i = 0;; i++) {
		if (!strcmp(scenario, "neighbour")) {
			snprintf(p, sizeof(p), "%s/n/other.log", dir);
			append(p, "a line of another application\n");
			usleep(10000);
		} else {
			snprintf(p, sizeof(p), "%s/c/tmp%u", dir, i % 8);
			append(p, "x\n");
			unlink(p);
			usleep(100000);
		}
	}
}

/* One turn of the agent's loop: wait (at most 1 s) on the descriptor, then poll. */
static void turn(void *inst, unsigned long *wakeups)
{
	short ev = 0;
	int more = 0, fd = rn_in_file.wait_fd(inst, &ev);
	struct pollfd p = {fd, ev, 0};
	if (fd >= 0 && poll(&p, 1, 1000) == 1)
		(*wakeups)++;
	else if (fd < 0)
		usleep(1000000);
	rn_in_file.poll(inst, rn_mono_us(), &more);
}

int main(int argc, char **argv)
{
	char conf[4400], sub[4200], err[256];
	void *data, *inst = NULL;
	struct rn_source_conf sc = {.type = "file", .name = "bench", .table = "b.b.b"};
	struct rn_source_host host = {.emit = h_emit,
				      .position_changed = h_pos,
				      .load_position = h_load,
				      .accepting = h_accepting};
	unsigned long wakeups = 0, polls = 0;
	int secs;
	const char *dir, *sce, *pat;
	pid_t child = 0;
	double c0;
	int64_t t0;
	if (argc != 4 || (secs = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: in_file_wake DIR missing|neighbour|ancestor SECONDS\n");
		return 2;
	}
	dir = argv[1];
	sce = argv[2];
	rn_log_set_level(RN_LOG_WARN);
	pat = !strcmp(sce, "neighbour")  ? "n/app.log"
	      : !strcmp(sce, "ancestor") ? "c/a/b/*.log"
					 : "m/a/b/*.log";
	snprintf(sub, sizeof(sub), "%s/%c", dir, pat[0]);
	mkdir(sub, 0755);
	if (!strcmp(sce, "neighbour")) {
		snprintf(sub, sizeof(sub), "%s/n/app.log", dir);
		append(sub, "");
	}
	snprintf(conf, sizeof(conf), "paths = [ \"%s/%s\" ];", dir, pat);
	if (!(data = calloc(1, rn_in_file.conf_size)) ||
	    rn_conf_load_string(conf, "bench", rn_in_file.conf, data, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		return 1;
	}
	sc.plugin.table = rn_in_file.conf;
	sc.plugin.data = data;
	if (rn_in_file.check(&sc, err, sizeof(err)) || rn_in_file.create(&inst, &sc, &host)) {
		fprintf(stderr, "create failed: %s\n", err);
		return 1;
	}
	turn(inst, &wakeups); /* the first scan */
	wakeups = 0;
	if (strcmp(sce, "missing") && (child = fork()) == 0)
		writer(dir, sce);
	c0 = cpu_ms();
	t0 = rn_mono_us();
	while (rn_mono_us() - t0 < (int64_t)secs * 1000000) {
		turn(inst, &wakeups);
		polls++;
	}
	printf("%-9s wakeups/s %7.2f  polls/s %7.2f  cpu ms/s %6.3f", sce, wakeups / (double)secs,
	       polls / (double)secs, (cpu_ms() - c0) / secs);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (!strcmp(sce, "missing")) {
		snprintf(sub, sizeof(sub), "%s/m/a", dir);
		mkdir(sub, 0755);
		snprintf(sub, sizeof(sub), "%s/m/a/b", dir);
		mkdir(sub, 0755);
		snprintf(sub, sizeof(sub), "%s/m/a/b/x.log", dir);
		append(sub, "hello\n");
		t0 = rn_mono_us();
		while (!records && rn_mono_us() - t0 < 10000000)
			turn(inst, &wakeups);
		printf("  first record after %.1f ms", (double)(rn_mono_us() - t0) / 1e3);
	}
	printf("\n");
	rn_in_file.destroy(inst);
	rn_conf_free(rn_in_file.conf, data);
	free(data);
	return 0;
}
