/*
 * proxy.h -- the filtering proxy: one client connection from accept to close.
 *
 * A connection reads request heads (h1_parse_request), identifies the user,
 * asks the policy, and then either answers itself (block and warn pages,
 * PAC file, status, metrics, the forms of the block page) or forwards the
 * request to the origin and the response back, or tunnels a CONNECT. Every
 * request ends with one access-log record. All of it runs on the worker's
 * loop; nothing blocks.
 */
#ifndef HAVEN_PROXY_PROXY_H
#define HAVEN_PROXY_PROXY_H

#include <uv.h>

struct worker;

/* The listener's connection callback: accept and serve a new client. */
void proxy_on_connection(uv_stream_t *listener, int status);

/* Stop keep-alive on every connection of the worker and close the idle ones (SIGTERM). */
void proxy_drain(struct worker *w);

/* Close every connection of the worker now (end of drain). */
void proxy_close_all(struct worker *w);

#endif
