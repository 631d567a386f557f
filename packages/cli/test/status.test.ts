import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { main } from '../src/main.ts'
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
