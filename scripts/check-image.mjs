#!/usr/bin/env node
// Builds the Containerfile's file system without a container engine, then runs its
// entrypoint as the image would. Each instruction is carried out in a temp directory that
// stands for the image's /: COPY copies from the repository, `RUN npm ...` runs the same
// npm command (so the production install is real), ln/mkdir/chown are applied inside the
// temp root, and USER node becomes uid 1000 when run as root. The host's Node stands in for
// the base image's. Checks: no dev dependency installed, and the entrypoint, started with the
// image's environment, logs node.started with TCP and QUIC listeners; patches/ applied
// in the bundle the image runs.
//
//   node scripts/check-image.mjs [--keep]      (needs the npm registry or a warm npm cache)
import { execFileSync, spawn } from 'node:child_process'
import { chmod, chown, cp, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'

const REPO = resolve(import.meta.dirname, '..')
const NODE_UID = 1000 // the node images' `node` user
const keep = process.argv.includes('--keep')

class CheckFailed extends Error {}

function fail (message) {
  throw new CheckFailed(message)
}

const text = await readFile(join(REPO, 'Containerfile'), 'utf8')
const instructions = text.replace(/\\\n/g, ' ').split('\n')
  .map(line => line.trim())
  .filter(line => line !== '' && !line.startsWith('#'))
  .map(line => { const [op, ...rest] = line.split(/\s+/); return { op: op.toUpperCase(), args: rest } })

const root = await mkdtemp('/tmp/punchgate-image-')
await chmod(root, 0o755)
const inRoot = path => join(root, path)
const env = {}
const buildArgs = {}
let workdir = '/'
let user
let entrypoint
const volumes = []
let daemon

try {
  for (const { op, args } of instructions) {
    const target = path => inRoot(path.startsWith('/') ? path : join(workdir, path))
    switch (op) {
      case 'EXPOSE': break
      case 'ARG': { const [name, value] = args[0].split('='); buildArgs[name] = value } break
      case 'FROM': {
        const stage = args.join(' ').replace(/\$\{(\w+)\}/g, (_all, name) => buildArgs[name] ?? '')
        console.log(`check-image: FROM ${stage} (host Node ${process.version} stands in)`)
      } break
      case 'WORKDIR': workdir = args[0]; await mkdir(inRoot(workdir), { recursive: true }); break
      case 'ENV': for (const pair of args) { const [name, ...value] = pair.split('='); env[name] = value.join('=') } break
      case 'USER': user = args[0]; break
      case 'VOLUME': volumes.push(...args); await mkdir(inRoot(args[0]), { recursive: true }); break
      case 'ENTRYPOINT': entrypoint = JSON.parse(args.join(' ')); break
      case 'COPY': await copy(args, target); break
      case 'RUN': await run(args.join(' '), target); break
      default: fail(`unknown instruction ${op}: teach scripts/check-image.mjs`)
    }
  }

  // The lockfile marks what only development needs ("dev": true); none of it may be installed.
  const lock = JSON.parse(await readFile(inRoot('app/package-lock.json'), 'utf8'))
  const devOnly = Object.entries(lock.packages).filter(([, entry]) => entry.dev === true).map(([path]) => path)
  for (const path of devOnly) {
    if (await stat(inRoot(join('app', path))).then(() => true, () => false)) fail(`dev-only ${path} is in the image`)
  }
  if (await readlink(inRoot('app/node_modules/@punchgate/node')) !== '../../packages/node') fail('@punchgate/node is not linked to the workspace')
  // patches/ must be in what the image runs (a relay queues without bound behind a receiver
  // that stopped reading without the @libp2p/circuit-relay-v2 one): the bundle, which holds
  // every patched package. node_modules keeps only what the bundle loads at run time (pino,
  // the native addons), unpatched, so the deps stage applies no patches.
  const dist = inRoot('app/packages/cli/dist')
  if (!await stat(join(dist, 'punchgate.js')).then(() => true, () => false)) fail('the image has no packages/cli/dist/punchgate.js')
  const bundled = await readdir(dist, { recursive: true })
  const texts = await Promise.all(bundled.filter(file => file.endsWith('.js')).map(file => readFile(join(dist, file), 'utf8')))
  if (!texts.some(text => text.includes('function joinStreams('))) fail('the image\'s bundle was built without patches/')
  // The relay's per-connection limits (no caps between trusted peers) come from the same patch.
  if (!texts.some(text => /\.connectionLimit ?= ?init\w*\.connectionLimit/.test(text))) fail('the image\'s bundle has no relay connectionLimit (patches/)')
  console.log(`check-image: none of the ${devOnly.length} dev-only packages installed; @punchgate/node links to packages/node`)

  // Image paths in the environment (the identity on a volume) point into the temp root.
  for (const [name, value] of Object.entries(env)) {
    if (volumes.some(volume => value === volume || value.startsWith(`${volume}/`))) env[name] = inRoot(value)
  }
  env.PATH = `${inRoot('usr/local/bin')}:${inRoot('usr/bin')}:${dirname(process.execPath)}`
  // Loopback and free ports, as the image would listen on 0.0.0.0:4001 with compose's settings.
  env.PUNCHGATE_LISTEN = '/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1'
  const asUser = user === 'node' && process.getuid() === 0 ? { uid: NODE_UID, gid: NODE_UID } : {}
  daemon = spawn(entrypoint[0], entrypoint.slice(1), { env, cwd: inRoot(workdir), stdio: ['ignore', 'pipe', 'inherit'], ...asUser })
  const exited = new Promise(resolve => daemon.on('exit', code => resolve(code)))
  const started = await firstEvent(daemon.stdout, 'node.started', 30_000)
  const transports = ['/tcp/', '/quic-v1/'].filter(part => started.addrs.some(addr => addr.includes(part)))
  if (transports.length !== 2) fail(`expected TCP and QUIC listeners, got ${JSON.stringify(started.addrs)}`)
  const key = await stat(env.PUNCHGATE_IDENTITY)
  console.log(`check-image: ${entrypoint.join(' ')} started as uid ${key.uid}: ${started.peerId} on ${started.addrs.join(' ')}`)
  daemon.kill('SIGTERM')
  const code = await exited
  if (code !== 0) fail(`the daemon exited ${code} on SIGTERM`)
  console.log('check-image: passed')
} catch (err) {
  console.error(`check-image: ${err instanceof CheckFailed ? err.message : err.stack}`)
  process.exitCode = 1
} finally {
  daemon?.kill('SIGKILL')
  if (keep) console.log(`check-image: kept ${root}`)
  else await rm(root, { recursive: true, force: true })
}

async function copy (args, target) {
  const from = args.find(arg => arg.startsWith('--from='))
  const paths = args.filter(arg => !arg.startsWith('--'))
  const dest = paths.pop()
  for (const source of paths) {
    // Every stage shares the temp root, so copying between stages is copying in place.
    const src = from != null ? target(source) : join(REPO, source)
    const to = dest.endsWith('/') ? join(target(dest), source.split('/').at(-1)) : target(dest)
    if (src === to) continue
    await mkdir(dirname(to), { recursive: true })
    await cp(src, to, { recursive: true })
  }
}

async function run (command, target) {
  for (const part of command.split('&&').map(step => step.trim())) {
    const [program, ...args] = part.split(/\s+/)
    if (program === 'npm') {
      console.log(`check-image: ${part}`)
      const path = `${dirname(process.execPath)}:${process.env.PATH}`
      execFileSync('npm', args, { cwd: target('.'), stdio: 'inherit', env: { ...process.env, PATH: path } })
    } else if (program === 'ln' && args[0] === '-s') {
      await mkdir(dirname(target(args[2])), { recursive: true })
      await symlink(target(args[1]), target(args[2]))
    } else if (program === 'mkdir') {
      await mkdir(target(args[0]), { recursive: true })
    } else if (program === 'chown' && args[0] === 'node:node') {
      if (process.getuid() === 0) await chown(target(args[1]), NODE_UID, NODE_UID)
    } else {
      fail(`unknown RUN step "${part}": teach scripts/check-image.mjs`)
    }
  }
}

async function firstEvent (stream, event, timeoutMs) {
  const lines = createInterface({ input: stream })
  const timer = setTimeout(() => lines.close(), timeoutMs)
  try {
    for await (const line of lines) {
      const record = JSON.parse(line)
      if (record.event === event) return record
    }
  } finally {
    clearTimeout(timer)
  }
  fail(`no ${event} from the daemon (it exited, or ${timeoutMs} ms passed)`)
}
