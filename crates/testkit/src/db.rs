//! A database per test.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// A freshly created, empty database, dropped (with `FORCE`) when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `deskie_t_<random>` on the test server.
    pub async fn create() -> Self {
        let db = Self::reserve();
        let (admin_url, name) = (&db.admin_url, &db.name);
        let mut admin = PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("test PostgreSQL at {admin_url} is not reachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        // A transaction a test leaks (a task aborted mid-transaction) holds its locks and its
        // own relay's horizon until the test ends. End such sessions after 10 s, as compose's
        // PostgreSQL does after 30 s (the relay's horizon is per database, so other tests'
        // relays are not held back).
        let timeout =
            format!("ALTER DATABASE {name} SET idle_in_transaction_session_timeout = '10s'");
        sqlx::query(sqlx::AssertSqlSafe(timeout))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot configure test database {name}: {e}"));
        let _ = admin.close().await;
        db
    }

    /// A fresh database name and URL, *not* created: for a test of code that creates its
    /// database itself. Dropped if it exists when this value is dropped.
    pub fn reserve() -> Self {
        let admin_url = std::env::var("DESKIE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("deskie_t_{}", crate::unique_suffix());
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap_or_else(|| admin_url.clone());
        let url = format!("{base}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// The URL of the test database (what `DESKIE_DATABASE_URL` would be).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the server's `postgres` database, for what a session cannot do to its own
    /// database (e.g. refusing new connections to it).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        crate::block_on_cleanup(async move {
            if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                    .execute(&mut admin)
                    .await;
                let _ = admin.close().await;
            }
        });
    }
}
