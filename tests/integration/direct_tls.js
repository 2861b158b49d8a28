// direct_tls.js HOST PORT USER DATABASE ALPN: PostgreSQL 17's direct TLS negotiation by hand (libpq 15 cannot):
// a TLS handshake as the first bytes (ALPN ALPN, or none for "-"), then a startup packet and "SELECT 7" inside.
// Prints "alpn=<protocol|none>", then D:<value> for the row, Z at the end, or ERROR <code> / E:<message> / CLOSED.
'use strict';
const tls = require('tls');
const [host, port, user, db, alpn] = process.argv.slice(2);
const out = [];
let buf = Buffer.alloc(0), queried = false, done = false;
const finish = (last) => { if (!done) { done = true; console.log(out.concat(last ? [last] : []).join(' ')); } };
const opts = { host, port: Number(port), servername: 'localhost', rejectUnauthorized: false };
if (alpn !== '-') opts.ALPNProtocols = [alpn];
const s = tls.connect(opts, () => {
	out.push('alpn=' + (s.alpnProtocol || 'none'));
	const params = Buffer.from(`user\0${user}\0database\0${db}\0\0`);
	const startup = Buffer.alloc(8 + params.length);
	startup.writeInt32BE(startup.length, 0);
	startup.writeInt32BE(196608, 4);
	params.copy(startup, 8);
	s.write(startup);
});
s.setTimeout(20000, () => { finish('TIMEOUT'); s.destroy(); });
s.on('data', (d) => {
	buf = Buffer.concat([buf, d]);
	while (buf.length >= 5) {
		const type = String.fromCharCode(buf[0]), len = buf.readInt32BE(1);
		if (buf.length < 1 + len) break;
		const body = buf.subarray(5, 1 + len);
		buf = buf.subarray(1 + len);
		if (type === 'E') out.push('E:' + body.toString().split('\0').find((f) => f.startsWith('M')).slice(1));
		if (type === 'D') out.push('D:' + body.subarray(6, 6 + body.readInt32BE(2)).toString());
		if (type === 'Z' && !queried) {
			queried = true;
			const q = Buffer.from('SELECT 7\0'), m = Buffer.alloc(5 + q.length);
			m.write('Q', 0);
			m.writeInt32BE(4 + q.length, 1);
			q.copy(m, 5);
			s.write(m);
		} else if (type === 'Z') {
			finish('Z');
			s.end();
		}
	}
});
s.on('error', (e) => finish('ERROR ' + (e.code || e.message)));
s.on('close', () => finish('CLOSED'));
