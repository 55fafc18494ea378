#!/usr/bin/env bash
# Runs the whole test suite with Node's test runner (TypeScript through tsx).
# Tests that need a Docker Engine skip when none answers, except under CI=true where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh build: the servers, agents and CLI calls the tests start run from dist/ (see
# test/helpers/cluster.ts). Tests and benchmarks are type-checked too.
node node_modules/typescript/bin/tsc -p tsconfig.json
node node_modules/typescript/bin/tsc -p tsconfig.test.json
# The console (dist/web/, which the server serves and test/console.test.ts drives in Chromium):
# a few seconds, so always fresh rather than a stale build from another checkout.
node node_modules/typescript/bin/tsc -p web/tsconfig.json
node node_modules/typescript/bin/tsc -p web/tsconfig.node.json
node node_modules/vite/bin/vite.js build --config web/vite.config.ts --logLevel warn
export GANTRY_TEST_BUILT=1
# Some tests hold a thousand sockets at once (hostile clients, DNS over TCP): lift the soft file
# limit to the hard one (and the hard one too, where we may).
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then ulimit -Hn 65536 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if docker info >/dev/null 2>&1; then bash scripts/test-image.sh; fi
# Files that may run two at a time: no Docker, nothing host-wide, no bound on time tighter than
# seconds, and agents (process runtime) only on a port range no other test file uses; other ports
# come from the kernel (helpers/cluster.ts freePort). Another file beside one of them changes
# nothing it checks. Every other file (Docker, shared ranges, latency and timeout bounds, tmpfs
# mounts, other hosts) runs alone, after them.
parallel=(
  access agent-protocol alerts alerts-evaluate api approvals cli cluster-state configs
  console-session console-static directory directory-tls discovery-dns discovery-redis e2e-ports
  e2e-process fault-store file-modes fuzz images-unit invitations isolation log-merge log-retention
  process-log-records prometheus quota-race quotas reconcile registry-lease rollout rollout-step
  scheduler scheduler.property scoped-tokens secrets spec spec-bounds store teams terminal-relays tls
  tokens users
)
pfiles=$(printf 'test/%s.test.ts\n' "${parallel[@]}")
# A file renamed away from this list would otherwise run in neither phase.
for f in $pfiles; do [ -f "$f" ] || { echo "scripts/test.sh: $f is in the parallel list but does not exist" >&2; exit 1; }; done
sfiles=$(find test -name '*.test.ts' | sort | grep -vxF "$pfiles")
# --test-force-exit: a leaked handle in one file must not hang the whole run (CI has a hard limit).
run() { node --import tsx --test --test-force-exit --test-reporter=spec "$@"; }
status=0
run --test-concurrency=2 $pfiles "$@" || status=$?
run --test-concurrency=1 $sfiles "$@" || status=$?
exit $status
