//! Signals for programs without an async runtime (the supervisor): handlers
//! that only set flags, which the main loop polls.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static TERM: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        TERM.store(true, Ordering::SeqCst);
    }
}

/// Sets SIGTERM, SIGINT and SIGHUP to raise flags read by [`take_term`] and [`take_hup`].
pub fn install() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only stores to atomics, which is async-signal-safe,
        // and it stays valid for the life of the process (a plain fn).
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Whether SIGTERM or SIGINT arrived (the flag stays set).
pub fn term_requested() -> bool {
    TERM.load(Ordering::SeqCst)
}

/// Whether SIGHUP arrived since the last call.
pub fn take_hup() -> bool {
    HUP.swap(false, Ordering::SeqCst)
}
