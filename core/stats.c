/* Traffic statistics per pool: totals, averages over stats_period, and the SHOW views made of them. */
#include "stats.h"

#include "view.h"

struct view *stats_view_stats(void)
{
	return view_new("sNNNNNNNNNNNNNNNNNNNNNNNN", "database", "total_server_assignment_count", "total_xact_count",
			"total_query_count", "total_received", "total_sent", "total_xact_time", "total_query_time",
			"total_wait_time", "total_client_parse_count", "total_server_parse_count", "total_bind_count",
			"total_client_login_count", "avg_server_assignment_count", "avg_xact_count", "avg_query_count",
			"avg_recv", "avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time",
			"avg_client_parse_count", "avg_server_parse_count", "avg_bind_count", "avg_client_login_count");
}

struct view *stats_view_totals(void)
{
	return view_new("sNNNNNNNNNNNN", "database", "server_assignment_count", "xact_count", "query_count",
			"bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
			"server_parse_count", "bind_count", "client_login_count");
}

struct view *stats_view_averages(void)
{
	return view_new("sNNNNNNNNNNNN", "database", "server_assignment_count", "xact_count", "query_count",
			"bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
			"avg_client_parse_count", "avg_server_parse_count", "avg_bind_count", "avg_client_login_count");
}

struct view *stats_view_totals_list(void)
{
	return view_new("sN", "name", "value");
}
