// Ctrl-C for the REPL: an async-signal-safe SIGINT handler, the flag it sets and a wake-up
// pipe it writes to. They live in this one C file, not in a header's `static` copies: with
// a release build's whole-module optimisation split over several object files, each object
// file that inlined the accessors got its own flag and pipe, and the handler set a flag that
// the line reader never read.
#ifndef METAQ_INTERRUPT_H
#define METAQ_INTERRUPT_H

/// Creates the wake-up pipe (non-blocking, closed on exec) and installs the SIGINT handler,
/// without SA_RESTART so that a blocked read() or poll() returns. Returns 0 on success.
int metaq_install_interrupt_handler(void);

/// Whether SIGINT came since the flag was last cleared.
int metaq_interrupt_requested(void);

/// The end of the wake-up pipe to poll, or -1 before the handler is installed.
int metaq_interrupt_descriptor(void);

/// Empties the wake-up pipe.
void metaq_drain_interrupt_pipe(void);

/// Clears the flag, then empties the pipe: a Ctrl-C that comes in between leaves the flag set.
void metaq_clear_interrupt(void);

#endif
