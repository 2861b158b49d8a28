/* Unit tests of the small shared modules: the hash, the monotonic clock, error buffers. */
#include <string.h>

#include "clock.h"
#include "errbuf.h"
#include "hash.h"
#include "unit.h"

static void test_hash(void)
{
	/* the published FNV-1a 32-bit test vectors */
	UNIT_EQ_INT(hash_bytes("", 0), 0x811c9dc5u, "hash: empty");
	UNIT_EQ_INT(hash_bytes("a", 1), 0xe40c292cu, "hash: a");
	UNIT_EQ_INT(hash_bytes("foobar", 6), 0xbf9cf968u, "hash: foobar");
	UNIT_EQ_INT(hash_str("foobar"), 0xbf9cf968u, "hash: a C string hashes as its bytes");
	UNIT_EQ_INT(hash_bytes("foo\0bar", 7) != hash_str("foo"), 1, "hash: bytes past a zero byte count");
	UNIT_EQ_INT(hash_str_lower("FooBAR"), hash_str("foobar"),
		    "hash: case-insensitive variant folds ASCII");
	UNIT_CHECK(hash_str("FooBAR") != hash_str("foobar"), "hash: the plain one does not fold");
	UNIT_CHECK(hash_bytes64("", 0) == 0xcbf29ce484222325ull, "hash64: empty");
	UNIT_CHECK(hash_bytes64("a", 1) == 0xaf63dc4c8601ec8cull, "hash64: a");
	UNIT_CHECK(hash_bytes64("foobar", 6) == 0x85944171f73967e8ull, "hash64: foobar");
}

static void test_clock(void)
{
	double a = clock_now(), b = clock_now();
	long long n1 = clock_now_ns(), n2 = clock_now_ns();

	UNIT_CHECK(a > 0 && b >= a, "clock: seconds never go back");
	UNIT_CHECK(n1 > 0 && n2 >= n1, "clock: nanoseconds never go back");
	UNIT_CHECK((double)n1 / 1e9 >= a && (double)n1 / 1e9 - a < 10, "clock: both read the same clock");
}

static void test_errbuf(void)
{
	char err[8];

	errbuf_set(err, sizeof(err), "%s %d", "abc", 42);
	UNIT_EQ_STR(err, "abc 42", "errbuf: formats");
	errbuf_set(err, sizeof(err), "%s", "a long message");
	UNIT_EQ_STR(err, "a long ", "errbuf: cut to the buffer, terminated");
	errbuf_set(err, 0, "%s", "nothing");
	UNIT_EQ_STR(err, "a long ", "errbuf: a zero-length buffer is left alone");
	errbuf_set(NULL, 10, "%s", "nothing"); /* must not crash */
	UNIT_CHECK(1, "errbuf: NULL buffer");
}

int main(void)
{
	test_hash();
	test_clock();
	test_errbuf();
	return unit_done();
}
