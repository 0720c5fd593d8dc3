//! Hot reload: on a change to the config file, or on SIGHUP, the new config replaces the old one
//! whole. An invalid file changes nothing and says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::AppState;
use crate::config;
use crate::runtime::Runtime;

/// How often the file is checked. Reading a small file once a second costs nothing and, unlike
/// mtime checks alone, notices edits within the same second.
const POLL: Duration = Duration::from_secs(1);

pub async fn watch(path: PathBuf, state: AppState) {
    let mut last = std::fs::read(&path).ok();
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = hangup => true,
        };
        let now = std::fs::read(&path).ok();
        if !forced && (now == last || now.is_none()) {
            continue;
        }
        last = now;
        reload(&path, &state, if forced { "SIGHUP" } else { "file change" });
    }
}

fn reload(path: &Path, state: &AppState, why: &str) {
    let built = config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|cfg| Runtime::build(&cfg, &path.display().to_string()).map_err(|errs| errs.join("; ")));
    match built {
        Ok(rt) => {
            for w in &rt.warnings {
                tracing::warn!("{w}");
            }
            state.runtime.store(Arc::new(rt));
            state.reload_error.store(Arc::new(None));
            crate::probes::start(state);
            tracing::info!("config reloaded from {} ({why})", path.display());
        }
        Err(e) => {
            tracing::error!("config reload ({why}) failed, keeping the previous config: {e}");
            state.reload_error.store(Arc::new(Some(e)));
        }
    }
}
