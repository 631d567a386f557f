import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KnownProviders } from '@punchgate/node'
import { daemonSettings } from '../src/commands/run.ts'
import { renderStatus } from '../src/view/status.ts'
import { assertUsageError, cli, lines, tempDir } from './fixtures.ts'

const A = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const B = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'

describe('punchgate trust list|forget', () => {
  it('lists the pins of the default identity, forgets one, and says when there is nothing to forget', async (t) => {
    const state = await tempDir(t)
    const env = { XDG_STATE_HOME: state }
    const file = join(state, 'punchgate', 'known-providers')
    assert.deepEqual(await cli(['trust', 'list'], env), { code: 0, stdout: `no pinned providers (${file})\n`, stderr: '' })

    const known = new KnownProviders(file)
    await known.pin('echo', A, new Date('2026-12-04T10:00:00Z'))
    await known.pin('ssh', B, new Date('2026-12-04T11:00:00Z'))
    const listed = await cli(['trust', 'list'], env)
    assert.equal(listed.code, 0, listed.stderr)
    assert.deepEqual(lines(listed.stdout).map(l => l.trim().split(/\s+/)), [
      ['SERVICE', 'PEER', 'FIRST', 'SEEN'],
      ['echo', A, '2026-12-04T10:00:00.000Z'],
      ['ssh', B, '2026-12-04T11:00:00.000Z']
    ])

    const forgot = await cli(['trust', 'forget', 'echo'], env)
    assert.equal(forgot.code, 0, forgot.stderr)
    assert.match(forgot.stdout, new RegExp(`^forgot echo \\(was ${A}\\)`))
    assert.doesNotMatch(await readFile(file, 'utf8'), /^echo /m)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal(known.pinned('ssh'), B, 'the other pin stays')

    const again = await cli(['trust', 'forget', 'echo'], env)
    assert.equal(again.code, 1)
    assert.match(again.stderr, /no provider is pinned for service "echo" in .*known-providers/)
  })

  it('follows --identity like the daemon (FILE.known-providers), and --known-providers beats it', async (t) => {
    const dir = await tempDir(t)
    const identity = join(dir, 'alice.key')
    await new KnownProviders(`${identity}.known-providers`).pin('echo', A)
    const listed = await cli(['trust', 'list', '--identity', identity], { XDG_STATE_HOME: dir })
    assert.match(listed.stdout, new RegExp(`echo\\s+${A}`))
    const other = join(dir, 'other')
    const explicit = await cli(['trust', 'list', '--identity', identity, '--known-providers', other], { XDG_STATE_HOME: dir })
    assert.equal(explicit.stdout, `no pinned providers (${other})\n`)
    assert.equal(daemonSettings({ identity }, { XDG_STATE_HOME: dir }).config.knownProviders, `${identity}.known-providers`)
    assert.equal(daemonSettings({}, { XDG_STATE_HOME: dir }).config.knownProviders, join(dir, 'punchgate', 'known-providers'))
  })

  it('a broken file is a usage error naming the file and line; forget needs a service', async (t) => {
    const dir = await tempDir(t)
    const file = join(dir, 'known')
    await writeFile(file, `echo ${A}\nssh not-a-peer\n`, { mode: 0o600 })
    const broken = await cli(['trust', 'list', '--known-providers', file])
    assert.equal(broken.code, 2)
    assert.match(broken.stderr, new RegExp(`--known-providers "${file}": line 2: "not-a-peer" is not a peer id`))
    const bare = await cli(['trust', 'forget', '--known-providers', file])
    assert.equal(bare.code, 2)
    assert.match(bare.stderr, /trust forget needs the SERVICE/)
  })
})

describe('the daemon\'s trust flags', () => {
  it('--trust and PUNCHGATE_TRUST reach the config; --trust-file adds to them', async (t) => {
    const dir = await tempDir(t)
    const file = join(dir, 'trusted')
    await writeFile(file, `# the real one\n${B}\n`)
    assert.deepEqual(daemonSettings({ trust: [A], 'trust-file': file }, {}).config.trust, [A, B])
    assert.deepEqual(daemonSettings({}, { PUNCHGATE_TRUST: `${A},${B}` }).config.trust, [A, B])
  })

  it('a --trust-file with no ids, or a bad --trust, stops with exit 2', async (t) => {
    const dir = await tempDir(t)
    const empty = join(dir, 'empty')
    await writeFile(empty, '# nobody\n')
    await assertUsageError(['--trust-file', empty], ['--trust-file', empty, 'holds no peer id'], dir)
    await assertUsageError(['--trust', 'nope'], ['--trust "nope"', 'not a peer id'], dir)
    await assertUsageError(['--tunnel-by-name', 'echo@127.0.0.1:0?peer='], ['--tunnel-by-name', '?peer= needs'], dir)
  })
})

describe('status with untrusted providers', () => {
  it('lists each tunnel\'s untrusted providers and why it is down', () => {
    const tunnel = { service: 'echo', bind: '127.0.0.1:2222', connections: 0, opened: 0, rejected: 0, bytesIn: 0, bytesOut: 0 }
    const out = renderStatus({
      control: '/run/x.sock',
      service: { manager: 'none', state: 'unavailable' },
      daemon: {
        status: {
          peerId: A, role: 'private', phase: 'ready', startedAt: new Date(0).toISOString(), listenAddrs: [], announcedAddrs: [], observedAddrs: [],
          relay: { state: 'reserved', addrs: [] }, peers: [], services: [],
          tunnels: [
            { ...tunnel, tunnel: 'echo@127.0.0.1:2222', status: 'failed', untrusted: [B], reason: 'no trusted provider; `punchgate trust forget echo` to accept another' },
            { ...tunnel, tunnel: 'ok@127.0.0.1:2223', status: 'direct', peer: A }
          ]
        },
        connects: { open: 0, opened: 0, failed: 0, bytesIn: 0, bytesOut: 0 }
      }
    }, new Date(1000))
    const section = out.slice(out.indexOf('untrusted providers'))
    assert.match(section, /echo@127\.0\.0\.1:2222\s+12D3Ko…rRJsNK\s+no trusted provider; `punchgate trust forget echo` to accept another/)
    assert.doesNotMatch(section, /ok@/)
    assert.doesNotMatch(renderStatus({ control: '', service: { manager: 'none', state: 'unavailable' } }), /untrusted/)
  })
})
