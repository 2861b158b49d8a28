// postgres.js (which prepares every parameterised query by default) through the pooler: many workers
// sharing a few connections, pipelined queries, transactions that commit and roll back.
// usage: node postgresjs.js HOST PORT USER PASSWORD DATABASE CONNECTIONS WORKERS ITERATIONS
// Prints one JSON line; exits 1 on any wrong result or unexpected error.
'use strict';

const postgres = require('postgres');

const [host, port, user, password, database, nconn, workers, iterations] = process.argv.slice(2);
const problems = [];
let statements = 0;

function problem(msg) {
	if (problems.length < 20)
		problems.push(msg);
}

function check(w, what, got, want) {
	statements++;
	const g = JSON.stringify(got), e = JSON.stringify(want);
	if (g !== e)
		problem(`worker ${w} ${what}: got ${g}, expected ${e}`);
}

const sql = postgres({
	host, port: Number(port), user, password, database,
	max: Number(nconn), prepare: true, idle_timeout: 0, connect_timeout: 10, onnotice: () => {},
});

async function run(w) {
	let committed = 0;
	let seed = w * 104729 + 7;
	const rand = (n) => {
		seed = (seed * 1103515245 + 12345) % 2147483648;
		return seed % n;
	};
	const one = async (db, v) => {
		switch (rand(7)) {
		case 0: {
			const r = await db`SELECT ${v}::int + 1 AS r`;
			check(w, 'add', r.map((x) => x.r), [v + 1]);
			break;
		}
		case 1: {
			const r = await db`SELECT ${String(v)}::text || 'x' AS r`;
			check(w, 'cat', r.map((x) => x.r), [`${v}x`]);
			break;
		}
		case 2: {
			// a text of this worker only
			const r = await db.unsafe(`SELECT $1::int * ${w + 2} AS r`, [v], { prepare: true });
			check(w, 'own', r.map((x) => x.r), [v * (w + 2)]);
			break;
		}
		case 3: {
			const n = v % 5;
			const r = await db`SELECT g AS r FROM generate_series(1, ${n}::int) g`;
			check(w, 'rows', r.map((x) => x.r), Array.from({ length: n }, (_, i) => i + 1));
			break;
		}
		case 4: {
			const r = await db`SELECT ${v}::int AS a, ${'w' + w}::text AS b, ${v % 2 === 0}::bool AS c`;
			check(w, 'three', r.map((x) => [x.a, x.b, x.c]), [[v, 'w' + w, v % 2 === 0]]);
			break;
		}
		case 5: {
			const r = await db`SELECT ${v}::bigint * 1000000 AS r`;
			check(w, 'bigint', r.map((x) => x.r), [String(BigInt(v) * 1000000n)]);
			break;
		}
		default: {
			// several queries of one worker pipelined on one connection
			const rs = await Promise.all([1, 2, 3].map((k) => db`SELECT ${v}::int + ${k}::int AS r`));
			check(w, 'pipelined', rs.map((r) => r[0].r), [v + 1, v + 2, v + 3]);
		}
		}
	};
	const count = async (db) => (await db`SELECT count(*)::int AS n FROM drv_js WHERE worker = ${w}`)[0].n;

	try {
		for (let i = 0; i < iterations; i++) {
			const v = i * 5 + w, r = rand(10);
			if (r < 6) {
				await one(sql, v);
			} else if (r < 8) {
				await sql.begin(async (tx) => {
					await one(tx, v);
					await tx`INSERT INTO drv_js(worker, v) VALUES (${w}, ${v})`;
					check(w, 'count in transaction', await count(tx), committed + 1);
					await one(tx, v + 1);
				});
				committed++;
			} else {
				try {
					await sql.begin(async (tx) => {
						await tx`INSERT INTO drv_js(worker, v) VALUES (${w}, ${-v})`;
						await one(tx, v);
						throw new Error('roll back');
					});
					problem(`worker ${w}: the transaction did not roll back`);
				} catch (e) {
					if (e.message !== 'roll back')
						throw e;
				}
				check(w, 'count after rollback', await count(sql), committed);
			}
		}
	} catch (e) {
		problem(`worker ${w}: unexpected error ${e.code || ''} ${e.message}`);
	}
	return committed;
}

(async () => {
	const committed = await Promise.all(Array.from({ length: Number(workers) }, (_, w) => run(w)));
	await sql.end({ timeout: 5 });
	console.log(JSON.stringify({ statements, committed, problems }));
	process.exit(problems.length ? 1 : 0);
})().catch((e) => {
	console.log(JSON.stringify({ fatal: String(e) }));
	process.exit(1);
});
