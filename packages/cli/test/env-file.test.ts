import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { applySettings, readSettings } from '../src/service/env-file.ts'
import { systemdArgument } from '../src/service/units.ts'
import { tempDir } from './fixtures.ts'

const settings = (text: string): string[] => text.split('\n').filter(line => line !== '' && !line.startsWith('#'))

describe('the settings file', () => {
  it('writes plain values bare and values with spaces in double quotes, and reads both back', () => {
    const text = applySettings(undefined, new Map([
      ['PUNCHGATE_IDENTITY', '/Users/a/Library/Application Support/punchgate/identity.key'],
      ['PUNCHGATE_LISTEN', '/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1']
    ]))
    assert.deepEqual(settings(text), [
      'PUNCHGATE_IDENTITY="/Users/a/Library/Application Support/punchgate/identity.key"',
      'PUNCHGATE_LISTEN=/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1'
    ])
    assert.deepEqual(readSettings(text), new Map([
      ['PUNCHGATE_IDENTITY', '/Users/a/Library/Application Support/punchgate/identity.key'],
      ['PUNCHGATE_LISTEN', '/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1']
    ]))
  })

  it('refuses values that systemd, Node and sh would read differently', () => {
    for (const value of ['a"b', 'a\\b', '$HOME/key', 'a`b`', 'a\nb']) {
      assert.throws(() => applySettings(undefined, new Map([['PUNCHGATE_IDENTITY', value]])), { name: 'UsageError' }, value)
    }
  })

  it('replaces a repeated variable by one line where it first stood', () => {
    const text = 'A=1\nPUNCHGATE_EXPOSE=a=127.0.0.1:1\nB=2\nexport PUNCHGATE_EXPOSE=b=127.0.0.1:2\n'
    assert.equal(applySettings(text, new Map([['PUNCHGATE_EXPOSE', 'c=127.0.0.1:3']])), 'A=1\nPUNCHGATE_EXPOSE=c=127.0.0.1:3\nB=2\n')
  })

  it('reads as sh (set -a) and Node (--env-file) read it', async t => {
    const file = join(await tempDir(t), 'punchgate.env')
    const text = applySettings(undefined, new Map([
      ['PUNCHGATE_IDENTITY', '/home/a b/~x/#1 (key).key'],
      ['PUNCHGATE_TUNNEL_BY_NAME', 'db@127.0.0.1:5432,web@127.0.0.1:8080']
    ]))
    await writeFile(file, text)
    const expected = [...readSettings(text).values()]
    const shell = await output('sh', ['-c', `set -a; . "$1"; printf '%s\\n' "$PUNCHGATE_IDENTITY" "$PUNCHGATE_TUNNEL_BY_NAME"`, 'sh', file])
    assert.deepEqual(shell.split('\n').slice(0, 2), expected)
    const node = await output(process.execPath, [`--env-file=${file}`, '-e',
      'console.log(process.env.PUNCHGATE_IDENTITY); console.log(process.env.PUNCHGATE_TUNNEL_BY_NAME)'])
    assert.deepEqual(node.split('\n').slice(0, 2), expected)
  })
})

describe('systemd ExecStart words', () => {
  it('escapes specifiers and variables, and quotes words with spaces', () => {
    assert.equal(systemdArgument('/usr/bin/node'), '/usr/bin/node')
    assert.equal(systemdArgument('/opt/100%/$x'), '/opt/100%%/$$x')
    assert.equal(systemdArgument('/Users/a b/node'), '"/Users/a b/node"')
  })
})

async function output (command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: {} }, (err, stdout) => { if (err != null) reject(err); else resolve(stdout) })
  })
}
