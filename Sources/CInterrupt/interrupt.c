#include "metaq_interrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/// Set by the SIGINT handler, read and cleared by the REPL and the interpreter.
static volatile sig_atomic_t interrupt_flag = 0;

/// A pipe the SIGINT handler writes a byte to, so that a reader waiting in poll() on the
/// terminal and this pipe wakes up even when Ctrl-C comes just before it starts waiting.
static int interrupt_pipe[2] = {-1, -1};

static void on_sigint(int signal_number) {
    int saved_errno = errno;
    (void)signal_number;
    interrupt_flag = 1;
    if (interrupt_pipe[1] >= 0) {
        char byte = 1;
        ssize_t written = write(interrupt_pipe[1], &byte, 1);  // a full pipe is awake already
        (void)written;
    }
    errno = saved_errno;
}

int metaq_install_interrupt_handler(void) {
    if (interrupt_pipe[0] < 0) {
        if (pipe(interrupt_pipe) != 0) return -1;
        for (int end = 0; end < 2; end++) {
            fcntl(interrupt_pipe[end], F_SETFL, fcntl(interrupt_pipe[end], F_GETFL) | O_NONBLOCK);
            fcntl(interrupt_pipe[end], F_SETFD, FD_CLOEXEC);
        }
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    return sigaction(SIGINT, &action, NULL);
}

int metaq_interrupt_requested(void) { return interrupt_flag != 0; }

int metaq_interrupt_descriptor(void) { return interrupt_pipe[0]; }

void metaq_drain_interrupt_pipe(void) {
    char buffer[64];
    if (interrupt_pipe[0] < 0) return;
    while (read(interrupt_pipe[0], buffer, sizeof buffer) > 0) {}
}

void metaq_clear_interrupt(void) {
    interrupt_flag = 0;
    metaq_drain_interrupt_pipe();
}
