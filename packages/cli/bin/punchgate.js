#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=67108864 node --max-semi-space-size=2 --optimize-for-size --initial-old-space-size=32
// The settings above are DAEMON_ENV and SHEBANG_NODE_FLAGS (src/node-flags.ts); a test keeps them equal.
// They are the ones every Node from 18 up accepts, so an old Node reaches the check below
// instead of stopping at a flag it does not know. Keep this file plain JavaScript that
// Node 18 can parse.
import { existsSync } from 'node:fs'
import module from 'node:module'
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { setFlagsFromString } from 'node:v8'

const MIN_NODE_MAJOR = 22
const major = Number(process.versions.node.split('.')[0])
if (!(major >= MIN_NODE_MAJOR)) {
  console.error(`punchgate needs Node ${MIN_NODE_MAJOR} or newer; this is ${process.version}`)
  process.exit(1)
}

// LATE_V8_FLAGS in src/node-flags.ts, set before any of the daemon's code runs:
// - every byte a tunnel carries passes through a few short-lived Buffers. By default V8
//   starts a full garbage collection for every 64 MB of them, a cost that grows with the
//   whole heap: a third of the daemon's CPU at full speed. Counting that memory in the
//   heap's global limit instead makes those collections rare (docs/performance.md).
// - --no-maglev: V8's middle compiler tier stays off (node-flags.ts says why); Node 18
//   refuses it on the command line, so it is set here.
for (const flag of ['--no-maglev', '--external-memory-accounted-in-global-limit']) setFlagsFromString(flag)

// V8's code for the bundle is kept between runs (Node >= 22.1): a start skips most of
// parsing and compiling 2 MB of JavaScript (docs/performance.md, "Start-up"). In the user's
// own cache directory, not the shared one Node defaults to under /tmp, where another user
// could plant code. NODE_DISABLE_COMPILE_CACHE=1 turns it off; a directory that cannot be
// made only costs the saving.
if (typeof module.enableCompileCache === 'function') {
  const xdg = process.env.XDG_CACHE_HOME
  const cacheHome = xdg != null && isAbsolute(xdg) ? xdg : join(homedir(), '.cache')
  try {
    module.enableCompileCache(join(cacheHome, 'punchgate', 'compile-cache'))
  } catch {}
}

// The daemon is src/ bundled by build.ts (npm install, npm ci and npm pack run it).
const bundle = new URL('../dist/punchgate.js', import.meta.url)
if (!existsSync(bundle)) {
  console.error('punchgate: packages/cli/dist/punchgate.js is missing: run `npm run build` (npm install runs it)')
  process.exit(1)
}
const { main } = await import(bundle.href)
const code = await main(process.argv)
// Every command is done when main resolves, but libp2p leaves debounce timers (its address
// manager's and identify push's) that held a stopped daemon for ~2 s more: a restart, or a
// service manager waiting for the exit, paid for them. Exit once the output is flushed.
await Promise.all([process.stdout, process.stderr].map(stream => new Promise(resolve => stream.write('', resolve))))
process.exit(code)
