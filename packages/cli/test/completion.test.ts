import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cli } from './fixtures.ts'

const COMMANDS = ['id', 'status', 'connect', 'analyze', 'up', 'down', 'logs', 'keygen', 'swarm-key', 'trust', 'completion']

/** What bash completes for `words` (the last one is being typed), with the printed script loaded. */
async function complete (script: string, words: string[]): Promise<string[]> {
  const program = `${script}\nCOMP_WORDS=(${words.map(w => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}\n` +
    '_punchgate_completions; printf "%s\\n" "${COMPREPLY[@]}"'
  return new Promise((resolve, reject) => {
    execFile('bash', ['--norc', '--noprofile', '-c', program], (err, stdout) => {
      if (err != null) reject(err)
      else resolve(stdout.split('\n').filter(line => line !== ''))
    })
  })
}

describe('punchgate completion', () => {
  it('prints a bash script that names every command and registers for punchgate', async () => {
    const { code, stdout, stderr } = await cli(['completion', 'bash'])
    assert.equal(code, 0)
    assert.equal(stderr, '')
    for (const command of COMMANDS) assert.match(stdout, new RegExp(`\\b${command}\\b`), command)
    assert.match(stdout, /^complete -o default -F _punchgate_completions punchgate$/m)
  })

  it('completes commands, the default command\'s flags and each command\'s own flags in bash', async () => {
    const { stdout: script } = await cli(['completion', 'bash'])
    assert.deepEqual(await complete(script, ['punchgate', 'tr']), ['trust'])
    assert.deepEqual(await complete(script, ['punchgate', '--tunnel-by']), ['--tunnel-by-name'])
    assert.deepEqual(await complete(script, ['punchgate', 'trust', '']).then(w => w.slice(0, 2)), ['list', 'forget'])
    assert.deepEqual(await complete(script, ['punchgate', 'logs', '-']).then(w => w.filter(x => x.length === 2)), ['-f', '-n'])
    assert.deepEqual(await complete(script, ['punchgate', 'status', '--j']), ['--json'])
  })

  it('prints a zsh script (bashcompinit) for zsh, by argument or from $SHELL', async () => {
    const byArg = await cli(['completion', 'zsh'])
    const byShell = await cli(['completion'], { SHELL: '/usr/bin/zsh' })
    assert.equal(byArg.code, 0)
    assert.match(byArg.stdout, /^autoload -U \+X bashcompinit && bashcompinit$/m)
    assert.equal(byShell.stdout, byArg.stdout)
    assert.doesNotMatch((await cli(['completion'], { SHELL: '/bin/bash' })).stdout, /bashcompinit/)
  })

  it('refuses other shells with one line, exit 2', async () => {
    const { code, stderr } = await cli(['completion', 'fish'])
    assert.equal(code, 2)
    assert.equal(stderr.split('\n').filter(Boolean).length, 1)
  })
})
