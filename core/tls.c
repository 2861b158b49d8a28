/* TLS: OpenSSL contexts built from the configuration, and the encrypted transport of an sbuf. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "sbuf.h"

#define RECORD_MAX 16384	/* plaintext bytes per TLS record: one SSL_write at a time */
#define IDLE_BUF_MAX 4096	/* the write memory a connection keeps between records */

struct tls_set {
	SSL_CTX *accept_ctx;	/* we are the TLS server, for clients (NULL when client_tls_sslmode is disable) */
	SSL_CTX *connect_ctx;	/* we are the TLS client, for PostgreSQL (NULL when server_tls_sslmode is disable) */
	enum tls_mode client_mode;
	enum tls_mode server_mode;
};

static struct tls_set *g_set;

/* ---- configuration ---- */

static enum tls_mode parse_mode(const char *s)
{
	static const char *const names[] = { "disable", "allow", "prefer", "require", "verify-ca", "verify-full" };

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0)
			return (enum tls_mode)i;
	return TLS_DISABLE;
}

/* The reason of the last OpenSSL error, for messages about files and settings. */
static const char *ssl_reason(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static bool fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* "secure", "all", "tlsv1.2,tlsv1.3": the allowed protocol versions, as OpenSSL's bounds and gaps. */
static bool set_protocols(SSL_CTX *ctx, const char *pfx, const char *value, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		int version;
	} vers[] = { { "tlsv1.0", TLS1_VERSION }, { "tlsv1.1", TLS1_1_VERSION },
		     { "tlsv1.2", TLS1_2_VERSION }, { "tlsv1.3", TLS1_3_VERSION } };
	static const uint64_t no_opt[] = { SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1, SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3 };
	unsigned mask = 0;
	char buf[256], *tok, *save = NULL;
	int lo = -1, hi = -1;

	snprintf(buf, sizeof(buf), "%s", value && value[0] ? value : "secure");
	for (tok = strtok_r(buf, ",: \t", &save); tok; tok = strtok_r(NULL, ",: \t", &save)) {
		size_t i;
		if (strcasecmp(tok, "all") == 0 || strcasecmp(tok, "legacy") == 0) {
			mask |= 0xf;
			continue;
		}
		if (strcasecmp(tok, "secure") == 0 || strcasecmp(tok, "default") == 0) {
			mask |= 0xc;
			continue;
		}
		for (i = 0; i < 4 && strcasecmp(tok, vers[i].name) != 0; i++)
			;
		if (i == 4)
			return fail(err, errlen, "invalid %s_protocols: %s", pfx, value);
		mask |= 1u << i;
	}
	if (!mask)
		return fail(err, errlen, "invalid %s_protocols: %s", pfx, value);
	for (int i = 0; i < 4; i++) {
		if (mask & (1u << i)) {
			if (lo < 0)
				lo = i;
			hi = i;
		}
	}
	if (!SSL_CTX_set_min_proto_version(ctx, vers[lo].version) ||
	    !SSL_CTX_set_max_proto_version(ctx, vers[hi].version))
		return fail(err, errlen, "invalid %s_protocols: %s: %s", pfx, value, ssl_reason());
	for (int i = lo; i <= hi; i++)
		if (!(mask & (1u << i)))
			SSL_CTX_set_options(ctx, no_opt[i]);
	return true;
}

static bool set_ciphers(SSL_CTX *ctx, const char *pfx, const char *ciphers, const char *ciphers13, char *err,
			size_t errlen)
{
	static const char *const system_default[] = { "default", "secure", "fast", "normal" };
	bool keep = !ciphers || !ciphers[0];

	for (size_t i = 0; !keep && i < sizeof(system_default) / sizeof(system_default[0]); i++)
		keep = strcasecmp(ciphers, system_default[i]) == 0;
	if (!keep && !SSL_CTX_set_cipher_list(ctx, strcasecmp(ciphers, "all") == 0 ? "ALL" : ciphers))
		return fail(err, errlen, "invalid %s_ciphers: %s: %s", pfx, ciphers, ssl_reason());
	if (ciphers13 && ciphers13[0] && !SSL_CTX_set_ciphersuites(ctx, ciphers13))
		return fail(err, errlen, "invalid %s13_ciphers: %s: %s", pfx[0] == 'c' ? "client_tls" : "server_tls",
			    ciphers13, ssl_reason());
	return true;
}

/* The certificate and its key; both or neither, unless required. */
static bool set_identity(SSL_CTX *ctx, const char *pfx, const char *key, const char *cert, bool required,
			 const char *mode, char *err, size_t errlen)
{
	bool have_key = key && key[0], have_cert = cert && cert[0];

	if (!have_key && !have_cert && !required)
		return true;
	if (!have_key || !have_cert) {
		if (required)
			return fail(err, errlen, "%s_sslmode = %s needs %s_key_file and %s_cert_file", pfx, mode, pfx,
				    pfx);
		return fail(err, errlen, "%s_%s_file is set without %s_%s_file", pfx, have_key ? "key" : "cert",
			    pfx, have_key ? "cert" : "key");
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return fail(err, errlen, "could not load %s_cert_file %s: %s", pfx, cert, ssl_reason());
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return fail(err, errlen, "could not load %s_key_file %s: %s", pfx, key, ssl_reason());
	if (SSL_CTX_check_private_key(ctx) != 1)
		return fail(err, errlen, "%s_key_file %s does not match %s_cert_file %s", pfx, key, pfx, cert);
	return true;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (!ctx) {
		fail(err, errlen, "could not create a TLS context: %s", ssl_reason());
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* idle connections keep no record buffers */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/*
 * ALPN, as PostgreSQL 17 answers it: "postgresql" when the client offers it, a fatal no_application_protocol
 * alert when it offers only others, nothing when it offers none (libpq before 17 sends no ALPN).
 */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x0apostgresql";
	unsigned char *chosen = NULL;
	(void)ssl;
	(void)arg;

	if (SSL_select_next_proto(&chosen, outlen, ours, sizeof(ours) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
		*out = chosen;
		return SSL_TLSEXT_ERR_OK;
	}
	return inlen ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *build_accept(const struct config *cfg, enum tls_mode mode, char *err, size_t errlen)
{
	SSL_CTX *ctx = new_ctx(TLS_server_method(), err, errlen);
	const char *ca = cfg->client_tls_ca_file;
	const char *dh = cfg->client_tls_dheparams && cfg->client_tls_dheparams[0] ? cfg->client_tls_dheparams
										   : "auto";
	const char *curve = cfg->client_tls_ecdhcurve && cfg->client_tls_ecdhcurve[0] ? cfg->client_tls_ecdhcurve
											 : "auto";

	if (!ctx)
		return NULL;
	if (!set_protocols(ctx, "client_tls", cfg->client_tls_protocols, err, errlen) ||
	    !set_ciphers(ctx, "client_tls", cfg->client_tls_ciphers, cfg->client_tls13_ciphers, err, errlen) ||
	    !set_identity(ctx, "client_tls", cfg->client_tls_key_file, cfg->client_tls_cert_file, true,
			  cfg->client_tls_sslmode, err, errlen))
		goto bad;
	if (strcasecmp(dh, "auto") == 0 || strcasecmp(dh, "legacy") == 0) {
		SSL_CTX_set_dh_auto(ctx, 1);
	} else if (strcasecmp(dh, "none") != 0) {
		fail(err, errlen, "invalid client_tls_dheparams: %s", dh);
		goto bad;
	}
	if (strcasecmp(curve, "none") == 0) {
		/* no elliptic curves: key exchange with finite-field groups only */
		if (!SSL_CTX_set1_groups_list(ctx, "ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192")) {
			fail(err, errlen, "invalid client_tls_ecdhcurve: %s: %s", curve, ssl_reason());
			goto bad;
		}
	} else if (strcasecmp(curve, "auto") != 0 && !SSL_CTX_set1_groups_list(ctx, curve)) {
		fail(err, errlen, "invalid client_tls_ecdhcurve: %s: %s", curve, ssl_reason());
		goto bad;
	}
	if (mode >= TLS_VERIFY_CA && (!ca || !ca[0])) {
		fail(err, errlen, "client_tls_sslmode = %s needs client_tls_ca_file", cfg->client_tls_sslmode);
		goto bad;
	}
	if (ca && ca[0]) {
		STACK_OF(X509_NAME) *names;
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			fail(err, errlen, "could not load client_tls_ca_file %s: %s", ca, ssl_reason());
			goto bad;
		}
		names = SSL_load_client_CA_file(ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	/* below verify-ca a certificate is asked for, not required, when there is a CA to check it (auth cert) */
	SSL_CTX_set_verify(ctx, mode >= TLS_VERIFY_CA ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
			   : ca && ca[0]	  ? SSL_VERIFY_PEER
						  : SSL_VERIFY_NONE,
			   NULL);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	/* clients of a pooler do not resume sessions: no tickets to write after each handshake */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
bad:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *build_connect(const struct config *cfg, enum tls_mode mode, char *err, size_t errlen)
{
	SSL_CTX *ctx = new_ctx(TLS_client_method(), err, errlen);
	const char *ca = cfg->server_tls_ca_file;

	if (!ctx)
		return NULL;
	if (!set_protocols(ctx, "server_tls", cfg->server_tls_protocols, err, errlen) ||
	    !set_ciphers(ctx, "server_tls", cfg->server_tls_ciphers, cfg->server_tls13_ciphers, err, errlen) ||
	    !set_identity(ctx, "server_tls", cfg->server_tls_key_file, cfg->server_tls_cert_file, false,
			  cfg->server_tls_sslmode, err, errlen))
		goto bad;
	if (ca && ca[0]) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			fail(err, errlen, "could not load server_tls_ca_file %s: %s", ca, ssl_reason());
			goto bad;
		}
	} else if (mode >= TLS_VERIFY_CA && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		fail(err, errlen, "server_tls_sslmode = %s: no server_tls_ca_file and no system CA store: %s",
		     cfg->server_tls_sslmode, ssl_reason());
		goto bad;
	}
	SSL_CTX_set_verify(ctx, mode >= TLS_VERIFY_CA ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ctx;
bad:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_set *tls_build(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_set *set = calloc(1, sizeof(*set));

	if (!set) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	set->client_mode = parse_mode(cfg->client_tls_sslmode);
	set->server_mode = parse_mode(cfg->server_tls_sslmode);
	if (set->client_mode != TLS_DISABLE &&
	    !(set->accept_ctx = build_accept(cfg, set->client_mode, err, errlen)))
		goto bad;
	if (set->server_mode != TLS_DISABLE &&
	    !(set->connect_ctx = build_connect(cfg, set->server_mode, err, errlen)))
		goto bad;
	return set;
bad:
	tls_free(set);
	return NULL;
}

static bool same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

bool tls_server_settings_differ(const struct config *a, const struct config *b)
{
	return !same(a->server_tls_sslmode, b->server_tls_sslmode) ||
	       !same(a->server_tls_ca_file, b->server_tls_ca_file) ||
	       !same(a->server_tls_key_file, b->server_tls_key_file) ||
	       !same(a->server_tls_cert_file, b->server_tls_cert_file) ||
	       !same(a->server_tls_protocols, b->server_tls_protocols) ||
	       !same(a->server_tls_ciphers, b->server_tls_ciphers) ||
	       !same(a->server_tls13_ciphers, b->server_tls13_ciphers);
}

void tls_free(struct tls_set *set)
{
	if (!set)
		return;
	SSL_CTX_free(set->accept_ctx);	/* connections hold their own reference */
	SSL_CTX_free(set->connect_ctx);
	free(set);
}

void tls_install(struct tls_set *set)
{
	tls_free(g_set);
	g_set = set;
}

void tls_shutdown(void)
{
	tls_install(NULL);
}

enum tls_mode tls_client_mode(void)
{
	return g_set ? g_set->client_mode : TLS_DISABLE;
}

enum tls_mode tls_server_mode(void)
{
	return g_set ? g_set->server_mode : TLS_DISABLE;
}

/* ---- the transport ---- */

/*
 * OpenSSL reads records straight from the socket, and writes them into a memory BIO that we send from: an
 * SSL_write then never has to be repeated with the same bytes, which the sbuf cannot promise (the bytes it
 * offers a blocked socket may be dropped or come from another source), and at most one record waits.
 */
static SSL *ssl_of(const struct sbuf *sb)
{
	return sb->xport_state;
}

/* Drop n bytes from the front of the memory BIO (those the kernel took). */
static void consume(BIO *w, size_t n)
{
	char tmp[4096];

	while (n > 0) {
		int k = BIO_read(w, tmp, n < sizeof(tmp) ? (int)n : (int)sizeof(tmp));
		if (k <= 0)
			break;
		n -= (size_t)k;
	}
}

/* Send the records OpenSSL wrote. True when all are on the socket; false with errno (EAGAIN: later). */
static bool flush_records(struct sbuf *sb)
{
	BIO *w = SSL_get_wbio(ssl_of(sb));
	char *p = NULL;
	long len = BIO_get_mem_data(w, &p);
	size_t sent = 0;

	while (len > 0 && sent < (size_t)len) {
		ssize_t n = send(sb->fd, p + sent, (size_t)len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		{
			int e = n < 0 ? errno : EPIPE;
			consume(w, sent);
			errno = e;
		}
		return false;
	}
	if (len > 0) {
		BUF_MEM *bm = NULL;
		BIO *fresh;
		/* an idle connection keeps no record-sized buffer: one that held a large record is replaced */
		if (BIO_get_mem_ptr(w, &bm) == 1 && bm && bm->max > IDLE_BUF_MAX &&
		    (fresh = BIO_new(BIO_s_mem())) != NULL)
			SSL_set0_wbio(ssl_of(sb), fresh);	/* frees w */
		else
			(void)BIO_reset(w);
	}
	return true;
}

static char g_error[256];

/* Why an OpenSSL call failed, for the owner's log line. */
static const char *describe_error(SSL *ssl, int code, int sys_errno)
{
	long vr = SSL_get_verify_result(ssl);
	unsigned long e;

	if (vr != X509_V_OK) {
		snprintf(g_error, sizeof(g_error), "certificate verify failed: %s", X509_verify_cert_error_string(vr));
	} else if ((e = ERR_peek_last_error()) != 0) {
		const char *r = ERR_reason_error_string(e);
		snprintf(g_error, sizeof(g_error), "%s", r ? r : "TLS error");
	} else if (code == SSL_ERROR_SYSCALL || code == SSL_ERROR_ZERO_RETURN) {
		snprintf(g_error, sizeof(g_error), "%s",
			 sys_errno ? strerror(sys_errno) : "the peer closed the connection");
	} else {
		snprintf(g_error, sizeof(g_error), "TLS error %d", code);
	}
	ERR_clear_error();
	return g_error;
}

static ssize_t tls_read(struct sbuf *sb, void *buf, size_t len)
{
	SSL *ssl = ssl_of(sb);
	int n, code, sys_errno;

	ERR_clear_error();
	n = SSL_read(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	code = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n);
	sys_errno = errno;
	/* a read can make OpenSSL answer (an alert, a key update): it leaves with the next write event */
	(void)flush_records(sb);
	if (n > 0)
		return n;
	switch (code) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!sys_errno)
			return 0;
		errno = sys_errno;
		return -1;
	default:
		log_debug("TLS read failed: %s", describe_error(ssl, code, sys_errno));
		errno = EPROTO;
		return -1;
	}
}

static ssize_t tls_write(struct sbuf *sb, const struct iovec *iov, int iovcnt)
{
	static uint8_t joined[RECORD_MAX];
	struct iovec one;
	SSL *ssl = ssl_of(sb);
	size_t total = 0, sum = 0;

	if (!flush_records(sb))
		return -1;
	for (int i = 0; i < iovcnt; i++)
		sum += iov[i].iov_len;
	if (iovcnt > 1 && sum <= sizeof(joined)) {
		/* generated and relayed bytes in one record, as the plain path sends them in one call */
		for (int i = 0; i < iovcnt; i++) {
			memcpy(joined + total, iov[i].iov_base, iov[i].iov_len);
			total += iov[i].iov_len;
		}
		one.iov_base = joined;
		one.iov_len = sum;
		iov = &one;
		iovcnt = 1;
		total = 0;
	}
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t off = 0;
		while (off < iov[i].iov_len) {
			size_t chunk = iov[i].iov_len - off < RECORD_MAX ? iov[i].iov_len - off : RECORD_MAX;
			int n;
			ERR_clear_error();
			n = SSL_write(ssl, p + off, (int)chunk);
			if (n <= 0) {
				log_debug("TLS write failed: %s", describe_error(ssl, SSL_get_error(ssl, n), errno));
				if (total)
					return (ssize_t)total;
				errno = EPROTO;
				return -1;
			}
			off += (size_t)n;
			total += (size_t)n;
			/* the record waits in memory until the kernel takes it: the next call flushes it first */
			if (!flush_records(sb))
				return (ssize_t)total;
		}
	}
	return (ssize_t)total;
}

static bool tls_input_waiting(const struct sbuf *sb)
{
	return SSL_pending(ssl_of(sb)) > 0;
}

static bool tls_output_waiting(const struct sbuf *sb)
{
	return BIO_ctrl_pending(SSL_get_wbio(ssl_of(sb))) > 0;
}

static int tls_handshake(struct sbuf *sb, const char **error)
{
	SSL *ssl = ssl_of(sb);
	int r, code, sys_errno;

	ERR_clear_error();
	r = SSL_do_handshake(ssl);
	code = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
	sys_errno = errno;
	if (!flush_records(sb) && errno != EAGAIN && errno != EWOULDBLOCK) {
		snprintf(g_error, sizeof(g_error), "%s", strerror(errno));
		*error = g_error;
		return -1;
	}
	if (r == 1)
		return 1;
	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
		return 0;
	*error = describe_error(ssl, code, sys_errno);
	return -1;
}

static void tls_close(struct sbuf *sb)
{
	SSL *ssl = ssl_of(sb);

	if (!ssl)
		return;
	if (SSL_is_init_finished(ssl)) {
		/* close_notify, if the socket takes it now */
		ERR_clear_error();
		(void)SSL_shutdown(ssl);
		(void)flush_records(sb);
	}
	ERR_clear_error();
	SSL_free(ssl);
	sb->xport_state = NULL;
}

static const struct sbuf_transport tls_transport = {
	.read = tls_read,
	.write = tls_write,
	.input_waiting = tls_input_waiting,
	.output_waiting = tls_output_waiting,
	.handshake = tls_handshake,
	.close = tls_close,
};

/* An SSL on the socket: records read from it directly, written through memory (see above). */
static SSL *new_ssl(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);
	BIO *r, *w;

	if (!ssl)
		return NULL;
	r = BIO_new_socket(fd, BIO_NOCLOSE);
	w = BIO_new(BIO_s_mem());
	if (!r || !w) {
		BIO_free(r);
		BIO_free(w);
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_bio(ssl, r, w);
	return ssl;
}

static bool start(struct sbuf *sb, SSL *ssl)
{
	if (!ssl)
		return false;
	if (!sbuf_start_transport(sb, &tls_transport, ssl)) {
		SSL_free(ssl);
		return false;
	}
	return true;
}

bool tls_accept(struct sbuf *sb)
{
	SSL *ssl;

	if (!g_set || !g_set->accept_ctx)
		return false;
	ssl = new_ssl(g_set->accept_ctx, sb->fd);
	if (ssl)
		SSL_set_accept_state(ssl);
	return start(sb, ssl);
}

bool tls_connect(struct sbuf *sb, const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool is_ip;
	SSL *ssl;

	if (!g_set || !g_set->connect_ctx)
		return false;
	ssl = new_ssl(g_set->connect_ctx, sb->fd);
	if (!ssl)
		return false;
	SSL_set_connect_state(ssl);
	is_ip = host && (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1);
	if (host && host[0] && !is_ip)
		(void)SSL_set_tlsext_host_name(ssl, host);
	if (g_set->server_mode == TLS_VERIFY_FULL) {
		bool ok = host && host[0] &&
			  (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
				 : SSL_set1_host(ssl, host) == 1);
		if (!ok) {
			SSL_free(ssl);
			return false;
		}
	}
	return start(sb, ssl);
}

bool tls_active(const struct sbuf *sb)
{
	return sb->xport == &tls_transport;
}

const char *tls_describe(const struct sbuf *sb, char *buf, size_t len)
{
	SSL *ssl;
	const char *group = NULL;
	int nid;

	if (!len)
		return buf;
	buf[0] = '\0';
	if (sb->xport != &tls_transport || !(ssl = ssl_of(sb)) || !SSL_is_init_finished(ssl))
		return buf;
	nid = SSL_get_negotiated_group(ssl);
	if (nid != NID_undef && !(nid & TLSEXT_nid_unknown))
		group = OBJ_nid2sn(nid);
	if (group)
		snprintf(buf, len, "%s/%s/%s=%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
			 strncmp(group, "ffdhe", 5) == 0 ? "DH" : "ECDH", group);
	else
		snprintf(buf, len, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	return buf;
}

/* The peer's certificate, if it sent one and the handshake verified it against the CA. */
static X509 *verified_peer_cert(const struct sbuf *sb)
{
	SSL *ssl;
	X509 *cert;

	if (sb->xport != &tls_transport || !(ssl = ssl_of(sb)) || !SSL_is_init_finished(ssl))
		return NULL;
	cert = SSL_get0_peer_certificate(ssl);
	return cert && SSL_get_verify_result(ssl) == X509_V_OK ? cert : NULL;
}

bool tls_peer_cert_verified(const struct sbuf *sb)
{
	return verified_peer_cert(sb) != NULL;
}

bool tls_peer_cert_names(const struct sbuf *sb, const char *name)
{
	X509 *cert = verified_peer_cert(sb);

	/* as a host name is checked: the DNS names of subjectAltName, else the CommonName; no wildcards */
	return cert && name[0] && X509_check_host(cert, name, strlen(name), X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}
