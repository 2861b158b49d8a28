/* TLS: OpenSSL contexts built from the configuration, and the encrypted transport of an sbuf. */
#ifndef MB_TLS_H
#define MB_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct sbuf;

/* client_tls_sslmode / server_tls_sslmode, in increasing strictness (compared with < and >=). */
enum tls_mode {
	TLS_DISABLE,
	TLS_ALLOW,
	TLS_PREFER,
	TLS_REQUIRE,
	TLS_VERIFY_CA,
	TLS_VERIFY_FULL,
};

/* Both sides' contexts, built from one configuration. */
struct tls_set;

/*
 * Build the contexts the configuration asks for, reading every key, certificate and CA file now. NULL with
 * the reason in err when a mode needs a file that is missing or unusable, or a TLS setting is invalid.
 */
struct tls_set *tls_build(const struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Put a built set in force (the previous one is freed; connections keep what they started with). */
void tls_install(struct tls_set *set);
void tls_free(struct tls_set *set);
void tls_shutdown(void);

/* A server_tls_* setting differs: server connections made under a should be made anew. */
bool tls_server_settings_differ(const struct config *a, const struct config *b);

enum tls_mode tls_client_mode(void);
enum tls_mode tls_server_mode(void);

/*
 * Switch an accepted client socket to TLS and start the handshake (the 'S' queued for it goes out in plain
 * first). The sbuf's on_tls reports the end of the handshake. False if TLS could not be set up.
 */
bool tls_accept(struct sbuf *sb) __attribute__((warn_unused_result));
/* The same for a server connection, host being the name or address verify-full checks the certificate for. */
bool tls_connect(struct sbuf *sb, const char *host) __attribute__((warn_unused_result));

/* The socket speaks TLS (its handshake may still run). */
bool tls_active(const struct sbuf *sb);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519" for a TLS socket, "" for a plain one. */
const char *tls_describe(const struct sbuf *sb, char *buf, size_t len);
/* auth_type cert: the client sent a certificate that verified against client_tls_ca_file... */
bool tls_peer_cert_verified(const struct sbuf *sb);
/* ... and it names this user (subjectAltName DNS names, else the CommonName, matched exactly). */
bool tls_peer_cert_names(const struct sbuf *sb, const char *name);

#endif
