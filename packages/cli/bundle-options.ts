/**
 * How the daemon is bundled: the esbuild options build.ts makes packages/cli/dist with, and
 * the bench's js-libp2p floor is bundled with (bench/setups.ts), so the floor carries what
 * the daemon carries and nothing else.
 */
import type { BuildOptions } from 'esbuild'

/**
 * Left to Node's resolution at run time: pino (it finds worker files beside its own code)
 * and the Unix-socket and udx (UDP transport) addons, which load their native binaries from
 * beside their own code. The QUIC transport is bundled: left
 * out, it loaded its own copies of @libp2p/utils, @libp2p/crypto and the rest from
 * node_modules, 5 MB of RSS more. (Bundled without --initial-old-space-size it made TCP
 * tunnels slower: the smaller heap got a lower collection limit and collected four times
 * as often. node-flags.ts sets that floor; docs/performance.md has the figures.)
 */
const EXTERNAL = ['node-unix-socket', 'pino', 'udx-native']

/** Bundled CommonJS dependencies call require(); an ES module has none of its own. */
const REQUIRE_SHIM = "import { createRequire as __punchgateCreateRequire } from 'node:module';\n" +
  'const require = __punchgateCreateRequire(import.meta.url);'

export const NODE_BUNDLE = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: EXTERNAL,
  banner: { js: REQUIRE_SHIM },
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning'
} satisfies BuildOptions
