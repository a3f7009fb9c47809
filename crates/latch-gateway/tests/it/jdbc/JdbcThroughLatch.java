// A JDBC client (pgjdbc, Debian's libpostgresql-jdbc-java) through the latch gateway, run by
// `jdbc_runs_through_the_gateway` as `java -cp postgresql.jar JdbcThroughLatch.java URL USER PASSWORD`.
// It uses what JDBC applications use: server-side prepared statements (prepareThreshold=1, so
// named statements from the first execution), a batch of inserts in a transaction, and a
// rollback. It prints what it saw; any SQLException ends it with "sqlstate=…" and exit code 2.
import java.sql.*;
import java.util.Properties;

public class JdbcThroughLatch {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "require");
        props.setProperty("prepareThreshold", "1");
        props.setProperty("ApplicationName", "jdbc-test");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            long sum = 0;
            try (PreparedStatement ps = c.prepareStatement("select ?::int * 2")) {
                for (int i = 1; i <= 5; i++) {
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        sum += rs.getInt(1);
                    }
                }
            }
            System.out.println("sum=" + sum);
            try (Statement st = c.createStatement()) {
                st.execute("create table jdbc_t (x int)");
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("insert into jdbc_t values (?)")) {
                for (int i = 1; i <= 3; i++) {
                    ps.setInt(1, i);
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            c.commit();
            try (Statement st = c.createStatement()) {
                st.execute("insert into jdbc_t values (99)");
            }
            c.rollback();
            c.setAutoCommit(true);
            try (Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("select count(*), sum(x) from jdbc_t")) {
                rs.next();
                System.out.println("rows=" + rs.getInt(1) + " total=" + rs.getInt(2));
            }
        } catch (SQLException e) {
            System.out.println("sqlstate=" + e.getSQLState() + " " + e.getMessage());
            System.exit(2);
        }
    }
}
