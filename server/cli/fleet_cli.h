/*
 * `runnel-server fleet`: the server's device (or stream, or refused client) list in the
 * terminal, read from the fleet API of a running server (`GET /api/v1/devices`,
 * `/api/v1/streams`, `/api/v1/refusals`; docs/protocol.md) over its cleartext HTTP port. It owns
 * the command line, the mapping of HTTP answers to clear messages (connection refused, 401 "needs a
 * token", 403, 404 from a server without the API) and the aligned table; `--json` prints the answer
 * as received. It never reads the server's data directory and links nothing of the materializer:
 * the answer's JSON is walked with common/rn_json.h, HTTP is httpget.h.
 *
 * The table renderers are pure (JSON text and the answer's now_ms in, text out) and
 * unit-tested; the network and the config file come in through struct rn_fleet_cli_env, so the
 * tests replace them. Lifetime: one call per process, from main(), on the main thread.
 */
#ifndef RN_SERVER_CLI_FLEET_CLI_H
#define RN_SERVER_CLI_FLEET_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "rn_buf.h"

/* Exit codes of rn_fleet_cli_main. */
enum {
	RN_FLEET_CLI_EXIT_OK = 0,    /* the list was printed */
	RN_FLEET_CLI_EXIT_ERROR = 1, /* no answer, or not a 200 one: the reason on err */
	RN_FLEET_CLI_EXIT_USAGE = 2  /* bad arguments */
};

/* What rn_fleet_cli_main needs from outside: the GET (rn_httpget's contract) and the URL of a
 * server config's metrics_listen. */
struct rn_fleet_cli_env {
	int (*get)(const char *base, const char *target, const char *bearer, int timeout_ms,
		   int *status, struct rn_buf *body, char *err, size_t cap);
	/* Writes "http://HOST:PORT" of config file `path`'s metrics_listen into url (cap
	 * bytes). 0, or non-zero with a sentence in err. NULL: -c is refused. */
	int (*conf_url)(const char *path, char *url, size_t cap, char *err, size_t errcap);
	/* The config read when neither --url nor -c is given, if it exists; NULL = none. */
	const char *default_conf;
};

/*
 * Runs `fleet [options]`; argv[0] is "fleet". Writes the list to out and diagnostics to
 * err. Returns one of the exit codes above; never exits the process.
 */
int rn_fleet_cli_main(int argc, char **argv, FILE *out, FILE *err,
		      const struct rn_fleet_cli_env *env);

/*
 * The aligned table of a `/api/v1/devices` answer (json, len) into out, ages computed
 * against the answer's now_ms. 0, RN_EINVAL (not the expected JSON: *why says what) or
 * RN_ENOMEM. rn_fleet_cli_streams: the same for `/api/v1/streams`; rn_fleet_cli_refusals:
 * for `/api/v1/refusals` (its "sources": address, principal, count, kinds, last seen, last
 * reason).
 */
int rn_fleet_cli_devices(const char *json, size_t len, struct rn_buf *out, const char **why);
int rn_fleet_cli_streams(const char *json, size_t len, struct rn_buf *out, const char **why);
int rn_fleet_cli_refusals(const char *json, size_t len, struct rn_buf *out, const char **why);

#endif
