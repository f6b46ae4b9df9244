//! `katcore-clinic`: runs the clinic server. Configuration → storage →
//! router → serve; see `katcore_clinic::Config` for flags and variables.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use katcore_clinic::{app, open_storage, serve_app, AppState, Config, ConfigError};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match Config::from_args(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(ConfigError::Help) => {
            println!("{}", katcore_clinic::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("katcore-clinic: {e}");
            return ExitCode::from(2);
        }
    };
    // Opening may block (PostgreSQL's driver runs its own runtime).
    let opening = config.clone();
    let opened = tokio::task::spawn_blocking(move || open_storage(&opening)).await;
    let storage = match opened {
        Ok(Ok(storage)) => storage,
        Ok(Err(e)) => {
            match &config.database_url {
                Some(_) => eprintln!("katcore-clinic: the PostgreSQL database: {e}"),
                None => eprintln!("katcore-clinic: {}: {e}", config.db.display()),
            }
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("katcore-clinic: opening the database failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match serve_app(app(AppState::configured(storage, &config)), &config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("katcore-clinic: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("katcore-clinic listening on {}", server.url());
    let shutdown = server.shutdown_trigger();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("shutting down");
            shutdown();
        }
    });
    match server.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("katcore-clinic: {e}");
            ExitCode::FAILURE
        }
    }
}
