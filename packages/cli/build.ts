/**
 * Builds the daemon the bin script runs: packages/cli/dist/punchgate.js, one ES module
 * holding the CLI, the library and their dependencies, made by esbuild from src/.
 *
 * Why a bundle and not Node's type stripping of src/: the stripper (a WebAssembly build
 * of swc) stays in memory, and so does the source text of every one of ~950 modules. An
 * idle daemon run from src/ took 145 MB of RSS; from the bundle, 120 MB, and it starts in
 * half the time (docs/performance.md). Identifiers are kept, so stack traces stay
 * readable; the source map beside the bundle maps them back to src/ under
 * `NODE_OPTIONS=--enable-source-maps`.
 *
 *   node packages/cli/build.ts        (npm run build; npm install and npm ci run it)
 */
import { build } from 'esbuild'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

const packageDir = import.meta.dirname

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

// A clean slate: chunks are named by their hash, so an old build's would pile up beside the new ones.
rmSync(join(packageDir, 'dist'), { recursive: true, force: true })

const result = await build({
  entryPoints: [join(packageDir, 'src/main.ts')],
  outdir: join(packageDir, 'dist'),
  entryNames: 'punchgate',
  // Modules only some daemons load (--metrics, --mdns, --autonat) stay in chunks of their own.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: EXTERNAL,
  banner: { js: REQUIRE_SHIM },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true
})
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0)
console.log(`build: packages/cli/dist/punchgate.js, its chunks and source maps, ${(bytes / 1e6).toFixed(1)} MB`)
