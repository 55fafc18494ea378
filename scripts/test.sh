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
if docker info >/dev/null 2>&1; then bash scripts/test-image.sh; fi
files=$(find test -name '*.test.ts' | sort)
# --test-force-exit: a leaked handle in one file must not hang the whole run (CI has a hard limit).
exec node --import tsx --test --test-concurrency=1 --test-force-exit --test-reporter=spec $files "$@"
