// JDBC (pgjdbc, prepareThreshold=1: server-prepared from the first use) through the pooler: several
// connections at once, each running thousands of mixed prepared statements, batches and transactions.
// A small preparedStatementCacheQueries makes the driver close statements (Close messages) as it goes.
// usage: java -cp postgresql.jar:DIR PreparedJdbc JDBC_URL USER PASSWORD THREADS ITERATIONS
// Prints one summary line; exits 1 on any wrong result or error.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

public class PreparedJdbc {
	static final AtomicLong statements = new AtomicLong();
	static final List<String> problems = new ArrayList<>();

	static void problem(String msg) {
		synchronized (problems) {
			if (problems.size() < 20)
				problems.add(msg);
		}
	}

	static void check(int t, String what, Object got, Object want) {
		statements.incrementAndGet();
		if (!String.valueOf(got).equals(String.valueOf(want)))
			problem("thread " + t + " " + what + ": got " + got + ", expected " + want);
	}

	static String one(PreparedStatement ps) throws SQLException {
		try (ResultSet rs = ps.executeQuery()) {
			StringBuilder sb = new StringBuilder();
			while (rs.next()) {
				if (sb.length() > 0)
					sb.append(',');
				sb.append(rs.getString(1));
			}
			return sb.toString();
		}
	}

	static void work(String url, Properties props, int t, int iterations) throws SQLException {
		Random rnd = new Random(31L * t + 5);
		int committed = 0;

		try (Connection conn = DriverManager.getConnection(url, props)) {
			for (int i = 0; i < iterations; i++) {
				int v = i * 11 + t, r = rnd.nextInt(10);
				if (r < 6) {
					query(conn, rnd, t, v);
				} else if (r < 8) {
					conn.setAutoCommit(false);
					query(conn, rnd, t, v);
					try (PreparedStatement ps = conn.prepareStatement(
							"INSERT INTO drv_jdbc(thread, v) VALUES (?, ?)")) {
						for (int k = 0; k < 3; k++) {
							ps.setInt(1, t);
							ps.setInt(2, v + k);
							ps.addBatch();
						}
						int[] counts = ps.executeBatch();
						check(t, "batch", counts.length, 3);
					}
					check(t, "count in transaction", count(conn, t), committed + 3);
					if (rnd.nextBoolean()) {
						conn.commit();
						committed += 3;
					} else {
						conn.rollback();
					}
					conn.setAutoCommit(true);
					check(t, "count after transaction", count(conn, t), committed);
				} else {
					// texts shared by every thread, more than the driver's statement cache holds
					int k = rnd.nextInt(12);
					try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int + " + k)) {
						ps.setInt(1, v);
						check(t, "plus " + k, one(ps), v + k);
					}
				}
			}
		}
	}

	static int count(Connection conn, int t) throws SQLException {
		try (PreparedStatement ps = conn.prepareStatement("SELECT count(*) FROM drv_jdbc WHERE thread = ?")) {
			ps.setInt(1, t);
			return Integer.parseInt(one(ps));
		}
	}

	static void query(Connection conn, Random rnd, int t, int v) throws SQLException {
		switch (rnd.nextInt(6)) {
		case 0:
			try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int * 2")) {
				ps.setInt(1, v);
				check(t, "double", one(ps), v * 2);
			}
			break;
		case 1:
			try (PreparedStatement ps = conn.prepareStatement("SELECT ?::text || '/' || ?::text")) {
				ps.setString(1, "a" + v);
				ps.setString(2, "t" + t);
				check(t, "concat", one(ps), "a" + v + "/t" + t);
			}
			break;
		case 2:
			// a text of this thread only
			try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int * " + (t + 3))) {
				ps.setInt(1, v);
				check(t, "own", one(ps), v * (t + 3));
			}
			break;
		case 3:
			try (PreparedStatement ps = conn.prepareStatement("SELECT g FROM generate_series(1, ?) g")) {
				int n = v % 4 + 1;
				ps.setInt(1, n);
				StringBuilder want = new StringBuilder();
				for (int k = 1; k <= n; k++)
					want.append(k == 1 ? "" : ",").append(k);
				check(t, "rows", one(ps), want);
			}
			break;
		case 4:
			try (PreparedStatement ps = conn.prepareStatement("SELECT ?::numeric * 2")) {
				ps.setBigDecimal(1, new BigDecimal(v + ".25"));
				check(t, "numeric", one(ps), new BigDecimal(v + ".25").multiply(BigDecimal.valueOf(2)));
			}
			break;
		default:
			try (PreparedStatement ps = conn.prepareStatement("SELECT ?::bigint + ?::int, ?::bool")) {
				ps.setLong(1, 10000000000L);
				ps.setInt(2, v);
				ps.setBoolean(3, v % 2 == 0);
				try (ResultSet rs = ps.executeQuery()) {
					rs.next();
					check(t, "mixed", rs.getLong(1) + "," + rs.getBoolean(2),
					      (10000000000L + v) + "," + (v % 2 == 0));
				}
			}
		}
	}

	public static void main(String[] args) throws Exception {
		String url = args[0];
		Properties props = new Properties();
		props.setProperty("user", args[1]);
		props.setProperty("password", args[2]);
		props.setProperty("prepareThreshold", "1");
		props.setProperty("preparedStatementCacheQueries", "8");
		props.setProperty("sslmode", "disable");
		props.setProperty("connectTimeout", "10");
		props.setProperty("socketTimeout", "60");
		int threads = Integer.parseInt(args[3]), iterations = Integer.parseInt(args[4]);
		List<Thread> all = new ArrayList<>();

		for (int t = 0; t < threads; t++) {
			final int id = t;
			Thread th = new Thread(() -> {
				try {
					work(url, props, id, iterations);
				} catch (Exception e) {
					problem("thread " + id + ": " + e);
				}
			});
			all.add(th);
			th.start();
		}
		for (Thread th : all)
			th.join();
		System.out.println("jdbc: " + statements.get() + " statements, " + problems.size() + " problems");
		for (String p : problems)
			System.out.println("PROBLEM " + p);
		System.exit(problems.isEmpty() ? 0 : 1);
	}
}
