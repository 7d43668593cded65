#!/bin/sh
# HAProxy as Ray Serve starts it (RAY_SERVE_HAPROXY_BINARY_PATH points here; Serve runs `haproxy -db -f CONFIG ...`),
# with the listeners Serve's config template puts on every interface bound to $SIGNSEARCH_HAPROXY_HOST instead.
# Serve 2.60 renders the Prometheus frontend as `bind :<port>` and the stats page as `bind *:<port>`, with no
# setting for their address; the service's own frontend already binds the HTTP host it was given. The rewrite
# happens on every (re)load, as Serve rewrites the file before each one. Then the real binary replaces this shell.
set -eu
config=""
previous=""
for arg in "$@"; do
    [ "$previous" = "-f" ] && config="$arg"
    previous="$arg"
done
if [ -n "$config" ]; then
    sed -i -E "s/^([[:space:]]*bind[[:space:]]+)(\*|0\.0\.0\.0)?:([0-9]+)/\1${SIGNSEARCH_HAPROXY_HOST}:\3/" "$config"
fi
exec "$SIGNSEARCH_HAPROXY_BINARY" "$@"
