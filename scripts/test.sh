#!/usr/bin/env bash
# Runs the whole test suite with Node's test runner (TypeScript through tsx).
# Tests that need a Docker Engine skip when none answers, except under CI=true where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh build: the servers, agents and CLI calls the tests start run from dist/ (see
# test/helpers/cluster.ts). Tests and benchmarks are type-checked too.
node node_modules/typescript/bin/tsc -p tsconfig.json
node node_modules/typescript/bin/tsc -p tsconfig.test.json
export GANTRY_TEST_BUILT=1
# Some tests hold a thousand sockets at once (hostile clients, DNS over TCP): lift the soft file
# limit to the hard one (and the hard one too, where we may).
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then ulimit -Hn 65536 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if docker info >/dev/null 2>&1; then bash scripts/test-image.sh; fi
# Files that may run two at a time: they start no agent, no container and no process on a fixed
# port, and hold no bound on time tighter than seconds, so another file beside them changes
# nothing they check (ports they need come from the kernel: helpers/cluster.ts freePort).
# Everything else (agents with fixed port ranges, Docker, latency and timeout bounds) runs alone.
parallel=(
  access agent-protocol api approvals cluster-state configs directory directory-tls discovery-dns
  discovery-redis file-modes fuzz invitations log-merge log-retention quota-race quotas reconcile
  registry-lease rollout-step scheduler.property scoped-tokens secrets spec-bounds store teams users
)
pfiles=$(printf 'test/%s.test.ts\n' "${parallel[@]}")
sfiles=$(find test -name '*.test.ts' | sort | grep -vxF "$pfiles")
# --test-force-exit: a leaked handle in one file must not hang the whole run (CI has a hard limit).
run() { node --import tsx --test --test-force-exit --test-reporter=spec "$@"; }
status=0
run --test-concurrency=2 $pfiles "$@" || status=$?
run --test-concurrency=1 $sfiles "$@" || status=$?
exit $status
