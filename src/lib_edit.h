/* libedit (the REPL's line editing), opened on first use: see lazylib.h. Include after <editline/readline.h>. */
#ifndef GHL_LIB_EDIT_H
#define GHL_LIB_EDIT_H

#include <editline/readline.h>

#include "lazylib.h"

#define GHL_EDIT_SYMS(X) \
  X(add_history) X(clear_history) X(readline) X(rl_attempted_completion_function) \
  X(rl_attempted_completion_over) X(rl_basic_word_break_characters) X(rl_catch_signals) \
  X(rl_completer_word_break_characters) X(rl_completion_append_character) X(rl_initialize) \
  X(rl_line_buffer) X(rl_readline_name) X(rl_resize_terminal) X(stifle_history) \
  X(using_history)

struct ghl_edit_syms { GHL_EDIT_SYMS(GHL_LIB_FIELD) };
extern struct ghl_edit_syms ghl_edit;

#define add_history (*ghl_edit.p_add_history)
#define clear_history (*ghl_edit.p_clear_history)
#define readline (*ghl_edit.p_readline)
#define rl_attempted_completion_function (*ghl_edit.p_rl_attempted_completion_function)
#define rl_attempted_completion_over (*ghl_edit.p_rl_attempted_completion_over)
#define rl_basic_word_break_characters (*ghl_edit.p_rl_basic_word_break_characters)
#define rl_catch_signals (*ghl_edit.p_rl_catch_signals)
#define rl_completer_word_break_characters (*ghl_edit.p_rl_completer_word_break_characters)
#define rl_completion_append_character (*ghl_edit.p_rl_completion_append_character)
#define rl_initialize (*ghl_edit.p_rl_initialize)
#define rl_line_buffer (*ghl_edit.p_rl_line_buffer)
#define rl_readline_name (*ghl_edit.p_rl_readline_name)
#define rl_resize_terminal (*ghl_edit.p_rl_resize_terminal)
#define stifle_history (*ghl_edit.p_stifle_history)
#define using_history (*ghl_edit.p_using_history)

#endif
