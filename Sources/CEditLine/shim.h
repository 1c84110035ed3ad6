// libedit through its readline-compatible API (Swift cannot call libedit's variadic el_set).
#include <stdio.h>
#include <editline/readline.h>
