#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=1048576 node --max-semi-space-size=2 --optimize-for-size --initial-old-space-size=32 --no-maglev
// The settings above are DAEMON_ENV and DAEMON_NODE_FLAGS (src/node-flags.ts); a test keeps them equal.
import { existsSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'

// Every byte a tunnel carries passes through a few short-lived Buffers. By default V8
// starts a full garbage collection for every 64 MB of them, a cost that grows with the
// whole heap: a third of the daemon's CPU at full speed. Counting that memory in the
// heap's global limit instead makes those collections rare (docs/performance.md).
setFlagsFromString('--external-memory-accounted-in-global-limit')

// The daemon is src/ bundled by build.ts (npm install and npm ci run it).
const bundle = new URL('../dist/punchgate.js', import.meta.url)
if (!existsSync(bundle)) {
  console.error('punchgate: packages/cli/dist/punchgate.js is missing: run `npm run build` (npm install runs it)')
  process.exit(1)
}
const { main } = await import(bundle.href)
process.exitCode = await main(process.argv)
