// libedit through its readline-compatible API (Swift cannot call libedit's variadic el_set),
// plus the small pieces the REPL needs that Swift cannot write itself: an async-signal-safe
// SIGINT handler, and accessors for readline's global variables (Swift 6 rejects direct use
// of imported mutable globals).
//
// Every function here is `static inline` and the variables are `static`, so each Swift object
// file that calls them gets its own copy: the REPL calls them from one Swift file only
// (Sources/MetaQREPL/LineReader.swift).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>

/// Set by the SIGINT handler, read and cleared by the REPL.
static volatile sig_atomic_t metaq_interrupt_flag = 0;

/// A pipe the SIGINT handler writes a byte to, so that a reader waiting in poll() on the
/// terminal and this pipe wakes up even when Ctrl-C comes just before it starts waiting.
static int metaq_interrupt_pipe[2] = {-1, -1};

static void metaq_on_sigint(int signal_number) {
    int saved_errno = errno;
    (void)signal_number;
    metaq_interrupt_flag = 1;
    if (metaq_interrupt_pipe[1] >= 0) {
        char byte = 1;
        ssize_t written = write(metaq_interrupt_pipe[1], &byte, 1);  // a full pipe is awake already
        (void)written;
    }
    errno = saved_errno;
}

/// Creates the wake-up pipe (non-blocking, closed on exec) and installs the SIGINT handler,
/// without SA_RESTART so that a blocked read() or poll() returns. Returns 0 on success.
static inline int metaq_install_interrupt_handler(void) {
    if (metaq_interrupt_pipe[0] < 0) {
        if (pipe(metaq_interrupt_pipe) != 0) return -1;
        for (int end = 0; end < 2; end++) {
            fcntl(metaq_interrupt_pipe[end], F_SETFL, fcntl(metaq_interrupt_pipe[end], F_GETFL) | O_NONBLOCK);
            fcntl(metaq_interrupt_pipe[end], F_SETFD, FD_CLOEXEC);
        }
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = metaq_on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    return sigaction(SIGINT, &action, NULL);
}

static inline int metaq_interrupt_requested(void) { return metaq_interrupt_flag != 0; }

/// The end of the wake-up pipe to poll, or -1 before the handler is installed.
static inline int metaq_interrupt_descriptor(void) { return metaq_interrupt_pipe[0]; }

/// Empties the wake-up pipe.
static inline void metaq_drain_interrupt_pipe(void) {
    char buffer[64];
    if (metaq_interrupt_pipe[0] < 0) return;
    while (read(metaq_interrupt_pipe[0], buffer, sizeof buffer) > 0) {}
}

/// Clears the flag, then empties the pipe: a Ctrl-C that comes in between leaves the flag set.
static inline void metaq_clear_interrupt(void) {
    metaq_interrupt_flag = 0;
    metaq_drain_interrupt_pipe();
}

/// Names the application (for ~/.editrc), installs the completion function, the function
/// that reads each character and the characters that end a word for completion, and bounds
/// the in-memory history.
static inline void metaq_editline_setup(const char *name, rl_completion_func_t *complete, int (*read_character)(FILE *),
                                        int history_limit) {
    rl_readline_name = name;
    rl_attempted_completion_function = complete;
    rl_getc_function = read_character;
    rl_basic_word_break_characters = " \t\n\"'`<>=;|&{}()[],+-*/%^!";
    rl_initialize();
    using_history();
    stifle_history(history_limit);
}

/// The line being edited (UTF-8).
static inline const char *metaq_line_buffer(void) { return rl_line_buffer; }

/// Called from the completion function: no fallback to libedit's own filename completion,
/// and `append` (or nothing, for 0) typed after a sole match.
static inline void metaq_completion_settings(int append) {
    rl_attempted_completion_over = 1;
    rl_completion_append_character = append;
}
