import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, KnownProviders, KnownProvidersError, parseKnownProviders, readTrustFile, splitProviders, trustRule } from '../src/index.ts'

const A = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const B = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'

async function tempDir (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'punchgate-known-'))
  t.after(async () => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('the known-providers file', () => {
  it('parses SERVICE PEER_ID lines with their first-seen date; comments and blank lines are skipped', () => {
    const pins = parseKnownProviders('f', `# header\n\necho ${A}  # first seen 2026-12-04T10:00:00.000Z\r\nssh\t${B}\n`)
    assert.deepEqual([...pins.values()], [
      { service: 'echo', peer: A, firstSeen: '2026-12-04T10:00:00.000Z' },
      { service: 'ssh', peer: B }
    ])
  })

  const bad: Array<[string, string, RegExp]> = [
    ['a line with one field', `echo\n`, /line 1: expected SERVICE PEER_ID/],
    ['three fields', `echo ${A} extra\n`, /line 1: expected SERVICE PEER_ID/],
    ['a bad peer id', `# c\necho nope\n`, /line 2: "nope" is not a peer id/],
    ['a bad service name', `a/b ${A}\n`, /line 1: "a\/b" is not a service name/],
    ['a service pinned twice', `echo ${A}\necho ${B}\n`, /line 2: service echo is pinned twice/]
  ]
  for (const [what, text, message] of bad) {
    it(`refuses ${what}, naming the file and the line`, () => {
      assert.throws(() => parseKnownProviders('/x/known-providers', text), (err: Error) =>
        err instanceof KnownProvidersError && err.kind === 'usage' && message.test(err.message) &&
        err.message.startsWith('--known-providers "/x/known-providers": '))
    })
  }

  it('pins the first provider only, writes the file 0600 atomically, and forgets', async (t) => {
    const path = join(await tempDir(t), 'state', 'known-providers')
    const known = new KnownProviders(path)
    assert.equal(known.pinned('echo'), undefined, 'a missing file has no pins')
    assert.deepEqual(await known.pin('echo', A, new Date('2026-12-04T10:00:00Z')), { peer: A, added: true })
    assert.deepEqual(await known.pin('echo', B), { peer: A, added: false }, 'a second provider does not replace the pin')
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.match(await readFile(path, 'utf8'), new RegExp(`^echo ${A}  # first seen 2026-12-04T10:00:00.000Z$`, 'm'))
    assert.deepEqual(new KnownProviders(path).list(), [{ service: 'echo', peer: A, firstSeen: '2026-12-04T10:00:00.000Z' }])

    assert.equal(await known.forget('echo'), A)
    assert.equal(await known.forget('echo'), undefined)
    assert.equal(new KnownProviders(path).pinned('echo'), undefined)
  })

  it('two pins at once: exactly one wins', async (t) => {
    const known = new KnownProviders(join(await tempDir(t), 'known-providers'))
    const [first, second] = await Promise.all([known.pin('echo', A), known.pin('echo', B)])
    assert.equal(first.peer, second.peer)
    assert.equal([first, second].filter(p => p.added).length, 1)
    assert.equal(known.pinned('echo'), first.peer)
  })

  it('sees another process\'s change (a forget) without being told', async (t) => {
    const path = join(await tempDir(t), 'known-providers')
    const daemon = new KnownProviders(path)
    await daemon.pin('echo', A)
    assert.equal(daemon.pinned('echo'), A)
    await new KnownProviders(path).forget('echo')
    assert.equal(daemon.pinned('echo'), undefined)
  })

  it('refuses a file others may write', async (t) => {
    const path = join(await tempDir(t), 'known-providers')
    await writeFile(path, `echo ${A}\n`, { mode: 0o600 })
    await chmod(path, 0o666)
    assert.throws(() => new KnownProviders(path).pinned('echo'), /writable by group or others \(mode 0666\)/)
  })

  it('without a path, pins live in memory', async () => {
    const known = new KnownProviders()
    await known.pin('echo', A)
    assert.equal(known.pinned('echo'), A)
  })
})

describe('trust rules', () => {
  const known = new KnownProviders()

  it('?peer= beats --trust, --trust beats the pin, and with none it is first use', async () => {
    await known.pin('pinned', B)
    assert.deepEqual(trustRule('echo', { peer: [A], trust: [B] }, known), { source: 'peer', trusted: new Set([A]) })
    assert.deepEqual(trustRule('pinned', { trust: [A] }, known), { source: 'trust', trusted: new Set([A]) })
    assert.deepEqual(trustRule('pinned', { trust: [] }, known), { source: 'pin', trusted: new Set([B]) })
    assert.deepEqual(trustRule('echo', { trust: [] }, known), { source: 'first-use' })
  })

  it('splits providers into trusted and untrusted, order kept', () => {
    assert.deepEqual(splitProviders([B, A], { source: 'pin', trusted: new Set([A]) }), { trusted: [A], untrusted: [B] })
    assert.deepEqual(splitProviders([B, A], { source: 'first-use' }), { trusted: [B, A], untrusted: [] })
  })
})

describe('--trust-file', () => {
  it('reads ids like --allow-file; a file with no ids, or a bad line, is a usage error naming --trust-file', async (t) => {
    const dir = await tempDir(t)
    const good = join(dir, 'good')
    await writeFile(good, `# ours\n${A}\n\n${B} # the spare\n`)
    assert.deepEqual(readTrustFile(good), [A, B])
    const empty = join(dir, 'empty')
    await writeFile(empty, '# nobody yet\n')
    assert.throws(() => readTrustFile(empty), (err: Error) => err instanceof ConfigError && /^--trust-file ".*empty": holds no peer id/.test(err.message))
    const broken = join(dir, 'broken')
    await writeFile(broken, `${A}\nnope\n`)
    assert.throws(() => readTrustFile(broken), /--trust-file ".*broken": line 2: "nope" is not a peer id/)
  })
})
