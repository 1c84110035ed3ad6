// libedit through its readline-compatible API (Swift cannot call libedit's variadic el_set),
// plus accessors for readline's global variables (Swift 6 rejects direct use of imported
// mutable globals). The SIGINT handler and its state are in Sources/CInterrupt: state kept
// here would be `static`, one copy per object file.
#include <stdio.h>
#include <editline/readline.h>

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
