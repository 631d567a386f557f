/**
 * The container deployment, checked without a container engine: compose.yaml and the
 * Containerfile are parsed and their PUNCHGATE_* settings run through the daemon's own
 * settings parser, the NAT-lab profile is compared with scripts/nat-lab.sh, and the
 * image's command line (`punchgate` on PATH, the image's environment) starts a daemon.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmod, copyFile, mkdir, readFile, symlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { parse } from 'yaml'
import { daemonSettings, runOptions } from '../src/commands/run.ts'
import { envVariable } from '../src/env.ts'
import { BIN, cli, tempDir } from './fixtures.ts'

const REPO = new URL('../../../', import.meta.url).pathname

interface Service {
  image?: string
  profiles?: string[]
  ports?: string[]
  environment?: Record<string, string>
  volumes?: string[]
  command?: string[]
  entrypoint?: string[]
  network_mode?: string
  depends_on?: string[]
  networks?: Record<string, { ipv4_address: string }>
  cap_drop?: string[]
  security_opt?: string[]
  read_only?: boolean
  tmpfs?: string[]
}

interface Compose {
  services: Record<string, Service>
  networks: Record<string, { ipam: { config: Array<{ subnet: string, gateway: string }> } }>
}

const compose = parse(await readFile(join(REPO, 'compose.yaml'), 'utf8'), { merge: true }) as Compose
const containerfile = instructions(await readFile(join(REPO, 'Containerfile'), 'utf8'))
const finalStage = containerfile.slice(containerfile.findLastIndex(([op]) => op === 'FROM'))
const imageEnv = envPairs(finalStage.filter(([op]) => op === 'ENV').map(([, args]) => args).join(' '))

/** Instruction and arguments of each line, continuations joined, comments dropped. */
function instructions (text: string): Array<[string, string]> {
  return text.replace(/\\\n/g, ' ').split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
    .map(line => {
      const [op, ...rest] = line.split(/\s+/)
      return [(op as string).toUpperCase(), rest.join(' ')]
    })
}

function envPairs (text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/(\w+)=(\S+)/g)].map(match => [match[1], match[2]]))
}

/** Compose's variable interpolation, for the forms compose.yaml uses. */
function interpolate (environment: Record<string, string>, shell: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(environment).map(([name, value]) => [name,
    String(value).replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_all, variable: string, fallback?: string) =>
      shell[variable] !== undefined && shell[variable] !== '' ? shell[variable] : fallback ?? '')]))
}

/** The environment a service's daemon sees: the image's, then the service's. */
function serviceEnv (name: string, shell: Record<string, string> = {}): Record<string, string> {
  const service = compose.services[name]
  assert.ok(service != null, name)
  return { ...imageEnv, ...interpolate(service.environment ?? {}, shell) }
}

function daemonServices (): string[] {
  // lab-boot's entrypoint only copies its key to a 0600 file, then execs punchgate.
  const runsPunchgate = (service: Service): boolean => service.entrypoint == null || String(service.entrypoint.at(-1)).endsWith('exec punchgate')
  return Object.entries(compose.services).filter(([, service]) => service.image === 'punchgate:latest' && runsPunchgate(service))
    .map(([name]) => name)
}

function labConstant (script: string, name: string): string {
  const value = new RegExp(`\\b${name}=(\\S+)`).exec(script)?.[1]
  assert.ok(value != null, name)
  return value
}

describe('compose.yaml', () => {
  it('runs by default only the VPS bootstrap: public, TCP and QUIC on port 4001, splices on 4002, UDP punching on 4003, identity on a volume', () => {
    const always = Object.entries(compose.services).filter(([, service]) => service.profiles == null).map(([name]) => name)
    assert.deepEqual(always, ['bootstrap'])
    const bootstrap = compose.services.bootstrap as Service
    assert.deepEqual(bootstrap.ports, ['4001:4001/tcp', '4001:4001/udp', '4002:4002/tcp', '4003:4003/udp'])
    assert.deepEqual(bootstrap.volumes, ['punchgate-data:/data'])
    const settings = daemonSettings({}, serviceEnv('bootstrap'))
    assert.deepEqual(settings.config.listen, ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/udp/4001/quic-v1'])
    assert.deepEqual(settings.config.bootstrap, [])
    // The published 4002 is where the node takes splices by default (docs/splice.md).
    assert.deepEqual(settings.config.relaySplice?.at, { host: '0.0.0.0', port: 4002 })
    // The published UDP 4003 is UDP punching's socket, where peers learn their UDP mapping.
    assert.deepEqual([settings.config.udpPunch, settings.config.udpPunchPort], [true, 4003])
    assert.deepEqual(settings.config.announce, [])
    assert.equal(settings.identityPath, '/data/identity.key')
  })

  it('runs every punchgate service with no capabilities, no privilege gain and a read-only root; each daemon writes only to its /data volume and /tmp', () => {
    const images = Object.entries(compose.services).filter(([, service]) => service.image === 'punchgate:latest')
    assert.deepEqual(images.map(([name]) => name), ['bootstrap', 'lab-boot', 'client', 'workhorse', 'echo'])
    for (const [name, service] of images) {
      assert.deepEqual(service.cap_drop, ['ALL'], name)
      assert.ok(service.security_opt?.includes('no-new-privileges:true'), `${name}: security_opt ${JSON.stringify(service.security_opt)}`)
      assert.equal(service.read_only, true, name)
    }
    for (const name of daemonServices()) {
      const service = compose.services[name] as Service
      const mounts = (service.volumes ?? []).map(volume => volume.split(':'))
      // A named volume (not a host path) on /data: the image's /data, owned by its user, is copied into it.
      assert.ok(mounts.some(([source, target, mode]) => target === '/data' && !/^[./]/.test(source ?? '') && mode !== 'ro'), `${name}: no named volume on /data`)
      const writable = [...mounts.filter(([, , mode]) => mode !== 'ro').map(([, target]) => target), ...(service.tmpfs ?? [])]
      const env = serviceEnv(name)
      const { knownProviders } = daemonSettings({}, env).config
      for (const path of [env.PUNCHGATE_IDENTITY, env.PUNCHGATE_CONTROL, env.XDG_STATE_HOME, knownProviders]) {
        assert.ok(path != null && writable.some(dir => path === dir || path.startsWith(`${dir}/`)), `${name}: ${path} is on the read-only root`)
      }
    }
  })

  it('passes PUNCHGATE_ANNOUNCE from the shell or .env to the bootstrap', () => {
    const announce = '/ip4/198.51.100.4/tcp/4001,/ip4/198.51.100.4/udp/4001/quic-v1'
    const settings = daemonSettings({}, serviceEnv('bootstrap', { PUNCHGATE_ANNOUNCE: announce }))
    assert.deepEqual(settings.config.announce, announce.split(','))
  })

  it('sets only PUNCHGATE_* variables that are daemon options, with values the daemon accepts', () => {
    const known = new Set(Object.keys(runOptions).map(envVariable))
    assert.deepEqual(daemonServices(), ['bootstrap', 'lab-boot', 'client', 'workhorse'])
    for (const name of daemonServices()) {
      const env = serviceEnv(name)
      for (const variable of Object.keys(env).filter(key => key.startsWith('PUNCHGATE_'))) {
        assert.ok(known.has(variable), `${name}: ${variable} is not an option`)
      }
      assert.doesNotThrow(() => daemonSettings({}, env), name)
    }
  })

  it('has the natlab profile mirror the addresses of scripts/nat-lab.sh', async () => {
    const script = await readFile(join(REPO, 'scripts', 'nat-lab.sh'), 'utf8')
    const boot = labConstant(script, 'BOOT_IP')
    const sides = [
      { host: 'client', net: 'client-net', router: 'router-a', lanNet: 'lab-lan-a' },
      { host: 'workhorse', net: 'workhorse-net', router: 'router-b', lanNet: 'lab-lan-b' }
    ]
    const address = (service: string, network: string): string | undefined =>
      compose.services[service]?.networks?.[network]?.ipv4_address
    assert.equal(address('lab-boot', 'lab-internet'), boot)
    for (const { host, net, router, lanNet } of sides) {
      const wan = labConstant(script, `ROUTER_WAN_${host}`)
      const lan = labConstant(script, `LAN_${host}`)
      assert.equal(address(router, 'lab-internet'), wan, router)
      assert.equal(address(router, lanNet), `${lan}.1`, router)
      assert.deepEqual(compose.services[router]?.command, ['nat-router', `${lan}.0/24`])
      assert.equal(address(net, lanNet), `${lan}.2`, net)
      assert.deepEqual(compose.services[net]?.command, ['lan-host', `${lan}.1`])
      assert.equal(compose.services[host]?.network_mode, `service:${net}`)
      assert.equal(compose.networks[lanNet]?.ipam.config[0]?.subnet, `${lan}.0/24`)
    }
    for (const [name, service] of Object.entries(compose.services)) {
      if (name !== 'bootstrap') assert.deepEqual(service.profiles, ['natlab'], name)
    }
  })

  it('has the lab client tunnel echo by name to the workhorse, both bootstrapping from the lab key', async t => {
    // As the lab-boot entrypoint does: git checks the key out 0644, which punchgate refuses.
    const key = join(await tempDir(t), 'lab-boot.key')
    await copyFile(join(REPO, 'deploy', 'natlab', 'lab-boot.key'), key)
    await chmod(key, 0o600)
    const { stdout } = await cli(['id', '--identity', key])
    const bootAddr = `/ip4/11.0.0.2/tcp/4001/p2p/${stdout.trim()}`
    const client = daemonSettings({}, serviceEnv('client')).config
    const workhorse = daemonSettings({}, serviceEnv('workhorse')).config
    assert.deepEqual(client.bootstrap, [bootAddr])
    assert.deepEqual(workhorse.bootstrap, [bootAddr])
    assert.deepEqual(client.tunnels.map(({ service, peer }) => ({ service, peer })), [{ service: 'echo', peer: undefined }])
    assert.deepEqual(workhorse.expose, [{ name: 'echo', target: { host: '127.0.0.1', port: 7000 } }])
    // The echo server shares the workhorse's network namespace and listens on the exposed port.
    const echo = compose.services.echo as Service
    assert.equal(echo.network_mode, compose.services.workhorse?.network_mode)
    assert.deepEqual(echo.entrypoint, ['node', '/lab/echo-server.mjs', '7000'])
    const labKey = compose.services['lab-boot']?.volumes?.[0]?.split(':')
    assert.deepEqual(labKey, ['./deploy/natlab/lab-boot.key', '/lab/lab-boot.key', 'ro'])
    const entrypoint = compose.services['lab-boot']?.entrypoint ?? []
    assert.equal(entrypoint.at(-1), `install -m 600 /lab/lab-boot.key ${serviceEnv('lab-boot').PUNCHGATE_IDENTITY} && exec punchgate`)
  })
})

describe('Containerfile', () => {
  it('builds on Node 24 with production dependencies only, and runs `punchgate` as a non-root user', () => {
    const base = containerfile.find(([op]) => op === 'ARG')?.[1]
    assert.match(base ?? '', /^NODE_IMAGE=node:24[-.]/)
    // The image's node_modules come from the stage that installs without dev dependencies.
    const copiedModules = finalStage.find(([op, args]) => op === 'COPY' && / node_modules$/.test(args))?.[1] ?? ''
    const stage = /--from=(\S+)/.exec(copiedModules)?.[1]
    const from = containerfile.findIndex(([op, args]) => op === 'FROM' && args.endsWith(` AS ${stage}`))
    assert.ok(from >= 0, `node_modules come from a stage of the Containerfile: ${copiedModules}`)
    const install = containerfile.slice(from).find(([op, args]) => op === 'RUN' && args.startsWith('npm '))?.[1] ?? ''
    assert.match(install, /^npm ci .*--omit=dev/)
    const last = (op: string): string | undefined => finalStage.findLast(([name]) => name === op)?.[1]
    assert.equal(last('ENTRYPOINT'), '["punchgate"]')
    assert.ok(!['', 'root', '0'].includes(last('USER') ?? ''), last('USER'))
    assert.equal(last('VOLUME'), '/data')
    assert.equal(imageEnv.PUNCHGATE_IDENTITY, '/data/identity.key')
    // The bin script and the bundle it runs (built in the build stage).
    const copied = finalStage.filter(([op]) => op === 'COPY').map(([, args]) => args)
    assert.ok(copied.some(args => args.startsWith('packages/cli/bin ')), 'packages/cli/bin')
    assert.ok(copied.some(args => /^--from=\S+ \S*packages\/cli\/dist packages\/cli\/dist$/.test(args)), 'packages/cli/dist')
  })

  it("has a command line that runs the daemon with the image's and the bootstrap's environment", async t => {
    // As in the image: `punchgate` on PATH is a link to the bin script; Node comes first on PATH.
    const dir = await tempDir(t)
    await mkdir(join(dir, 'bin'))
    await symlink(BIN, join(dir, 'bin', 'punchgate'))
    const env: Record<string, string> = {
      ...serviceEnv('bootstrap'),
      PATH: `${join(dir, 'bin')}:${dirname(process.execPath)}`,
      PUNCHGATE_IDENTITY: join(dir, 'data', 'identity.key')
    }
    // Same listeners, on loopback and free ports: 4001 may be taken on a shared machine.
    env.PUNCHGATE_LISTEN = (env.PUNCHGATE_LISTEN as string).replaceAll('0.0.0.0', '127.0.0.1').replaceAll('/4001', '/0')
    const entrypoint = JSON.parse(finalStage.findLast(([op]) => op === 'ENTRYPOINT')?.[1] ?? '[]') as string[]
    const daemon = spawn(entrypoint[0] as string, entrypoint.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
    t.after(() => daemon.kill('SIGKILL'))
    let stderr = ''
    daemon.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = new Promise(resolve => daemon.on('exit', resolve))

    const started = await firstEvent(daemon.stdout, 'node.started')
    assert.equal(started.role, 'public', stderr)
    const addrs = started.addrs as string[]
    assert.ok(addrs.some(addr => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\//.test(addr)), JSON.stringify(addrs))
    assert.ok(addrs.some(addr => /^\/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1\//.test(addr)), JSON.stringify(addrs))
    const { stdout: peerId } = await cli(['id', '--identity', env.PUNCHGATE_IDENTITY as string])
    assert.equal(started.peerId, peerId.trim())
    daemon.kill('SIGTERM')
    assert.equal(await exited, 0, stderr)
  })
})

async function firstEvent (stream: NodeJS.ReadableStream, event: string): Promise<Record<string, unknown>> {
  for await (const line of createInterface({ input: stream })) {
    const record = JSON.parse(line) as Record<string, unknown>
    if (record.event === event) return record
  }
  throw new Error(`the daemon's stdout ended before ${event}`)
}
