#!/bin/sh
# The one-shot step of compose.cluster.yaml: makes its Valkey nodes (host:port arguments)
# one cluster, their slots split evenly, each node a primary. The roles start only once it
# has exited 0, so none of them meets a cluster that is half made.
# The password comes in REDISCLI_AUTH, which valkey-cli reads: never on a command line.
set -eu
: "${REDISCLI_AUTH:?set ACCEPTD_REDIS_PASSWORD}"
[ "$#" -ge 3 ] || { echo "usage: $0 host:port host:port host:port [...]" >&2; exit 2; }

# One line of a node's CLUSTER INFO (valkey-cli ends its lines with \r).
info() { valkey-cli -h "${1%:*}" -p "${1##*:}" cluster info | tr -d '\r' | sed -n "s/^$2://p"; }

# A later `up` finds the nodes already joined (nodes.conf lives in each node's volume):
# `--cluster create` would refuse them as not empty, and the roles would never start.
known=$(info "$1" cluster_known_nodes)
if [ "${known:-0}" -gt 1 ]; then
  echo "the cluster is assembled already"
else
  valkey-cli --cluster create "$@" --cluster-replicas 0 --cluster-yes
fi

# --cluster create returns once the nodes agree on the slots, before each has marked the
# cluster up: a role that asked a node meanwhile would be refused (CLUSTERDOWN).
for node in "$@"; do
  waited=0
  until [ "$(info "$node" cluster_state)" = ok ]; do
    if [ "$waited" -ge 60 ]; then
      echo "$node: cluster_state is not ok after 60 s" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
done
echo "cluster ok: $*"
