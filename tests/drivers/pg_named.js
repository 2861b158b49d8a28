// node-postgres named queries ({name, text, values}) through the pooler: several connections at once,
// names that mean different texts on different connections, transactions that commit and roll back.
// usage: node pg_named.js HOST PORT USER PASSWORD DATABASE CONNECTIONS ITERATIONS
// Prints one JSON line; exits 1 on any wrong result or unexpected error.
'use strict';

const { Client } = require('pg');

const [host, port, user, password, database, nconn, iterations] = process.argv.slice(2);
const problems = [];
let statements = 0;
let expectedErrors = 0;

function problem(msg) {
	if (problems.length < 20)
		problems.push(msg);
}

function check(c, what, got, want) {
	statements++;
	const g = JSON.stringify(got), w = JSON.stringify(want);
	if (g !== w)
		problem(`connection ${c} ${what}: got ${g}, expected ${w}`);
}

// The same names on every connection, with texts that depend on the connection.
function queries(c) {
	return [
		{ name: 'add', text: c % 2 ? 'SELECT $1::int + 1 AS r' : 'SELECT $1::int - 1 AS r',
		  want: (v) => [{ r: c % 2 ? v + 1 : v - 1 }] },
		{ name: 'cat', text: "SELECT $1::text || '-' || $2::text AS r", args: (v) => [v, c],
		  want: (v) => [{ r: `${v}-${c}` }] },
		{ name: `own_${c}`, text: `SELECT $1::int * ${c + 2} AS r`, want: (v) => [{ r: v * (c + 2) }] },
		{ name: 'shared', text: 'SELECT $1::int * 2 AS r', want: (v) => [{ r: v * 2 }] },
		{ name: `double_${c}`, text: 'SELECT $1::int * 2 AS r', want: (v) => [{ r: v * 2 }] },
		{ name: 'rows', text: 'SELECT g AS r FROM generate_series(1, $1::int) g', args: (v) => [v % 6],
		  want: (v) => Array.from({ length: v % 6 }, (_, i) => ({ r: i + 1 })) },
		{ name: 'json', text: "SELECT json_build_object('a', $1::int, 'c', $2::int) AS r",
		  args: (v) => [v, c], want: (v) => [{ r: { a: v, c } }] },
		{ name: c % 3 ? 'S_1' : 'S_2', text: c % 3 ? 'SELECT $1::int + 100 AS r' : "SELECT 'n' || $1 AS r",
		  want: (v) => [{ r: c % 3 ? v + 100 : `n${v}` }] },
	];
}

async function run(c) {
	const client = new Client({ host, port: Number(port), user, password, database });
	const qs = queries(c);
	let committed = 0;
	let seed = c * 7919 + 13;
	const rand = (n) => {
		seed = (seed * 1103515245 + 12345) % 2147483648;
		return seed % n;
	};
	const one = async (v) => {
		const q = qs[rand(qs.length)];
		const res = await client.query({ name: q.name, text: q.text, values: q.args ? q.args(v) : [v] });
		check(c, `${q.name}(${v})`, res.rows, q.want(v));
	};
	const insert = async (v) => {
		const res = await client.query({ name: 'ins', text: 'INSERT INTO drv_pg(conn, v) VALUES ($1, $2)',
						 values: [c, v] });
		check(c, 'ins', res.rowCount, 1);
	};
	const count = async () => {
		const res = await client.query({ name: 'cnt', text: 'SELECT count(*)::int AS n FROM drv_pg WHERE conn = $1',
						 values: [c] });
		return res.rows[0].n;
	};

	await client.connect();
	try {
		for (let i = 0; i < iterations; i++) {
			const v = i * 3 + c, r = rand(10);
			if (r < 5) {
				await one(v);
			} else if (r < 7) {
				await client.query('BEGIN');
				await one(v);
				await insert(v);
				await one(v + 1);
				check(c, 'count in transaction', await count(), committed + 1);
				await client.query('COMMIT');
				committed++;
			} else if (r < 8) {
				await client.query('BEGIN');
				await insert(-v);
				await one(v);
				await client.query('ROLLBACK');
				check(c, 'count after rollback', await count(), committed);
			} else {
				// an error from a named statement, then the same name again
				const divz = { name: 'divz', text: 'SELECT 100 / $1::int AS r' };
				try {
					await client.query({ ...divz, values: [0] });
					problem(`connection ${c}: 100 / 0 did not fail`);
				} catch (e) {
					if (e.code === '22012')
						expectedErrors++;
					else
						problem(`connection ${c}: divz(0) failed with ${e.code} ${e.message}`);
				}
				const res = await client.query({ ...divz, values: [4] });
				check(c, 'divz(4)', res.rows, [{ r: 25 }]);
			}
		}
	} catch (e) {
		problem(`connection ${c}: unexpected error ${e.code || ''} ${e.message}`);
	}
	await client.end().catch(() => {});
	return committed;
}

(async () => {
	const committed = await Promise.all(Array.from({ length: Number(nconn) }, (_, c) => run(c)));
	console.log(JSON.stringify({ statements, expectedErrors, committed, problems }));
	process.exit(problems.length ? 1 : 0);
})().catch((e) => {
	console.log(JSON.stringify({ fatal: String(e) }));
	process.exit(1);
});
