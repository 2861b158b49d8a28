/* Entry point: command line, start-up, signals, reload and shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "admin.h"
#include "authfile.h"
#include "authquery.h"
#include "hba.h"
#include "client.h"
#include "client_login.h"
#include "client_relay.h"
#include "config.h"
#include "control.h"
#include "dns.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "pool.h"
#include "runtime.h"
#include "sbuf.h"
#include "server.h"
#include "stats.h"
#include "tenant.h"
#include "tls.h"

#include "version.h"
#define JANITOR_PERIOD_MS 100

static const char *g_config_path;
static char *g_pidfile;
static int g_verbose;
static bool g_quiet;

static void usage(FILE *out)
{
	fprintf(out,
		"moonbouncer " MOONBOUNCER_VERSION ": a PostgreSQL connection pooler programmable in Lua\n\n"
		"Usage: moonbouncer [OPTION]... CONFIG.ini\n\n"
		"  -d, --daemon    run in the background\n"
		"  -v, --verbose   more log output (repeat for more)\n"
		"  -q, --quiet     no log output on stderr\n"
		"  -u, --user=U    switch to OS user U after opening the listening sockets\n"
		"      --check     validate the configuration and exit (0 if valid, 1 if not)\n"
		"  -V, --version   print the version and exit\n"
		"  -h, --help      print this help and exit\n");
}

/* Load the config, the auth_file and (auth_type = hba) the hba and ident files it names; all or none. */
static bool load_all(struct config **cfg_out, struct authfile **auth_out, struct hba **hba_out)
{
	char err[512];
	struct config *cfg = config_load(g_config_path, err, sizeof(err));
	struct authfile *auth;
	struct hba *hba = NULL;

	if (!cfg) {
		log_error("%s", err);
		return false;
	}
	auth = authfile_load(cfg->auth_file, err, sizeof(err));
	if (!auth) {
		log_error("%s", err);
		config_free(cfg);
		return false;
	}
	if (cfg->auth_type == AUTH_TYPE_HBA &&
	    !(hba = hba_load(cfg->auth_hba_file, cfg->auth_ident_file, err, sizeof(err)))) {
		log_error("%s", err);
		authfile_free(auth);
		config_free(cfg);
		return false;
	}
	*cfg_out = cfg;
	*auth_out = auth;
	*hba_out = hba;
	return true;
}

static bool g_check;	/* --check: the log file is appended to only if it exists */

static void apply_logging(const struct config *cfg)
{
	int verbose = g_verbose > cfg->verbose ? g_verbose : cfg->verbose;
	log_setup(verbose, g_quiet);
	log_set_syslog(cfg->syslog, cfg->syslog_ident, cfg->syslog_facility);
	if (cfg->logfile && cfg->logfile[0] && !log_open_file_mode(cfg->logfile, !g_check) &&
	    !(g_check && errno == ENOENT))
		log_error("could not open log file %s: %s", cfg->logfile, strerror(errno));
}

static void log_change(void *arg, const char *key, const char *before, const char *after)
{
	(void)arg;
	if (strstr(key, "password") || strstr(key, "secret"))
		log_info("reload: %s changed", key);
	else
		log_info("reload: %s: '%s' -> '%s'", key, before, after);
}

static bool reload(void)
{
	struct config *cfg, *old = rt.cfg;
	struct authfile *auth, *old_auth = rt.auth;
	struct hba *hba, *old_hba = rt.hba;

	log_info("reloading configuration from %s", g_config_path);
	if (!load_all(&cfg, &auth, &hba)) {
		log_error("reload failed: keeping the previous configuration");
		return false;
	}
	if ((old->listen_addr && cfg->listen_addr && strcmp(old->listen_addr, cfg->listen_addr) != 0) ||
	    old->listen_port != cfg->listen_port)
		log_warning("listen_addr and listen_port changes take effect after a restart");
	{
		char err[512];
		/* key and certificate files are read again: renewed certificates apply to new connections */
		struct tls_set *tls = tls_build(cfg, err, sizeof(err));
		if (!tls) {
			log_error("reload failed: %s: keeping the previous configuration and TLS settings", err);
			config_free(cfg);
			authfile_free(auth);
			hba_free(hba);
			return false;
		}
		if (!policy_reload(cfg, err, sizeof(err))) {
			log_error("reload failed: %s: keeping the previous configuration and policies", err);
			tls_free(tls);
			config_free(cfg);
			authfile_free(auth);
			hba_free(hba);
			return false;
		}
		tls_install(tls);
	}
	config_diff(old, cfg, log_change, NULL);
	rt.cfg = cfg;
	rt.auth = auth;
	rt.hba = hba;
	apply_logging(cfg);
	sbuf_module_set_bufsize((uint32_t)cfg->pkt_buf);
	dns_reconfigure(cfg);
	listener_reconfigure(cfg);
	metrics_reconfigure(cfg->metrics_listen);
	pool_reconfigure();
	authq_reconfigure();
	if (tls_server_settings_differ(old, cfg)) {
		log_info("server TLS settings changed: server connections are made anew");
		pool_reconnect_all("server TLS settings changed");
	}
	config_free(old);
	authfile_free(old_auth);
	hba_free(old_hba);
	log_info("configuration reloaded");
	return true;
}

/*
 * SIGQUIT ends the process at once, whatever the loop is doing (a policy stuck in a C library call
 * included): a plain handler, not a loop event. It only removes the pidfile and the unix socket file; the
 * kernel closes every socket.
 */
static void on_sigquit(int sig)
{
	(void)sig;
	log_signal_safe("got SIGQUIT, fast exit");
	if (g_pidfile)
		unlink(g_pidfile);
	listener_unlink_unix_now();
	_exit(0);
}

/* SIGINT and SIGTERM: the TCP listeners close at once (the unix socket stays), as in PgBouncer 1.25. */
static void start_shutdown(enum shutdown_mode mode)
{
	rt.shutdown = mode;
	listener_close_tcp();
	metrics_stop();
	if (mode == SHUTDOWN_WAIT_SERVERS) {
		client_shutdown_waiting();
		pool_close_idle();
	}
	rt_check_shutdown();
}

/* The console's SHUTDOWN: SHUTDOWN_NONE ends the loop at once. */
static void console_shutdown(enum shutdown_mode mode)
{
	if (mode == SHUTDOWN_NONE)
		event_base_loopbreak(rt.base);
	else
		start_shutdown(mode);
}

static void console_resume(void)
{
	pool_resume_all();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGHUP:
		(void)reload();
		break;
	case SIGINT:
		if (rt.shutdown != SHUTDOWN_NONE) {
			log_info("got SIGINT while shutting down, fast exit");
			event_base_loopbreak(rt.base);
			break;
		}
		log_info("got SIGINT, shutting down, waiting for all servers connections to be released");
		start_shutdown(SHUTDOWN_WAIT_SERVERS);
		break;
	case SIGTERM:
		if (rt.shutdown != SHUTDOWN_NONE) {
			log_info("got SIGTERM while shutting down, fast exit");
			event_base_loopbreak(rt.base);
			break;
		}
		log_info("got SIGTERM, shutting down, waiting for all clients disconnect");
		start_shutdown(SHUTDOWN_WAIT_CLIENTS);
		break;
	case SIGUSR1:
		log_info("got SIGUSR1, pausing: transactions wait for SIGUSR2 (or query_wait_timeout)");
		rt.paused = true;
		break;
	case SIGUSR2:
		if (rt.shutdown != SHUTDOWN_NONE) {
			log_info("got SIGUSR2 while shutting down, ignoring");
			break;
		}
		log_info("got SIGUSR2, resuming");
		rt.paused = false;
		control_resume_all_dbs();
		pool_resume_all();
		break;
	}
}

/* Closed clients and servers are freed here, after every callback that might still look at them returned. */
static void reap_closed(void)
{
	client_free_closed();
	server_free_closed();
}

static void on_janitor(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	client_janitor();
	tenant_janitor();
	admin_janitor();
	pool_open_forced();
	struct list *it, *tmp;
	LIST_FOREACH_SAFE(it, tmp, pool_list()) {
		pool_janitor(container_of(it, struct pool, head));
	}
	rt_reap_now();
	rt_check_shutdown();
}

static bool drop_privileges(const char *user)
{
	struct passwd *pw;

	if (!user || !user[0])
		return true;
	pw = getpwnam(user);
	if (!pw) {
		log_error("unknown user \"%s\"", user);
		return false;
	}
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
		return true;
	if (setgid(pw->pw_gid) < 0 || initgroups(pw->pw_name, pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("could not switch to user \"%s\": %s", user, strerror(errno));
		return false;
	}
	return true;
}

static bool daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		log_error("fork failed: %s", strerror(errno));
		return false;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		return false;
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	log_detach_stderr();
	return true;
}

static bool write_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	if (!path || !path[0])
		return true;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		log_error("could not write pidfile %s: %s", path, strerror(errno));
		return false;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		log_error("could not write pidfile %s: %s", path, strerror(errno));
		close(fd);
		return false;
	}
	close(fd);
	g_pidfile = strdup(path);
	return true;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "daemon", no_argument, NULL, 'd' }, { "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },  { "user", required_argument, NULL, 'u' },
		{ "check", no_argument, NULL, 'C' },  { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },   { NULL, 0, NULL, 0 },
	};
	bool daemon = false, check = false;
	const char *user_opt = NULL, *user;
	static const int sigs[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2 };
	enum { N_SIGS = sizeof(sigs) / sizeof(sigs[0]) };
	struct event *sig_ev[N_SIGS], *janitor;
	struct timeval period = { 0, JANITOR_PERIOD_MS * 1000 };
	static const struct rt_hooks rt_hooks = { .reap = reap_closed, .servers_in_use = pool_servers_in_use };
	struct event_base *base;
	char err[512];
	int opt;

	while ((opt = getopt_long(argc, argv, "dvqu:Vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'd': daemon = true; break;
		case 'v': g_verbose++; break;
		case 'q': g_quiet = true; break;
		case 'u': user_opt = optarg; break;
		case 'C': check = g_check = true; break;
		case 'V': printf("moonbouncer " MOONBOUNCER_VERSION "\n"); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 1;
	}
	g_config_path = argv[optind];
	log_setup(g_verbose, g_quiet);
	if (!load_all(&rt.cfg, &rt.auth, &rt.hba))
		return 1;
	apply_logging(rt.cfg);	/* from here on, start-up and --check messages reach logfile too */
	{
		struct tls_set *tls = tls_build(rt.cfg, err, sizeof(err));
		if (!tls) {
			log_error("%s", err);
			if (check)
				fprintf(stderr, "%s: %s\n", g_config_path, err);
			return 1;
		}
		tls_install(tls);
	}
	if (!policy_load(rt.cfg, err, sizeof(err))) {
		log_error("%s", err);
		if (check)
			fprintf(stderr, "%s: %s\n", g_config_path, err);
		return 1;
	}
	if (check) {
		policy_shutdown();
		tls_shutdown();
		printf("%s: configuration is valid\n", g_config_path);
		config_free(rt.cfg);
		authfile_free(rt.auth);
		hba_free(rt.hba);
		return 0;
	}
	user = user_opt ? user_opt : rt.cfg->user;
	if (geteuid() == 0 && (!user || !user[0])) {
		log_error("moonbouncer should not run as root: set \"user\" in the config or use -u");
		return 1;
	}
	apply_logging(rt.cfg);
	signal(SIGPIPE, SIG_IGN);

	base = event_base_new();
	if (!base || !rt_start(base, &rt_hooks)) {
		log_error("could not create the event loop");
		return 1;
	}
	sbuf_module_init(rt.base, (uint32_t)rt.cfg->pkt_buf);
	if (!listener_open_all(rt.base, rt.cfg, client_accept, NULL, err, sizeof(err)) ||
	    !metrics_start(rt.base, rt.cfg->metrics_listen, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	if (!drop_privileges(user))
		return 1;
	if (daemon && !daemonize())
		return 1;
	/* evdns after fork: its sockets belong to the process that runs the loop */
	dns_init(rt.base, rt.cfg);
	if (!write_pidfile(rt.cfg->pidfile))
		return 1;

	for (int i = 0; i < N_SIGS; i++) {
		sig_ev[i] = evsignal_new(rt.base, sigs[i], on_signal, NULL);
		event_add(sig_ev[i], NULL);
	}
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigquit;
		sigfillset(&sa.sa_mask);
		sigaction(SIGQUIT, &sa, NULL);
	}
	{
		static const struct admin_hooks admin_hooks = {
			.reload = reload,
			.shutdown = console_shutdown,
			.resume = console_resume,
		};
		admin_init(&admin_hooks);
	}
	janitor = event_new(rt.base, -1, EV_PERSIST, on_janitor, NULL);
	event_add(janitor, &period);
	if (!stats_start(rt.base)) {
		log_error("could not start the stats_period timer");
		return 1;
	}
	log_info("moonbouncer " MOONBOUNCER_VERSION " started, pid %d", (int)getpid());

	event_base_dispatch(rt.base);

	log_info("shutting down");
	rt.exiting = true;
	listener_close_all();
	metrics_stop();
	client_close_all("server shutting down");
	pool_close_all();
	client_free_closed();
	server_free_closed();
	pool_free_all();
	tenant_free_all();
	control_free();
	policy_shutdown();
	for (int i = 0; i < N_SIGS; i++)
		event_free(sig_ev[i]);
	event_free(janitor);
	stats_stop();
	rt_stop();
	dns_shutdown();
	sbuf_module_shutdown();
	tls_shutdown();
	event_base_free(rt.base);
	if (g_pidfile) {
		unlink(g_pidfile);
		free(g_pidfile);
	}
	config_free(rt.cfg);
	authfile_free(rt.auth);
	hba_free(rt.hba);
	return 0;
}
