#!/bin/sh
# Valkey for deploy/compose.yaml, its password read from the environment into a config
# file only Valkey reads: a password on the command line shows in `ps` to every user and
# process of the host. Then the image's own entrypoint, which drops to the valkey user.
# Arguments are more settings, none secret (compose.cluster.yaml passes cluster-enabled).
set -eu
: "${VALKEY_PASSWORD:?set ACCEPTD_REDIS_PASSWORD}"
conf="${VALKEY_CONF:-/etc/valkey/redis.conf}"
auth="${VALKEY_AUTH_CONF:-/tmp/valkey-auth.conf}"
umask 077
# printf is a shell builtin here: the password is in no process's arguments. masterauth is
# what a replica, if you add one, answers its primary with.
printf 'requirepass "%s"\nmasterauth "%s"\n' "$VALKEY_PASSWORD" "$VALKEY_PASSWORD" > "$auth"
if [ "$(id -u)" = 0 ] && id valkey >/dev/null 2>&1; then chown valkey "$auth"; fi
exec docker-entrypoint.sh valkey-server "$conf" --include "$auth" "$@"
