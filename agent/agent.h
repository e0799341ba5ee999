/*
 * runnel-agent's core: the pipeline (sources -> chunk builders -> buffer), the uplink glue
 * and the single-threaded main loop. One struct rn_agent per process, created by main()
 * from the config, run until SIGTERM/SIGINT (with reloads on SIGHUP in between), then
 * drained and destroyed. Its files are listed in agent/README.md; agent_int.h holds what
 * they share.
 */
#ifndef RN_AGENT_H
#define RN_AGENT_H

#include <signal.h>
#include <stdint.h>

#include "rn_conf.h"

enum { RN_POLICY_BLOCK = 0, RN_POLICY_DROP_OLDEST = 1 };

struct rn_agent_conf {
	char *device_id;
	char *data_dir;
	int log_level;
	char *plugin_dir;
	int sync; /* 0 = normal, 1 = full */
	int64_t buffer_max_bytes;
	int buffer_policy; /* RN_POLICY_BLOCK or RN_POLICY_DROP_OLDEST */
	int64_t buffer_reserve;
	char *url;
	char *token;              /* uplink.token, or the content of uplink.token_file */
	char *token_file;         /* a file holding the bearer token (mode 0600 or stricter) */
	char *client_id;          /* OAuth client-credentials flow (with client_secret_file) */
	char *client_secret_file; /* a file holding the client secret (mode 0600 or stricter) */
	char *token_url;          /* NULL = <url>/oidc/v1/token */
	/* not a row: read from client_secret_file by rn_agent_conf_secrets; never logged */
	char client_secret[RN_CONF_HDR_MAX + 1];
	char *ca_file; /* uplink TLS (https://): CA bundle, client cert and key, pinned key */
	char *cert_file;
	char *key_file;
	char *pinned_key;
	int64_t window;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	int64_t ack_timeout_ms;
	int64_t max_bytes_per_sec; /* uplink bandwidth cap, 0 = none */
	int64_t health_interval;   /* s between health reports (uplink.health_interval), 0 = none */
	/* not a row: SHA-256 of the config file's bytes (rn_agent_conf_digest), "" = unknown */
	char config_sha256[65];
	int64_t chunk_max_bytes;
	int64_t chunk_max_records;
	int64_t linger_ms;
	int64_t zstd_level;
	struct rn_conf_list sources; /* struct rn_source_conf */
};

extern const struct rn_conf_key rn_agent_conf_table[];

/* Checks what the table cannot: uplink.backoff_min_ms <= uplink.backoff_max_ms; the TLS keys
 * go with an https:// URL, cert_file with key_file, and the key file is neither group- nor
 * world-readable (nor writable); sources have
 * names, tables and a known type; names are unique. 0 or RN_ECONFIG with a message naming
 * the file and the keys or the source. */
int rn_agent_conf_check(const struct rn_agent_conf *c, const char *file, char *err, size_t cap);

/* Reads the secret files the config names (uplink.token_file into c->token, a heap string
 * rn_conf_free releases; uplink.client_secret_file into c->client_secret), refusing files
 * that the group or others may read or that are not regular files (agent/secret.h). Call
 * after rn_agent_conf_check, at start, for -n and on reload. 0 or RN_ECONFIG (file and mode
 * in err), RN_ENOMEM. */
int rn_agent_conf_secrets(struct rn_agent_conf *c, const char *file, char *err, size_t cap);

/* Sets c->config_sha256 to the SHA-256 of `file`'s bytes (64 lower-case hex digits), read
 * again now: call it right after loading the file (at start and on each reload). A file
 * that cannot be read leaves it "" (health reports then say nothing of it). */
void rn_agent_conf_digest(struct rn_agent_conf *c, const char *file);

struct rn_agent;

/* What main's signal handlers set and the loop reads. */
struct rn_agent_signals {
	volatile sig_atomic_t stop;       /* SIGTERM/SIGINT: leave the loop to drain */
	volatile sig_atomic_t status_now; /* SIGUSR1: write status.json at once (cleared) */
	volatile sig_atomic_t reload;     /* SIGHUP: leave the loop to reload (cleared) */
	/* The read end of a non-blocking pipe the handlers write a byte to after setting a
	 * flag, so that the loop's wait ends at once; 0 = none (the flags are then seen within
	 * the loop's longest sleep, 1 s). The loop drains it. */
	int wake_fd;
};

enum rn_agent_event { RN_AGENT_STOPPED = 0, RN_AGENT_RELOAD = 1 };

/* Opens the buffer, creates the uplink and starts every source of conf. conf is borrowed:
 * it must outlive the agent. 0, or an RN_E* code (buffer, plugin or memory) with nothing
 * left running. */
int rn_agent_create(struct rn_agent **out, const struct rn_agent_conf *conf);
/* Runs the loop until sig->stop (returns RN_AGENT_STOPPED; nothing is drained yet: call
 * rn_agent_drain) or sig->reload (cleared; returns RN_AGENT_RELOAD: call rn_agent_reload
 * or nothing, then run again). Sleeps until the next thing to do, at most 1 s, and pings
 * the systemd watchdog when one is set. */
int rn_agent_run(struct rn_agent *a, struct rn_agent_signals *sig);
/* Commits the open chunks and delivers for up to 2 s; then writes status.json. */
void rn_agent_drain(struct rn_agent *a);
/*
 * Puts a new config in force (see reload.c): unchanged sources keep running, removed ones
 * stop once what they read is in the buffer, added ones start, changed ones are stopped and
 * started again (resuming from their stored position). Settings that only apply at start
 * are logged ("... changes at restart") and keep their running value. conf was loaded with
 * rn_agent_conf_table and passed rn_agent_conf_check; it is heap-allocated and the agent
 * takes it over in every case (rn_conf_free + rn_free when no longer used). 0; RN_ENOMEM or
 * RN_EAGAIN (too many configs still in use) when refused: then nothing changed.
 */
int rn_agent_reload(struct rn_agent *a, struct rn_agent_conf *conf);
void rn_agent_destroy(struct rn_agent *a);

#endif
