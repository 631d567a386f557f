import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { NodeStatus } from '@punchgate/node'
import { main } from '../src/main.ts'
import { renderStatus } from '../src/view/status.ts'
import { BIN, capture, tempDir } from './fixtures.ts'

/** Runs `punchgate status` with `tool` on PATH as a script printing `output` (and exiting `code`). */
async function statusWith (dir: string, platform: NodeJS.Platform, tool: string, output: string, code = 0): Promise<[number, string]> {
  await writeFile(join(dir, tool), `#!/bin/sh\nprintf '%s' '${output}'\nexit ${code}\n`)
  await chmod(join(dir, tool), 0o755)
  const stdout = capture()
  const exit = await main([process.execPath, BIN, 'status', '--control', join(dir, 'none.sock')],
    { stdout, stderr: capture(), env: { PATH: `${dir}:/usr/bin:/bin`, HOME: dir }, platform })
  return [exit, stdout.text()]
}

describe('punchgate status: the service manager', () => {
  it("systemd: reports is-active's word; the daemon not running is exit 3", async t => {
    const [code, text] = await statusWith(await tempDir(t), 'linux', 'systemctl', 'failed\n', 3)
    assert.equal(code, 3)
    assert.match(text, /^service: systemd --user: failed$/m)
  })

  it('systemd without a user manager: unavailable, with the reason', async t => {
    const dir = await tempDir(t)
    await writeFile(join(dir, 'systemctl'), '#!/bin/sh\necho "Failed to connect to bus: No medium found" >&2\nexit 1\n')
    await chmod(join(dir, 'systemctl'), 0o755)
    const stdout = capture()
    await main([process.execPath, BIN, 'status', '--control', join(dir, 'none.sock')],
      { stdout, stderr: capture(), env: { PATH: `${dir}:/usr/bin:/bin`, HOME: dir }, platform: 'linux' })
    assert.match(stdout.text(), /^service: systemd --user: unavailable \(Failed to connect to bus: No medium found\)$/m)
  })

  it("launchd: reads the job's state from launchctl print; a job not loaded says so", async t => {
    const [, running] = await statusWith(await tempDir(t), 'darwin', 'launchctl', 'gui/501/punchgate = {\n\tstate = running\n}\n')
    assert.match(running, /^service: launchd: running$/m)
    const [, missing] = await statusWith(await tempDir(t), 'darwin', 'launchctl', '', 113)
    assert.match(missing, /^service: launchd: not-loaded$/m)
  })

  it('elsewhere: no service manager, and the live daemon is still asked', async t => {
    const dir = await tempDir(t)
    const stdout = capture()
    const code = await main([process.execPath, BIN, 'status', '--json', '--control', join(dir, 'none.sock')],
      { stdout, stderr: capture(), env: { HOME: dir }, platform: 'freebsd' })
    assert.equal(code, 3)
    const report = JSON.parse(stdout.text())
    assert.equal(report.service.manager, 'none')
    assert.equal(report.daemon, null)
  })
})

describe('punchgate status: who may use each service', () => {
  const ids = ['12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA', '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD']
  const status: NodeStatus = {
    peerId: ids[0] ?? '',
    role: 'private',
    phase: 'ready',
    startedAt: new Date(0).toISOString(),
    listenAddrs: [],
    announcedAddrs: [],
    observedAddrs: [],
    relay: { state: 'off', addrs: [] },
    peers: [],
    services: [
      { name: 'ssh', target: '127.0.0.1:22', access: [ids[0] ?? ''] },
      { name: 'web', target: '127.0.0.1:80', access: 'any' },
      { name: 'db', target: '127.0.0.1:5432', access: 'mesh' },
      { name: 'lan', target: '10.0.0.0/8:22', access: [...ids, ...ids.map(id => id.replace('12D3KooW', '12D3KooX'))] }
    ],
    tunnels: []
  }

  it('shows an ACCESS column: the ids shortened, any, mesh, a long list counted', () => {
    const text = renderStatus({ control: '/run/pg.sock', service: { manager: 'none', state: 'unknown' }, daemon: { status, connects: { open: 0, opened: 0, failed: 0, bytesIn: 0, bytesOut: 0 } } }, new Date(0))
    const table = text.slice(text.indexOf('exposed services'))
    assert.match(table, /NAME +TARGET +ACCESS\n/)
    assert.match(table, /ssh +127\.0\.0\.1:22 +12D3Ko…AJU5SA\n/)
    assert.match(table, /web +127\.0\.0\.1:80 +any\n/)
    assert.match(table, /db +127\.0\.0\.1:5432 +mesh\n/)
    assert.match(table, /lan +10\.0\.0\.0\/8:22 +12D3Ko…AJU5SA, 12D3Ko…Lui6xD \+2 more\n/)
  })
})

describe('punchgate status: port mappings', () => {
  const base: NodeStatus = {
    peerId: '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
    role: 'private',
    phase: 'ready',
    startedAt: new Date(0).toISOString(),
    listenAddrs: [],
    announcedAddrs: [],
    observedAddrs: [],
    relay: { state: 'off', addrs: [] },
    peers: [],
    services: [],
    tunnels: []
  }
  const render = (status: NodeStatus): string =>
    renderStatus({ control: '/run/pg.sock', service: { manager: 'none', state: 'unknown' }, daemon: { status, connects: { open: 0, opened: 0, failed: 0, bytesIn: 0, bytesOut: 0 } } }, new Date(0))

  it('lists each mapping with its router, method and lease; none yet says so; --no-port-mapping shows no line', () => {
    const text = render({
      ...base,
      portMappings: [
        { protocol: 'tcp', internal: '10.2.0.2:4001', external: '11.0.0.12:4001', method: 'upnp-igd', gateway: '10.2.0.1', expiresAt: new Date(31 * 60_000).toISOString() },
        { protocol: 'udp', internal: '10.2.0.2:4001', external: '11.0.0.12:4001', method: 'nat-pmp', gateway: '10.2.0.1', expiresAt: new Date(60_000).toISOString() }
      ]
    })
    assert.match(text, /^mapped: +TCP 11\.0\.0\.12:4001 -> 10\.2\.0\.2:4001 \(UPnP-IGD on 10\.2\.0\.1, lease ends in 31m 00s\)\n +UDP 11\.0\.0\.12:4001 -> 10\.2\.0\.2:4001 \(NAT-PMP on 10\.2\.0\.1, lease ends in 1m 00s\)$/m)
    assert.match(render({ ...base, portMappings: [] }), /^mapped: +none \(no router answered, or nothing to map\)$/m)
    assert.doesNotMatch(render(base), /^mapped:/m)
  })
})
