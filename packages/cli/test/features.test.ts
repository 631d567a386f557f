/**
 * The CLI side of UDP, access control, private meshes, relay choice, expose-net and the
 * key commands: flags and environment onto the config, bad input, key files.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from '../src/main.ts'
import { daemonSettings, type RunArgs } from '../src/commands/run.ts'
import { assertUsageError, captureIo, cli, lines, tempDir } from './fixtures.ts'

const PEER = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'
const OTHER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const BOOT = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`
const PEER_ID = /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/

async function settings (args: string[], env: NodeJS.ProcessEnv = {}): Promise<ReturnType<typeof daemonSettings>> {
  return daemonSettings((await parse(args, captureIo())).args as RunArgs, env)
}

describe('flags and environment for the new options', () => {
  it('maps every new flag onto the node config', async () => {
    const { config } = await settings([
      '--expose', `dns=127.0.0.1:53/udp?allow=${PEER}`,
      '--expose-net', 'lan=192.168.1.0/24:22,80,443',
      '--tunnel-by-name', 'dns@127.0.0.1:5353/udp', '--tunnel', `${PEER}:lan@127.0.0.1:2222>192.168.1.10:22`,
      '--allow', PEER, '--allow', OTHER, '--max-sessions', '64', '--max-sessions-per-peer', '8',
      '--relay-allow', 'allowed', '--relay-max-reservations', '10', '--relay-max-bytes', '1GiB', '--relay-max-duration', '1h',
      '--relay-mode', 'off', '--udp-idle-timeout', '30s', '--max-connections', '2000'
    ])
    assert.deepEqual(config.expose, [{ name: 'dns', target: { host: '127.0.0.1', port: 53 }, transport: 'udp', allow: [PEER] }])
    assert.deepEqual(config.exposeNet.map(n => [n.name, n.networks.length, n.ports.length]), [['lan', 1, 3]])
    assert.deepEqual(config.tunnels.map(t => [t.transport, t.destination]), [[undefined, { host: '192.168.1.10', port: 22 }], ['udp', undefined]])
    assert.deepEqual(config.allow, [PEER, OTHER])
    assert.deepEqual(config.limits, { maxSessions: 64, maxSessionsPerPeer: 8 })
    assert.equal(config.relayAllow, 'allowed')
    assert.deepEqual(config.relay, { maxReservations: 10, maxBytes: 1024n ** 3n, maxDurationMs: 3_600_000 })
    assert.deepEqual(config.relayMode, { mode: 'off' })
    assert.equal(config.udpIdleMs, 30_000)
    assert.equal(config.maxConnections, 2000)
  })

  it('splits PUNCHGATE_EXPOSE and PUNCHGATE_EXPOSE_NET only where a new NAME= starts', async () => {
    const { config } = await settings([], {
      PUNCHGATE_EXPOSE: `ssh=127.0.0.1:22?allow=${PEER},${OTHER},dns=127.0.0.1:53/udp`,
      PUNCHGATE_EXPOSE_NET: 'lan=192.168.1.0/24,10.0.0.0/8:22,80,dmz=172.16.0.0/12:443',
      PUNCHGATE_ALLOW: `${PEER}, ${OTHER}`
    })
    assert.deepEqual(config.expose.map(e => [e.name, e.allow]), [['ssh', [PEER, OTHER]], ['dns', undefined]])
    assert.deepEqual(config.exposeNet.map(n => [n.name, n.networks.length, n.ports.map(p => p.from)]), [['lan', 2, [22, 80]], ['dmz', 1, [443]]])
    assert.deepEqual(config.allow, [PEER, OTHER])
  })

  it('adds the ids of --allow-file to --allow', async t => {
    const file = join(await tempDir(t), 'allowed')
    await writeFile(file, `# the laptop\n${OTHER}   # trailing comment\n\n  \n`)
    const { config } = await settings(['--allow', PEER, '--allow-file', file])
    assert.deepEqual(config.allow, [PEER, OTHER])
  })

  it('reads a 0600 swarm key, and listens on TCP only by default', async t => {
    const key = join(await tempDir(t), 'swarm.key')
    assert.equal((await cli(['swarm-key', '--output', key])).code, 0)
    const { config } = await settings(['--swarm-key', key])
    assert.deepEqual(Buffer.from(config.swarmKey ?? []), await readFile(key))
    assert.deepEqual(config.listen, ['/ip4/0.0.0.0/tcp/0'])
  })
})

describe('bad input for the new options', () => {
  const cases: Array<[string, string[], string[], NodeJS.ProcessEnv?]> = [
    ['unknown transport', ['--expose', 'dns=127.0.0.1:53/sctp'], ['--expose', '"dns=127.0.0.1:53/sctp"']],
    ['bad peer id in ?allow=', ['--expose', 'ssh=127.0.0.1:22?allow=bob'], ['--expose', '"bob" is not a peer id']],
    ['unknown ?option', ['--expose', `ssh=127.0.0.1:22?only=${PEER}`], ['--expose', 'unknown option "only"']],
    ['bad network in --expose-net', ['--expose-net', 'lan=192.168.1.0/40:22'], ['--expose-net', 'prefix length']],
    ['bad ports in --expose-net', ['--expose-net', 'lan=192.168.1.0/24:ssh'], ['--expose-net', '"ssh" is not a port']],
    ['host name as destination', ['--tunnel-by-name', 'lan@127.0.0.1:2222>nas.lan:22'], ['--tunnel-by-name', 'IP:PORT']],
    ['bad --allow', ['--allow', 'alice'], ['--allow', '"alice"', 'not a peer id']],
    ['bad PUNCHGATE_ALLOW entry', [], ['--allow', '"alice"'], { PUNCHGATE_ALLOW: `${PEER},alice` }],
    ['--relay-allow not among the choices', ['--relay-allow', 'friends'], ['relay-allow', '"friends"']],
    ['--relay-allow allowed without an allow-list', ['--relay-allow', 'allowed'], ['--relay-allow', 'needs --allow']],
    ['relay server limits on a private node', ['--bootstrap', BOOT, '--role', 'private', '--relay-max-bytes', '1GiB'], ['--relay-max-bytes', 'only a public node']],
    ['--role private without --bootstrap', ['--role', 'private'], ['--role', 'private', 'needs --bootstrap']],
    ['--role not among the choices', ['--role', 'relay'], ['role', '"relay"']],
    ['--role public with --listen none', ['--role', 'public', '--bootstrap', BOOT, '--listen', 'none'], ['--listen', 'none', '--role public must listen']],
    ['unreadable size', ['--relay-max-bytes', 'lots'], ['--relay-max-bytes', '"lots"', 'positive size']],
    ['unreadable duration', ['--relay-max-duration', 'forever'], ['--relay-max-duration', '"forever"']],
    ['zero --max-sessions', ['--max-sessions', '0'], ['--max-sessions', 'positive whole number']],
    ['bad --relay-mode', ['--relay-mode', 'sometimes'], ['--relay-mode', '"sometimes"']],
    ['--relay-mode multiaddr without /p2p/', ['--relay-mode', '/ip4/1.2.3.4/tcp/4001'], ['--relay-mode', '/p2p/']],
    ['bad --udp-idle-timeout', ['--udp-idle-timeout', '0s'], ['--udp-idle-timeout', 'positive duration']],
    ['missing --allow-file', ['--allow-file', '/nonexistent/allowed'], ['--allow-file', 'cannot read (ENOENT)']],
    ['keygen without --output', ['keygen'], ['Missing required argument: output']],
    ['swarm-key with --output but no path', ['swarm-key', '--output'], ['Not enough arguments', 'output']]
  ]
  for (const [what, args, parts, env] of cases) {
    it(`${what}: one line, exit 2`, async t => assertUsageError(args, parts, await tempDir(t), env))
  }

  it('a malformed line in --allow-file names the file and line: exit 2', async t => {
    const dir = await tempDir(t)
    const file = join(dir, 'allowed')
    await writeFile(file, `${PEER}\n# ok so far\nbob\n`)
    await assertUsageError(['--allow-file', file], ['--allow-file', 'line 3', '"bob" is not a peer id'], dir)
  })
})

describe('keygen and swarm-key', () => {
  it('keygen writes a 0600 key, prints its peer id, and `id` agrees', async t => {
    const key = join(await tempDir(t), 'keys', 'node.key')
    const made = await cli(['keygen', '--output', key])
    assert.equal(made.code, 0, made.stderr)
    assert.match(made.stdout.trim(), PEER_ID)
    assert.equal((await stat(key)).mode & 0o777, 0o600)
    assert.equal((await cli(['id', '--identity', key])).stdout, made.stdout)
  })

  for (const command of ['keygen', 'swarm-key']) {
    it(`${command} refuses to overwrite without --force (exit 1, file untouched), replaces with it`, async t => {
      const file = join(await tempDir(t), 'key')
      await writeFile(file, 'precious', { mode: 0o600 })
      const refused = await cli([command, '--output', file])
      assert.equal(refused.code, 1)
      assert.deepEqual(lines(refused.stderr), [`punchgate: --output ${JSON.stringify(file)}: already exists; pass --force to overwrite it`])
      assert.equal(await readFile(file, 'utf8'), 'precious')

      const forced = await cli([command, '-o', file, '--force'])
      assert.equal(forced.code, 0, forced.stderr)
      assert.notEqual(await readFile(file, 'utf8'), 'precious')
      assert.equal((await stat(file)).mode & 0o777, 0o600)
    })
  }

  it('swarm-key writes the pnet format, a new key each time', async t => {
    const dir = await tempDir(t)
    for (const name of ['a', 'b']) assert.equal((await cli(['swarm-key', '--output', join(dir, name)])).code, 0)
    const [a, b] = await Promise.all([readFile(join(dir, 'a'), 'utf8'), readFile(join(dir, 'b'), 'utf8')])
    assert.match(a, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    assert.notEqual(a, b)
  })

  it('the daemon refuses a swarm key the group or others can read: exit 1, naming the mode', async t => {
    const dir = await tempDir(t)
    const key = join(dir, 'swarm.key')
    assert.equal((await cli(['swarm-key', '--output', key])).code, 0)
    await chmod(key, 0o640)
    const { code, stdout, stderr } = await cli(['--swarm-key', key, '--identity', join(dir, 'id.key'), '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(code, 1)
    assert.equal(stdout, '')
    assert.deepEqual(lines(stderr), [`punchgate: --swarm-key ${JSON.stringify(key)}: is accessible by group or others (mode 0640); run chmod 600 on it`])
  })

  it('the daemon refuses a file that is not a swarm key: exit 1', async t => {
    const dir = await tempDir(t)
    const key = join(dir, 'swarm.key')
    await writeFile(key, 'hunter2\n', { mode: 0o600 })
    const { code, stderr } = await cli(['--swarm-key', key, '--identity', join(dir, 'id.key')])
    assert.equal(code, 1)
    assert.match(stderr, /^punchgate: --swarm-key ".*": not a swarm key/)
  })
})
