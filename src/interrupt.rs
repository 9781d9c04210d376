//! Ctrl-C and SIGTERM in the middle of a run. A killed client leaves its statement running on
//! the server, holding its locks, until the server notices it is gone; so on the first signal
//! the engines ask the server to stop what it runs (PostgreSQL's cancel request, DuckDB's
//! interrupt, the Data API's CancelStatement), the run fails at its next step and rolls back,
//! and the binary exits 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, as a shell
//! reports a process the signal ended) saying that nothing was committed. A second signal exits
//! at once, and so does the first while no warehouse is open (iac_create's AWS calls, say).
//! A run that has not stopped [`GRACE`] after the first signal (a read stuck on a file or a
//! network that does not answer) exits then: what it had not committed is not committed, as
//! after a `kill -9`, which every engine survives whole.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

/// Set by the first SIGINT or SIGTERM.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The number of the signal that interrupted the run: SIGINT (2) unless SIGTERM (15) came.
static SIGNAL: AtomicU8 = AtomicU8::new(SIGINT);
const SIGINT: u8 = 2;
const SIGTERM: u8 = 15;

/// The exit code of an interrupted run: 128 + the signal's number.
pub fn exit_status() -> u8 {
    128 + SIGNAL.load(Ordering::SeqCst)
}

/// How the user sends the signal again, for messages.
fn again() -> &'static str {
    if SIGNAL.load(Ordering::SeqCst) == SIGTERM {
        "SIGTERM again"
    } else {
        "Ctrl-C again"
    }
}

/// How long a run may take to stop after the first signal before it exits anyway.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// What stops the statement each open warehouse runs, called on the signal's thread.
type Canceller = Box<dyn Fn() + Send>;
static CANCELLERS: Mutex<Vec<Canceller>> = Mutex::new(Vec::new());

/// The error a run fails with once interrupted; [`crate::cli::exit_code`] turns it into exit
/// 130 and the message that nothing was committed.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Starts listening for SIGINT and SIGTERM (once per process; a binary calls it at start).
pub fn listen() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        use tokio::signal::unix::{signal, SignalKind};
        let listening = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .and_then(|runtime| {
                let streams = {
                    let _context = runtime.enter();
                    (
                        signal(SignalKind::interrupt())?,
                        signal(SignalKind::terminate())?,
                    )
                };
                Ok((runtime, streams))
            });
        let (runtime, (mut interrupt, mut terminate)) = match listening {
            Ok(listening) => listening,
            Err(e) => {
                tracing::warn!("cannot listen for Ctrl-C: {e}");
                return;
            }
        };
        std::thread::spawn(move || loop {
            let signal = runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => SIGINT,
                    _ = terminate.recv() => SIGTERM,
                }
            });
            if !requested() {
                SIGNAL.store(signal, Ordering::SeqCst);
            }
            // The cancellers run their own runtimes: outside this one's block_on.
            if !request() {
                // No warehouse is open yet (or the binary opens none, as iac_create): nothing
                // runs on a server to cancel, so the process ends as the signal would end it.
                eprintln!("interrupted");
                std::process::exit(exit_status().into());
            }
        });
    });
}

/// What a signal does: the first asks every open warehouse to stop what it runs and marks the
/// run interrupted (true); a second, or one while no warehouse is open, exits at once (false
/// for the latter, for the caller to exit). Tests call it to interrupt a run without a signal.
pub fn request() -> bool {
    let cancellers = CANCELLERS.lock().unwrap_or_else(|e| e.into_inner());
    if cancellers.is_empty() {
        return false;
    }
    if REQUESTED.swap(true, Ordering::SeqCst) {
        eprintln!("interrupted again: exiting at once");
        std::process::exit(exit_status().into());
    }
    eprintln!(
        "interrupting: asking the warehouse to stop and rolling back ({} to exit at once)",
        again()
    );
    for cancel in cancellers.iter() {
        cancel();
    }
    std::thread::spawn(|| {
        std::thread::sleep(GRACE);
        eprintln!(
            "still not stopped {} s after the signal (a read or the server does not answer): \
             exiting; what this run had not committed is rolled back, and running it again is \
             safe",
            GRACE.as_secs()
        );
        std::process::exit(exit_status().into());
    });
    true
}

/// Whether the run was interrupted.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Fails with [`Interrupted`] once the run was interrupted: the engines call it before each
/// statement and batch (except a rollback, which always goes through), so that the run stops at
/// its next step.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// Registers what stops the statement a warehouse runs, should the run be interrupted.
pub fn on_interrupt(cancel: impl Fn() + Send + 'static) {
    CANCELLERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Box::new(cancel));
}
