/*
 * Fuzz target: an agent's health report (docs/protocol.md, field 1001) through the fleet
 * model as the server handles it: validated (server/fleet/health.c), kept for its device,
 * and rendered by every API answer and system table row. The first byte picks a device-less
 * or a second stream; the rest is the report. Checks: a refused report has a reason and a
 * label; a taken one renders as valid JSON (the report, the device page, the lists, the
 * agents row), its strings fit their caps and the reasons stay under theirs.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fleet.h"
#include "rn_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void valid_json(const struct rn_buf *b)
{
	if (!b->len || rn_json_validate((const char *)b->data, b->len))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rn_fleet_health h;
	struct rn_fleet *f = NULL;
	struct rn_fleet_query q;
	struct rn_buf b = {0};
	const char *why;
	size_t n = 0;
	if (!size)
		return 0;
	rn_fleet_health_init(&h);
	if (rn_fleet_create(&f, NULL))
		return 0;
	struct rn_fleet_stream *a = rn_fleet_stream_get(f, "s-a", "t.a");
	struct rn_fleet_stream *c = rn_fleet_stream_get(f, "s-c", "t.c");
	if (!a || !c || rn_fleet_health_parse(&h, data + 1, size - 1))
		goto out;
	if (h.reject != RN_FLEET_OK && (!h.invalid[0] || !rn_fleet_reject_name(h.reject)))
		__builtin_trap();
	if (strlen(h.device) > RN_FLEET_STR_MAX || strlen(h.version) > RN_FLEET_STR_MAX ||
	    strlen(h.invalid) >= RN_FLEET_REASONS_MAX)
		__builtin_trap();
	if (h.reject == RN_FLEET_OK)
		valid_json(&h.json);
	if (rn_fleet_report(f, data[0] & 1 ? c : a, &h, 1800000000000LL))
		goto out;
	if (!rn_fleet_agents_row(a, &h, 1800000000000LL, &b))
		valid_json(&b);
	rn_buf_reset(&b);
	if (h.reject == RN_FLEET_OK && h.device[0]) {
		if (!rn_fleet_render_device(f, h.device, strlen(h.device), 1800000000001LL, &b))
			valid_json(&b);
		rn_buf_reset(&b);
	}
	rn_fleet_query_parse("sort=buffer_bytes", 1, &q, &why);
	if (!rn_fleet_render_devices(f, &q, 1800000000001LL, &b))
		valid_json(&b);
	rn_buf_reset(&b);
	rn_fleet_query_parse(NULL, 0, &q, &why);
	if (!rn_fleet_render_streams(f, &q, 1800000000001LL, &b))
		valid_json(&b);
	rn_buf_reset(&b);
	size_t next = 0;
	while (!rn_fleet_streams_rows(f, 1800000000001LL, &next, 4096, &b, &n) && n)
		;
out:
	rn_buf_free(&b);
	rn_fleet_health_free(&h);
	rn_fleet_destroy(f);
	return 0;
}
