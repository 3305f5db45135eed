/* libmicrohttpd (the HTTP servers), opened on first use: see lazylib.h. Include after <microhttpd.h>. */
#ifndef GHL_LIB_MHD_H
#define GHL_LIB_MHD_H

#include <microhttpd.h>

#include "lazylib.h"

#define GHL_MHD_SYMS(X) \
  X(MHD_add_response_header) X(MHD_create_response_from_buffer) \
  X(MHD_create_response_from_callback) X(MHD_destroy_response) X(MHD_get_connection_info) \
  X(MHD_get_connection_values_n) X(MHD_get_daemon_info) X(MHD_get_timeout) X(MHD_get_version) \
  X(MHD_lookup_connection_value) X(MHD_queue_response) X(MHD_resume_connection) X(MHD_run) \
  X(MHD_start_daemon) X(MHD_stop_daemon) X(MHD_suspend_connection)

struct ghl_mhd_syms { GHL_MHD_SYMS(GHL_LIB_FIELD) };
extern struct ghl_mhd_syms ghl_mhd;

#define MHD_add_response_header (*ghl_mhd.p_MHD_add_response_header)
#define MHD_create_response_from_buffer (*ghl_mhd.p_MHD_create_response_from_buffer)
#define MHD_create_response_from_callback (*ghl_mhd.p_MHD_create_response_from_callback)
#define MHD_destroy_response (*ghl_mhd.p_MHD_destroy_response)
#define MHD_get_connection_info (*ghl_mhd.p_MHD_get_connection_info)
#define MHD_get_connection_values_n (*ghl_mhd.p_MHD_get_connection_values_n)
#define MHD_get_daemon_info (*ghl_mhd.p_MHD_get_daemon_info)
#define MHD_get_timeout (*ghl_mhd.p_MHD_get_timeout)
#define MHD_get_version (*ghl_mhd.p_MHD_get_version)
#define MHD_lookup_connection_value (*ghl_mhd.p_MHD_lookup_connection_value)
#define MHD_queue_response (*ghl_mhd.p_MHD_queue_response)
#define MHD_resume_connection (*ghl_mhd.p_MHD_resume_connection)
#define MHD_run (*ghl_mhd.p_MHD_run)
#define MHD_start_daemon (*ghl_mhd.p_MHD_start_daemon)
#define MHD_stop_daemon (*ghl_mhd.p_MHD_stop_daemon)
#define MHD_suspend_connection (*ghl_mhd.p_MHD_suspend_connection)

#endif
