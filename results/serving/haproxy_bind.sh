#!/bin/sh
# HAProxy as Ray Serve starts it (RAY_SERVE_HAPROXY_BINARY_PATH points here; Serve runs `haproxy -db -f CONFIG ...`
# as a plain child of its HAProxyManager actor, on every start and every reload), with two changes:
# - It dies with that actor (PR_SET_PDEATHSIG, kept across exec; the actor forks it from its event-loop thread,
#   which lives as long as the actor). Otherwise a HAProxy whose actor was killed (serve.py's process group
#   killed) is re-parented to init and keeps the port, answering 500 to every request. $SIGNSEARCH_HAPROXY_SETPRIV
#   is util-linux's setpriv where it takes --pdeathsig (ingress.py checks); without it, serve.py's watchdog still
#   ends HAProxy once serve.py is gone (results/serving/watchdog.py).
# - With $SIGNSEARCH_HAPROXY_HOST set, the listeners Serve's config template puts on every interface are bound to it
#   instead: Serve 2.60 renders the Prometheus frontend as `bind :<port>` and the stats page as `bind *:<port>`,
#   with no setting for their address; the service's own frontend already binds the HTTP host it was given. The
#   rewrite happens on every (re)load, as Serve rewrites the file before each one.
# Then the real binary replaces this shell (the same pid: Serve signals and waits for it).
set -eu
config=""
previous=""
for arg in "$@"; do
    [ "$previous" = "-f" ] && config="$arg"
    previous="$arg"
done
if [ -n "$config" ] && [ -n "${SIGNSEARCH_HAPROXY_HOST:-}" ]; then
    sed -i -E "s/^([[:space:]]*bind[[:space:]]+)(\*|0\.0\.0\.0)?:([0-9]+)/\1${SIGNSEARCH_HAPROXY_HOST}:\3/" "$config"
fi
if [ -n "${SIGNSEARCH_HAPROXY_SETPRIV:-}" ]; then
    exec "$SIGNSEARCH_HAPROXY_SETPRIV" --pdeathsig KILL -- "$SIGNSEARCH_HAPROXY_BINARY" "$@"
fi
exec "$SIGNSEARCH_HAPROXY_BINARY" "$@"
