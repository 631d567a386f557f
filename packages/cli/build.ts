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
import { NODE_BUNDLE } from './bundle-options.ts'

const packageDir = import.meta.dirname

// A clean slate: chunks are named by their hash, so an old build's would pile up beside the new ones.
rmSync(join(packageDir, 'dist'), { recursive: true, force: true })

const result = await build({
  entryPoints: [join(packageDir, 'src/main.ts')],
  outdir: join(packageDir, 'dist'),
  entryNames: 'punchgate',
  // Modules only some daemons load (--metrics, --mdns, --autonat) stay in chunks of their own.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  ...NODE_BUNDLE,
  legalComments: 'external',
  sourcemap: 'linked',
  metafile: true
})
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0)
console.log(`build: packages/cli/dist/punchgate.js, its chunks and source maps, ${(bytes / 1e6).toFixed(1)} MB`)
