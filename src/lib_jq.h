/* libjq (jq filters), opened on first use: see lazylib.h. Include before <jq.h> and <jv.h>. */
#ifndef GHL_LIB_JQ_H
#define GHL_LIB_JQ_H

/* jv.h defines a static jv_is_valid that calls jv_get_kind, which a
** build without optimisation emits even unused: its call goes to
** ghl_jv_get_kind (lazylib.c), which calls through the table. */
#define jv_get_kind ghl_jv_get_kind
#include <jq.h>
#include <jv.h>

#include "lazylib.h"

#define GHL_JQ_SYMS(X) \
  X(jq_compile) X(jq_get_error_message) X(jq_halted) X(jq_init) X(jq_next) X(jq_set_colors) \
  X(jq_set_debug_cb) X(jq_set_error_cb) X(jq_set_input_cb) X(jq_set_nomem_handler) X(jq_start) \
  X(jq_teardown) X(jv_array) X(jv_array_append) X(jv_copy) X(jv_dump_string) X(jv_free) \
  X(jv_get_kind) X(jv_invalid) X(jv_invalid_get_msg) X(jv_invalid_has_msg) \
  X(jv_invalid_with_msg) X(jv_parser_free) X(jv_parser_new) X(jv_parser_next) \
  X(jv_parser_set_buf) X(jv_string) X(jv_string_length_bytes) X(jv_string_value)

struct ghl_jq_syms { GHL_JQ_SYMS(GHL_LIB_FIELD) };
extern struct ghl_jq_syms ghl_jq;

#define jq_compile (*ghl_jq.p_jq_compile)
#define jq_get_error_message (*ghl_jq.p_jq_get_error_message)
#define jq_halted (*ghl_jq.p_jq_halted)
#define jq_init (*ghl_jq.p_jq_init)
#define jq_next (*ghl_jq.p_jq_next)
#define jq_set_colors (*ghl_jq.p_jq_set_colors)
#define jq_set_debug_cb (*ghl_jq.p_jq_set_debug_cb)
#define jq_set_error_cb (*ghl_jq.p_jq_set_error_cb)
#define jq_set_input_cb (*ghl_jq.p_jq_set_input_cb)
#define jq_set_nomem_handler (*ghl_jq.p_jq_set_nomem_handler)
#define jq_start (*ghl_jq.p_jq_start)
#define jq_teardown (*ghl_jq.p_jq_teardown)
#define jv_array (*ghl_jq.p_jv_array)
#define jv_array_append (*ghl_jq.p_jv_array_append)
#define jv_copy (*ghl_jq.p_jv_copy)
#define jv_dump_string (*ghl_jq.p_jv_dump_string)
#define jv_free (*ghl_jq.p_jv_free)
#define jv_invalid (*ghl_jq.p_jv_invalid)
#define jv_invalid_get_msg (*ghl_jq.p_jv_invalid_get_msg)
#define jv_invalid_has_msg (*ghl_jq.p_jv_invalid_has_msg)
#define jv_invalid_with_msg (*ghl_jq.p_jv_invalid_with_msg)
#define jv_parser_free (*ghl_jq.p_jv_parser_free)
#define jv_parser_new (*ghl_jq.p_jv_parser_new)
#define jv_parser_next (*ghl_jq.p_jv_parser_next)
#define jv_parser_set_buf (*ghl_jq.p_jv_parser_set_buf)
#define jv_string (*ghl_jq.p_jv_string)
#define jv_string_length_bytes (*ghl_jq.p_jv_string_length_bytes)
#define jv_string_value (*ghl_jq.p_jv_string_value)

#endif
