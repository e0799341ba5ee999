/*
 * The fleet system tables runnel.fleet.agents and runnel.fleet.streams (docs/operations.md
 * "Fleet health"). Loop thread only.
 */
#include "server_int.h"

void rn_server__fleet_tables_tick(struct rn_server *s)
{
	(void)s;
}

void rn_server__fleet_agents_row(struct rn_server *s, const struct rn_fleet_stream *fl,
				 int64_t now_ms)
{
	(void)s;
	(void)fl;
	(void)now_ms;
}
