#!/usr/bin/env -S node --max-semi-space-size=2
// The flags above are DAEMON_NODE_FLAGS (src/node-flags.ts); a test keeps them equal.
import { setFlagsFromString } from 'node:v8'
import { main } from '../src/main.ts'

// Every byte a tunnel carries passes through a few short-lived Buffers. By default V8
// starts a full garbage collection for every 64 MB of them, a cost that grows with the
// whole heap: a third of the daemon's CPU at full speed. Counting that memory in the
// heap's global limit instead makes those collections rare (docs/performance.md).
setFlagsFromString('--external-memory-accounted-in-global-limit')

process.exitCode = await main(process.argv)
