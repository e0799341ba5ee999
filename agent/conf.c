/*
 * The agent's configuration: its rows (rn_conf tables, designated initializers), the checks
 * the rows cannot express (rn_agent_conf_check), the secret files the rows name
 * (rn_agent_conf_secrets, through secret.c) and the file's digest (rn_agent_conf_digest):
 * the only I/O here beyond rn_conf's; and the
 * comparison a reload needs to tell an unchanged source from a changed one. The tables are
 * const program data.
 */
#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "agent_int.h"
#include "plugin.h"
#include "rn_addr.h"
#include "rn_err.h"
#include "route.h"
#include "rn_mem.h"
#include "sha256.h"
#include "rn_table_name.h"
#include "secret.h"

const char *const rn_agent_policies[] = {"block", "drop_oldest", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const sync_modes[] = {"normal", "full", NULL};

#define A(f) offsetof(struct rn_agent_conf, f)
#define S(f) offsetof(struct rn_source_conf, f)
#define R(f) offsetof(struct rn_route_conf, f)

static const struct rn_conf_key agent_keys[] = {
	{.key = "device_id",
	 .type = RN_CONF_STRING,
	 .offset = A(device_id),
	 .help = "device id in every record (default: hostname)",
	 .flags = RN_CONF_F_RESTART},
	{.key = "data_dir",
	 .type = RN_CONF_STRING,
	 .def = "/var/lib/runnel",
	 .offset = A(data_dir),
	 .help = "buffer and status files",
	 .flags = RN_CONF_F_RESTART},
	{.key = "log_level",
	 .type = RN_CONF_ENUM,
	 .def = "info",
	 .enums = log_levels,
	 .offset = A(log_level),
	 .help = "log verbosity"},
	{.key = "plugin_dir",
	 .type = RN_CONF_STRING,
	 .offset = A(plugin_dir),
	 .help = "directory of source plugin .so files, loaded at start (ABI checked)",
	 .flags = RN_CONF_F_RESTART},
	{.key = NULL},
};

static const struct rn_conf_key buffer_keys[] = {
	{.key = "sync",
	 .type = RN_CONF_ENUM,
	 .def = "normal",
	 .enums = sync_modes,
	 .offset = A(sync),
	 .help = "normal: survive crashes; full: also power loss",
	 .flags = RN_CONF_F_RESTART},
	{.key = "max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "1G",
	 .min = 1 << 20,
	 .max = (int64_t)1 << 50,
	 .offset = A(buffer_max_bytes),
	 .help = "cap on buffered chunk bytes; what happens then is the policy",
	 .flags = RN_CONF_F_RESTART},
	{.key = "policy",
	 .type = RN_CONF_ENUM,
	 .def = "block",
	 .enums = rn_agent_policies,
	 .offset = A(buffer_policy),
	 .help = "when the cap is reached: block (pause sources; MQTT disconnects so the broker "
		 "queues) or drop_oldest (replace the oldest chunks by tombstone records that "
		 "count the loss)"},
	{.key = "reserve",
	 .type = RN_CONF_SIZE,
	 .def = "8M",
	 .max = (int64_t)1 << 40,
	 .offset = A(buffer_reserve),
	 .help = "disk space held back and released when the disk fills, so that acknowledged "
		 "chunks can still be deleted; 0 = none",
	 .flags = RN_CONF_F_RESTART},
	{.key = NULL},
};

static const struct rn_conf_key uplink_keys[] = {
	{.key = "url",
	 .type = RN_CONF_URL,
	 .def = "http://127.0.0.1:7700",
	 .offset = A(url),
	 .help = "Zerobus endpoint: http://host[:port] (h2c) or https://host[:port]; IPv6 in "
		 "brackets"},
	{.key = "token",
	 .type = RN_CONF_STRING,
	 .offset = A(token),
	 .help = "bearer token",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "ca_file",
	 .type = RN_CONF_STRING,
	 .offset = A(ca_file),
	 .help = "https://: PEM CA certificates the server certificate is verified against "
		 "(instead of the system store); verification is always on"},
	{.key = "cert_file",
	 .type = RN_CONF_STRING,
	 .offset = A(cert_file),
	 .help = "https://: PEM client certificate (mTLS), with key_file"},
	{.key = "key_file",
	 .type = RN_CONF_STRING,
	 .offset = A(key_file),
	 .help = "https://: PEM private key of cert_file; refused at start (and by -n) when group- "
		 "or world-readable: chmod 600"},
	{.key = "pinned_key",
	 .type = RN_CONF_STRING,
	 .offset = A(pinned_key),
	 .help = "https://: the server's public key, \"sha256//<base64 of the DER "
		 "SubjectPublicKeyInfo>\" (several joined by ';'); a server presenting another "
		 "key is refused even with a valid certificate"},
	{.key = "token_file",
	 .type = RN_CONF_STRING,
	 .offset = A(token_file),
	 .help = "file holding the bearer token (instead of token); refused if the group or "
		 "others may read it or it is not a regular file"},
	{.key = "client_id",
	 .type = RN_CONF_STRING,
	 .offset = A(client_id),
	 .help = "OAuth client id: the agent gets short-lived tokens from token_url "
		 "(client-credentials grant) and refreshes them before they expire; needs "
		 "client_secret_file, excludes token and token_file",
	 .flags = RN_CONF_F_NOCTL},
	{.key = "client_secret_file",
	 .type = RN_CONF_STRING,
	 .offset = A(client_secret_file),
	 .help = "file holding the OAuth client secret; refused if the group or others may read "
		 "it or it is not a regular file"},
	{.key = "token_url",
	 .type = RN_CONF_URL,
	 .offset = A(token_url),
	 .help = "OAuth token endpoint (default: <url>/oidc/v1/token, over the uplink's HTTP/2; "
		 "another http:// origin is spoken to over HTTP/1.1)"},
	{.key = "window",
	 .type = RN_CONF_INT,
	 .def = "32",
	 .min = 1,
	 .max = 1024,
	 .offset = A(window),
	 .help = "chunks in flight per stream"},
	{.key = "backoff_min_ms",
	 .type = RN_CONF_INT,
	 .def = "200",
	 .min = 1,
	 .max = 600000,
	 .offset = A(backoff_min_ms),
	 .help = "first retry delay cap"},
	{.key = "backoff_max_ms",
	 .type = RN_CONF_INT,
	 .def = "30000",
	 .min = 1,
	 .max = 3600000,
	 .offset = A(backoff_max_ms),
	 .help = "retry delay ceiling"},
	{.key = "ack_timeout_ms",
	 .type = RN_CONF_INT,
	 .def = "60000",
	 .min = 100,
	 .max = 3600000,
	 .offset = A(ack_timeout_ms),
	 .help = "chunks in flight and no word from the server for this long: the connection is "
		 "taken as dead (a silent link, a hung server) and dialled again"},
	{.key = "max_bytes_per_sec",
	 .type = RN_CONF_SIZE,
	 .def = "0",
	 .max = (int64_t)1 << 40,
	 .offset = A(max_bytes_per_sec),
	 .help = "bandwidth cap for metered links, all streams together (request bytes/s, K/M/G "
		 "suffixes); 0 = none"},
	{.key = "health_interval",
	 .type = RN_CONF_INT,
	 .def = "60",
	 .min = 0,
	 .max = 3600,
	 .offset = A(health_interval),
	 .help = "seconds between the agent's health reports to a server that takes them "
		 "(runnel-server; sooner, at most every 5 s, when a source's state, a drop or "
		 "dead-letter count or the clock changes); 0 = never send"},
	{.key = NULL},
};

static const struct rn_conf_key chunk_keys[] = {
	{.key = "max_bytes",
	 .type = RN_CONF_SIZE,
	 .def = "1M",
	 .min = 1024,
	 .max = (int64_t)8 << 20,
	 .offset = A(chunk_max_bytes),
	 .help = "encoded records per chunk"},
	{.key = "max_records",
	 .type = RN_CONF_INT,
	 .def = "10000",
	 .min = 1,
	 .max = 1000000,
	 .offset = A(chunk_max_records),
	 .help = "records per chunk"},
	{.key = "linger_ms",
	 .type = RN_CONF_INT,
	 .def = "200",
	 .min = 1,
	 .max = 600000,
	 .offset = A(linger_ms),
	 .help = "oldest record waits at most this long"},
	{.key = "zstd_level",
	 .type = RN_CONF_INT,
	 .def = "1",
	 .min = -7,
	 .max = 19,
	 .offset = A(zstd_level),
	 .help = "chunk compression level: 3 saves a few % more bytes than 1 for ~1.5x the CPU; "
		 "negative levels are zstd's fast ones (-1 ~15 % less compression CPU for ~15 % "
		 "more bytes); 0 is zstd's default (3)"},
	{.key = NULL},
};

static const struct rn_conf_key route_keys[] = {
	{.key = "match",
	 .type = RN_CONF_STRING,
	 .offset = R(match),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "topic filter (MQTT rules: + one level, # the rest)"},
	{.key = "table",
	 .type = RN_CONF_STRING,
	 .offset = R(table),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "target table of the matching records"},
	{.key = "stream",
	 .type = RN_CONF_STRING,
	 .offset = R(stream),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "stream name (the buffer's stream is <source>/<stream>)"},
	{.key = NULL},
};

/* Common keys of a sources entry; the plugin named by `type` adds its own rows. */
static const struct rn_conf_key source_keys[] = {
	{.key = "type",
	 .type = RN_CONF_STRING,
	 .offset = S(type),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "plugin (runnel-agent -H lists them)"},
	{.key = "name",
	 .type = RN_CONF_STRING,
	 .offset = S(name),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "source name (also its stream's name)"},
	{.key = "table",
	 .type = RN_CONF_STRING,
	 .offset = S(table),
	 .flags = RN_CONF_F_REQUIRED,
	 .help = "target table (catalog.schema.table)"},
	{.key = "attributes",
	 .type = RN_CONF_STRLIST,
	 .offset = S(attributes),
	 .help = "static attributes for every record, as \"key=value\" (vehicle id, site)"},
	{.key = "event_time_field",
	 .type = RN_CONF_STRING,
	 .offset = S(event_time_field),
	 .help = "top-level JSON field with the event time (epoch s/ms/us/ns or RFC 3339); "
		 "receive time when absent"},
	{.key = "routes",
	 .type = RN_CONF_LIST,
	 .offset = S(routes),
	 .sub = route_keys,
	 .elem_size = sizeof(struct rn_route_conf),
	 .help = "records whose topic matches go to their own stream and table (first match "
		 "wins)"},
	{.key = "event_time_pattern",
	 .type = RN_CONF_STRING,
	 .offset = S(event_time_pattern),
	 .help = "extended regex for text records; its first group (or the match) is the event "
		 "time: RFC 3339 (no zone = UTC) or epoch; receive time when it does not match"},
	{.key = "backlog_split",
	 .type = RN_CONF_DURATION,
	 .def = "2m",
	 .max = (int64_t)1 << 50,
	 .offset = S(backlog_split_ms),
	 .help = "when the link is up but the stream's oldest unsent chunk is older than this, "
		 "new records go to a new stream (<name>~N, seq continues) so live data is not "
		 "held behind the backlog, which keeps draining in order; 0 = never"},
	{.key = "ttl",
	 .type = RN_CONF_DURATION,
	 .def = "0",
	 .max = (int64_t)1 << 50,
	 .offset = S(ttl_ms),
	 .help = "buffered records older than this are dropped, leaving a tombstone record that "
		 "counts them; 0 = never"},
	{.key = NULL},
};

const struct rn_conf_key rn_agent_conf_table[] = {
	{.key = "agent",
	 .type = RN_CONF_GROUP,
	 .sub = agent_keys,
	 .help = "agent identity and files"},
	{.key = "buffer", .type = RN_CONF_GROUP, .sub = buffer_keys, .help = "the disk buffer"},
	{.key = "uplink",
	 .type = RN_CONF_GROUP,
	 .sub = uplink_keys,
	 .help = "where and how to send"},
	{.key = "chunk",
	 .type = RN_CONF_GROUP,
	 .sub = chunk_keys,
	 .help = "how records are batched"},
	{.key = "sources",
	 .type = RN_CONF_LIST,
	 .offset = A(sources),
	 .sub = source_keys,
	 .elem_size = sizeof(struct rn_source_conf),
	 .tag = "type",
	 .resolve = rn_plugin_conf_resolve,
	 .variant_offset = offsetof(struct rn_source_conf, plugin),
	 .help = "source plugins"},
	{.key = NULL},
};

static int str_same(const char *x, const char *y)
{
	return x == y || (x && y && !strcmp(x, y));
}

/* Whether the values rows `t` stored in x and y are the same (strings by content, lists
 * element by element, variants by table and values). */
static int rows_same(const struct rn_conf_key *t, const char *x, const char *y)
{
	for (; t->key; t++) {
		const char *px = x + t->offset, *py = y + t->offset;
		switch (t->type) {
		case RN_CONF_INT:
		case RN_CONF_SIZE:
		case RN_CONF_DURATION:
			if (*(const int64_t *)(const void *)px !=
			    *(const int64_t *)(const void *)py)
				return 0;
			break;
		case RN_CONF_BOOL:
		case RN_CONF_ENUM:
		case RN_CONF_INT32:
			if (*(const int *)(const void *)px != *(const int *)(const void *)py)
				return 0;
			break;
		case RN_CONF_STRING:
		case RN_CONF_LISTEN:
		case RN_CONF_URL:
			if (!str_same(*(char *const *)(const void *)px,
				      *(char *const *)(const void *)py))
				return 0;
			break;
		case RN_CONF_STRLIST: {
			const struct rn_conf_strlist *lx = (const void *)px, *ly = (const void *)py;
			if (lx->n != ly->n)
				return 0;
			for (size_t i = 0; i < lx->n; i++)
				if (!str_same(lx->v[i], ly->v[i]))
					return 0;
			break;
		}
		case RN_CONF_GROUP:
			if (!rows_same(t->sub, x, y))
				return 0;
			break;
		case RN_CONF_LIST: {
			const struct rn_conf_list *lx = (const void *)px, *ly = (const void *)py;
			if (lx->n != ly->n)
				return 0;
			for (size_t i = 0; i < lx->n; i++) {
				const char *ex = (const char *)lx->items + i * t->elem_size;
				const char *ey = (const char *)ly->items + i * t->elem_size;
				if (!rows_same(t->sub, ex, ey))
					return 0;
				if (t->resolve) {
					const struct rn_conf_variant *vx =
						(const void *)(ex + t->variant_offset);
					const struct rn_conf_variant *vy =
						(const void *)(ey + t->variant_offset);
					if (vx->table != vy->table ||
					    (vx->table &&
					     !rows_same(vx->table, vx->data, vy->data)))
						return 0;
				}
			}
			break;
		}
		}
	}
	return 1;
}

int rn_agent__source_same(const struct rn_source_conf *x, const struct rn_source_conf *y)
{
	if (!rows_same(source_keys, (const char *)x, (const char *)y))
		return 0;
	if (x->plugin.table != y->plugin.table)
		return 0;
	return !x->plugin.table || rows_same(x->plugin.table, (const char *)x->plugin.data,
					     (const char *)y->plugin.data);
}

/* A private key file: it must exist and be readable by its owner only (a key others can
 * read is no longer a secret). Checked at start and by -n, before anything dials. */
static int check_key_file(const char *key, const char *file, char *err, size_t cap)
{
	struct stat sb;
	if (stat(key, &sb)) {
		snprintf(err, cap, "%s: uplink.key_file %s: %s", file, key, strerror(errno));
		return RN_ECONFIG;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, cap,
			 "%s: uplink.key_file %s is readable or writable by group or others (mode "
			 "%03o): chmod 600 %s",
			 file, key, (unsigned)(sb.st_mode & 0777), key);
		return RN_ECONFIG;
	}
	return 0;
}

int rn_agent_conf_check(const struct rn_agent_conf *c, const char *file, char *err, size_t cap)
{
	const struct rn_source_conf *src = c->sources.items;
	/* uplink.url was checked by the loader (RN_CONF_URL, with its line); this is for
	 * structs filled by hand */
	struct rn_url u;
	const char *why = NULL;
	if (rn_addr_parse_url(c->url, &u, &why)) {
		snprintf(err, cap, "%s: uplink.url \"%s\": %s", file, c->url ? c->url : "", why);
		return RN_ECONFIG;
	}
	if (!u.tls && (c->ca_file || c->cert_file || c->key_file || c->pinned_key)) {
		snprintf(err, cap,
			 "%s: uplink.ca_file, cert_file, key_file and pinned_key need an https:// "
			 "url (uplink.url is \"%s\")",
			 file, c->url);
		return RN_ECONFIG;
	}
	if (!c->cert_file != !c->key_file) {
		snprintf(err, cap, "%s: uplink.cert_file and uplink.key_file go together", file);
		return RN_ECONFIG;
	}
	if (c->key_file && check_key_file(c->key_file, file, err, cap))
		return RN_ECONFIG;
	if (c->backoff_min_ms > c->backoff_max_ms) {
		snprintf(err, cap,
			 "%s: uplink.backoff_min_ms (%lld) is larger than uplink.backoff_max_ms "
			 "(%lld)",
			 file, (long long)c->backoff_min_ms, (long long)c->backoff_max_ms);
		return RN_ECONFIG;
	}
	if (c->token && c->token_file) {
		snprintf(err, cap, "%s: uplink.token and uplink.token_file: give one", file);
		return RN_ECONFIG;
	}
	if (!c->client_id != !c->client_secret_file) {
		snprintf(err, cap, "%s: uplink.client_id and uplink.client_secret_file go together",
			 file);
		return RN_ECONFIG;
	}
	if (c->client_id && (c->token || c->token_file)) {
		snprintf(err, cap,
			 "%s: uplink.client_id gets tokens itself: remove uplink.token and "
			 "uplink.token_file",
			 file);
		return RN_ECONFIG;
	}
	/* HTTP Basic cannot carry a ':' in the user id (RFC 7617 2) */
	if (c->client_id && (!*c->client_id || strchr(c->client_id, ':'))) {
		snprintf(err, cap, "%s: uplink.client_id must be non-empty and without ':'", file);
		return RN_ECONFIG;
	}
	if (c->token_url && !c->client_id) {
		snprintf(err, cap, "%s: uplink.token_url is only used with uplink.client_id", file);
		return RN_ECONFIG;
	}
	if (!c->sources.n) {
		snprintf(err, cap, "%s: no sources configured", file);
		return RN_ECONFIG;
	}
	for (size_t i = 0; i < c->sources.n; i++) {
		const struct rn_source_plugin *p = rn_plugin_find(src[i].type);
		if (!src[i].name || !*src[i].name || !src[i].table || !*src[i].table) {
			snprintf(err, cap, "%s: sources[%zu]: name and table are required", file,
				 i);
			return RN_ECONFIG;
		}
		if (!p && !(rn_plugin_unknown_deferred() && c->plugin_dir)) {
			snprintf(err, cap, "%s: sources[%zu] (%s): unknown type '%s'", file, i,
				 src[i].name, src[i].type ? src[i].type : "");
			return RN_ECONFIG;
		}
		if (p && !RN_SOURCE_ABI_LOADABLE(p->abi)) {
			snprintf(err, cap,
				 "%s: sources[%zu]: plugin '%s' was built for plugin ABI %u, "
				 "this agent speaks %u",
				 file, i, p->name, RN_SOURCE_ABI_MAJOR(p->abi),
				 RN_SOURCE_ABI_MAJOR(RN_SOURCE_ABI_CURRENT));
			return RN_ECONFIG;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(src[j].name, src[i].name)) {
				snprintf(err, cap, "%s: sources[%zu]: name '%s' used twice", file,
					 i, src[i].name);
				return RN_ECONFIG;
			}
		if (rn_table_name_check(src[i].table)) {
			snprintf(err, cap, "%s: sources[%zu] (%s): table '%s': %s", file, i,
				 src[i].name, src[i].table, RN_TABLE_NAME_RULE);
			return RN_ECONFIG;
		}
		for (size_t k = 0; k < src[i].attributes.n; k++) {
			const char *kv = src[i].attributes.v[k], *eq = strchr(kv, '=');
			if (!eq || eq == kv) {
				snprintf(err, cap,
					 "%s: sources[%zu] (%s): attribute '%s' is not "
					 "key=value",
					 file, i, src[i].name, kv);
				return RN_ECONFIG;
			}
		}
		const struct rn_route_conf *rt = src[i].routes.items;
		if (src[i].routes.n > ROUTES_MAX - 1) {
			snprintf(err, cap, "%s: sources[%zu] (%s): at most %d routes", file, i,
				 src[i].name, ROUTES_MAX - 1);
			return RN_ECONFIG;
		}
		for (size_t k = 0; k < src[i].routes.n; k++) {
			if (!rn_topic_filter_valid(rt[k].match) || !*rt[k].stream ||
			    !*rt[k].table || strchr(rt[k].stream, '/')) {
				snprintf(err, cap,
					 "%s: sources[%zu] (%s): routes[%zu]: match must be a "
					 "valid filter, stream and table non-empty (no '/' in "
					 "stream)",
					 file, i, src[i].name, k);
				return RN_ECONFIG;
			}
			if (rn_table_name_check(rt[k].table)) {
				snprintf(err, cap,
					 "%s: sources[%zu] (%s): routes[%zu]: table '%s': %s", file,
					 i, src[i].name, k, rt[k].table, RN_TABLE_NAME_RULE);
				return RN_ECONFIG;
			}
			for (size_t j = 0; j < k; j++)
				if (!strcmp(rt[j].stream, rt[k].stream)) {
					snprintf(err, cap,
						 "%s: sources[%zu] (%s): routes[%zu]: stream "
						 "'%s' used twice",
						 file, i, src[i].name, k, rt[k].stream);
					return RN_ECONFIG;
				}
		}
		if (src[i].event_time_pattern) {
			regex_t re;
			int rc = regcomp(&re, src[i].event_time_pattern, REG_EXTENDED);
			if (rc) {
				char e[256];
				regerror(rc, &re, e, sizeof(e));
				snprintf(err, cap, "%s: sources[%zu] (%s): event_time_pattern: %s",
					 file, i, src[i].name, e);
				return RN_ECONFIG;
			}
			regfree(&re);
		}
		if (p && p->check) {
			char e[512];
			if (p->check(&src[i], e, sizeof(e))) {
				snprintf(err, cap, "%s: sources[%zu]: %s", file, i, e);
				return RN_ECONFIG;
			}
		}
	}
	return 0;
}

void rn_agent_conf_digest(struct rn_agent_conf *c, const char *file)
{
	struct rn_sha256 h;
	uint8_t d[32], buf[8192];
	size_t n;
	FILE *f = fopen(file, "rb");
	c->config_sha256[0] = 0;
	if (!f)
		return;
	rn_sha256_init(&h);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		rn_sha256_update(&h, buf, n);
	if (!ferror(f)) {
		rn_sha256_final(&h, d);
		for (int i = 0; i < 32; i++)
			snprintf(c->config_sha256 + 2 * i, 3, "%02x", d[i]);
	}
	fclose(f);
}

int rn_agent_conf_secrets(struct rn_agent_conf *c, const char *file, char *err, size_t cap)
{
	char e[600];
	c->client_secret[0] = 0;
	if (c->client_secret_file &&
	    rn_secret_read("uplink.client_secret_file", c->client_secret_file, c->client_secret,
			   sizeof(c->client_secret), e, sizeof(e))) {
		snprintf(err, cap, "%s: %s", file, e);
		return RN_ECONFIG;
	}
	if (c->token_file) {
		char tok[RN_CONF_HDR_MAX + 1];
		if (rn_secret_read("uplink.token_file", c->token_file, tok, sizeof(tok), e,
				   sizeof(e))) {
			snprintf(err, cap, "%s: %s", file, e);
			return RN_ECONFIG;
		}
		rn_free(c->token);
		c->token = rn_strdup(tok);
		memset(tok, 0, sizeof(tok));
		if (!c->token)
			return RN_ENOMEM;
	}
	return 0;
}
