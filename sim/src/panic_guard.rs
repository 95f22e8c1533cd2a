//! Panics of the store under test become violations, not a dead harness.
//!
//! The store must never panic (not on data from disk, not on data from the
//! network); raft-rs panics when the log it is given contradicts what it
//! promised, which is exactly what a durability bug looks like. A member's
//! calls run under [`guard`]: a panic is caught, its message and location
//! are returned, and the member is treated as failed. While a simulation
//! runs on a thread, the panic hook records instead of printing, so sweeps
//! stay readable; everywhere else (tests' own assertions) it prints as usual.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST.with(|last| *last.borrow_mut() = Some(format!("{info}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Marks this thread as running a simulation until the value is dropped.
pub struct QuietPanics(());

impl QuietPanics {
    pub fn new() -> QuietPanics {
        install_hook();
        QUIET.with(|q| q.set(true));
        QuietPanics(())
    }
}

impl Default for QuietPanics {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(false));
    }
}

/// Runs `f`; a panic becomes `Err(message)`.
pub fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic with a non-string payload".into())
            })
    })
}
