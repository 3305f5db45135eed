/* libpq (the PostgreSQL store), opened on first use: see lazylib.h. Include after <libpq-fe.h>. */
#ifndef GHL_LIB_PQ_H
#define GHL_LIB_PQ_H

#include <libpq-fe.h>

#include "lazylib.h"

#define GHL_PQ_SYMS(X) \
  X(PQclear) X(PQcmdTuples) X(PQconndefaults) X(PQconnectdbParams) X(PQconninfo) \
  X(PQconninfoFree) X(PQconninfoParse) X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQfinish) \
  X(PQfname) X(PQfreemem) X(PQftype) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQnfields) \
  X(PQntuples) X(PQreset) X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus) \
  X(PQsetNoticeProcessor) X(PQstatus) X(PQtransactionStatus)

struct ghl_pq_syms { GHL_PQ_SYMS(GHL_LIB_FIELD) };
extern struct ghl_pq_syms ghl_pq;

#define PQclear (*ghl_pq.p_PQclear)
#define PQcmdTuples (*ghl_pq.p_PQcmdTuples)
#define PQconndefaults (*ghl_pq.p_PQconndefaults)
#define PQconnectdbParams (*ghl_pq.p_PQconnectdbParams)
#define PQconninfo (*ghl_pq.p_PQconninfo)
#define PQconninfoFree (*ghl_pq.p_PQconninfoFree)
#define PQconninfoParse (*ghl_pq.p_PQconninfoParse)
#define PQerrorMessage (*ghl_pq.p_PQerrorMessage)
#define PQexec (*ghl_pq.p_PQexec)
#define PQexecParams (*ghl_pq.p_PQexecParams)
#define PQfinish (*ghl_pq.p_PQfinish)
#define PQfname (*ghl_pq.p_PQfname)
#define PQfreemem (*ghl_pq.p_PQfreemem)
#define PQftype (*ghl_pq.p_PQftype)
#define PQgetisnull (*ghl_pq.p_PQgetisnull)
#define PQgetlength (*ghl_pq.p_PQgetlength)
#define PQgetvalue (*ghl_pq.p_PQgetvalue)
#define PQnfields (*ghl_pq.p_PQnfields)
#define PQntuples (*ghl_pq.p_PQntuples)
#define PQreset (*ghl_pq.p_PQreset)
#define PQresultErrorField (*ghl_pq.p_PQresultErrorField)
#define PQresultErrorMessage (*ghl_pq.p_PQresultErrorMessage)
#define PQresultStatus (*ghl_pq.p_PQresultStatus)
#define PQsetNoticeProcessor (*ghl_pq.p_PQsetNoticeProcessor)
#define PQstatus (*ghl_pq.p_PQstatus)
#define PQtransactionStatus (*ghl_pq.p_PQtransactionStatus)

#endif
