//! What the benchmarks share: a PostgreSQL database of their own on the server at
//! `DATABASE_URL` (default 127.0.0.1:5432 as postgres), dropped when they end.

#![allow(dead_code)]

/// A database created for one benchmark run.
pub struct BenchDatabase {
    pub server: tokio_postgres::Config,
    pub name: String,
}

impl BenchDatabase {
    /// A fresh database named after `purpose`, or why none could be made.
    pub fn create(purpose: &str) -> Result<BenchDatabase, String> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
        let server: tokio_postgres::Config = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let name = format!("sparkify_{purpose}_bench_{}", std::process::id());
        admin(&server, &format!("CREATE DATABASE {name}")).map_err(|e| format!("{url}: {e}"))?;
        Ok(BenchDatabase { server, name })
    }

    /// The `[CLUSTER]` lines that reach it.
    pub fn cluster(&self) -> String {
        let host = match self.server.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "127.0.0.1".into(),
        };
        let port = self.server.get_ports().first().copied().unwrap_or(5432);
        let user = self.server.get_user().unwrap_or("postgres");
        format!(
            "HOST={host}\nDB_PORT={port}\nDB_NAME={}\nDB_USER={user}",
            self.name
        )
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on the server's default database.
fn admin(server: &tokio_postgres::Config, statement: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (client, connection) = server
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        client
            .batch_execute(statement)
            .await
            .map_err(|e| e.to_string())
    })
}
