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
files=$(find test -name '*.test.ts' | sort)
# --test-force-exit: a leaked handle in one file must not hang the whole run (CI has a hard limit).
exec node --import tsx --test --test-concurrency=1 --test-force-exit --test-reporter=spec $files "$@"
