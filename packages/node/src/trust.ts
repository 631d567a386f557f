/**
 * Which provider a by-name tunnel trusts (docs/access-control.md): the peers named with
 * `?peer=` or `--trust`, else the one pinned for the service in the known-providers file
 * (trust on first use, like ssh's known_hosts), else any, until the first one a tunnel
 * activates with is pinned.
 *
 * The file: one `SERVICE PEER_ID  # first seen ISO-DATE` a line, `#` lines and blank
 * lines ignored. It is written atomically with mode 0600 and read again whenever its
 * mtime or size changes, so `punchgate trust forget` acts on a running daemon.
 */
import { readFileSync, statSync } from 'node:fs'
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseServiceName } from './config.ts'
import { KnownProvidersError } from './errors.ts'
import { readAllowFile } from './access.ts'
import { privatePathProblem } from './secret-file.ts'
import { parsePeerId } from './specs.ts'

export interface KnownProvider {
  service: string
  peer: string
  /** When it was pinned (ISO 8601), when the file says. */
  firstSeen?: string
}

const HEADER = '# punchgate known providers: SERVICE PEER_ID. A by-name tunnel to SERVICE uses only PEER_ID;\n' +
  '# delete a line (or run `punchgate trust forget SERVICE`) to accept another provider.\n'

const LINE = /^(\S+)\s+(\S+)\s*(?:#\s*first seen\s+(\S+).*)?$/

/** Parses the file's text; any bad line is an error naming the file and the line. */
export function parseKnownProviders (path: string, text: string): Map<string, KnownProvider> {
  const pins = new Map<string, KnownProvider>()
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const bad = (reason: string): KnownProvidersError => new KnownProvidersError(path, `line ${i + 1}: ${reason}`)
    const match = LINE.exec(line)
    if (match == null) throw bad(`expected SERVICE PEER_ID [# first seen DATE], got ${JSON.stringify(line)}`)
    const [, service = '', id = '', firstSeen] = match
    try {
      parseServiceName('known-providers', path, service)
    } catch {
      throw bad(`${JSON.stringify(service)} is not a service name`)
    }
    let peer: string
    try {
      peer = parsePeerId('known-providers', path, id)
    } catch {
      throw bad(`${JSON.stringify(id)} is not a peer id`)
    }
    if (pins.has(service)) throw bad(`service ${service} is pinned twice`)
    pins.set(service, { service, peer, ...(firstSeen != null ? { firstSeen } : {}) })
  }
  return pins
}

export function formatKnownProviders (pins: Iterable<KnownProvider>): string {
  let text = HEADER
  for (const p of pins) text += `${p.service} ${p.peer}${p.firstSeen != null ? `  # first seen ${p.firstSeen}` : ''}\n`
  return text
}

/**
 * The known-providers file, or an in-memory table when no path is given (pins then last
 * as long as the node). Reads are synchronous and cheap (a stat unless the file changed).
 */
export class KnownProviders {
  readonly path?: string
  private pins = new Map<string, KnownProvider>()
  private seen = ''
  /** Pins the file could not take: they hold until the node stops. */
  private readonly unsaved = new Map<string, KnownProvider>()
  /** Pins and forgets one at a time, so two tunnels cannot both pin. */
  private writing: Promise<unknown> = Promise.resolve()

  constructor (path?: string) {
    if (path != null) this.path = path
  }

  /** Re-reads the file if it changed since the last read; a missing file has no pins. */
  refresh (): void {
    if (this.path == null) return
    let stamp: string
    try {
      const stats = statSync(this.path)
      if ((stats.mode & 0o022) !== 0) {
        throw new KnownProvidersError(this.path, `is writable by group or others (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 on it`)
      }
      const problem = privatePathProblem(this.path)
      if (problem != null) throw new KnownProvidersError(this.path, problem)
      stamp = `${stats.mtimeMs}:${stats.size}:${stats.ino}`
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (err instanceof KnownProvidersError) throw err
        throw new KnownProvidersError(this.path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
      }
      this.pins = new Map()
      this.seen = ''
      return
    }
    if (stamp === this.seen) return
    let text: string
    try {
      text = readFileSync(this.path, 'utf8')
    } catch (err) {
      throw new KnownProvidersError(this.path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
    this.pins = parseKnownProviders(this.path, text)
    this.seen = stamp
  }

  pinned (service: string): string | undefined {
    this.refresh()
    return (this.pins.get(service) ?? this.unsaved.get(service))?.peer
  }

  list (): KnownProvider[] {
    this.refresh()
    return [...this.pins.values()]
  }

  /** Pins `peer` for `service` unless one is pinned already; `added` says whether this call pinned it. */
  async pin (service: string, peer: string, now = new Date()): Promise<{ peer: string, added: boolean }> {
    return this.serially(async () => {
      this.refresh()
      const existing = this.pins.get(service) ?? this.unsaved.get(service)
      if (existing != null) return { peer: existing.peer, added: false }
      const entry = { service, peer, firstSeen: now.toISOString() }
      try {
        await this.write(new Map(this.pins).set(service, entry))
      } catch (err) {
        this.unsaved.set(service, entry)
        throw err
      }
      return { peer, added: true }
    })
  }

  /** Drops the pin for `service`; returns the peer it named, or undefined if there was none. */
  async forget (service: string): Promise<string | undefined> {
    return this.serially(async () => {
      this.refresh()
      const unsaved = this.unsaved.get(service)
      this.unsaved.delete(service)
      const existing = this.pins.get(service)
      if (existing == null) return unsaved?.peer
      const pins = new Map(this.pins)
      pins.delete(service)
      await this.write(pins)
      return existing.peer
    })
  }

  private async serially<T> (task: () => Promise<T>): Promise<T> {
    const run = this.writing.then(task, task)
    this.writing = run.catch(() => {})
    return run
  }

  private async write (pins: Map<string, KnownProvider>): Promise<void> {
    if (this.path == null) {
      this.pins = pins
      return
    }
    const path = this.path
    const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 })
      const problem = privatePathProblem(path)
      if (problem != null) throw new KnownProvidersError(path, problem)
      await writeFile(temporary, formatKnownProviders(pins.values()), { mode: 0o600, flag: 'wx' })
      await chmod(temporary, 0o600)
      await rename(temporary, path)
    } catch (err) {
      await rm(temporary, { force: true })
      if (err instanceof KnownProvidersError) throw err
      throw new KnownProvidersError(path, `cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
    this.refresh()
  }
}

/** Where a tunnel's trust comes from: `?peer=`, `--trust`, the pin, or none yet (first use). */
export type TrustSource = 'peer' | 'trust' | 'pin' | 'first-use'

export interface TrustRule {
  source: TrustSource
  /** Undefined on first use: every provider may be tried, and the first to go live is pinned. */
  trusted?: ReadonlySet<string>
}

/** The rule for one lookup of `service`: explicit ids beat the pin; with neither, first use. */
export function trustRule (service: string, explicit: { peer?: string[], trust: string[] }, known: KnownProviders): TrustRule {
  if (explicit.peer != null && explicit.peer.length > 0) return { source: 'peer', trusted: new Set(explicit.peer) }
  if (explicit.trust.length > 0) return { source: 'trust', trusted: new Set(explicit.trust) }
  const pinned = known.pinned(service)
  return pinned != null ? { source: 'pin', trusted: new Set([pinned]) } : { source: 'first-use' }
}

/** Splits a lookup's providers (order kept) into those the rule trusts and the rest. */
export function splitProviders (providers: string[], rule: TrustRule): { trusted: string[], untrusted: string[] } {
  const trusted = rule.trusted
  if (trusted == null) return { trusted: providers, untrusted: [] }
  return { trusted: providers.filter(p => trusted.has(p)), untrusted: providers.filter(p => !trusted.has(p)) }
}

/** What a tunnel (or `connect`) says when every provider it found is untrusted. */
export function noTrustedProviderReason (service: string, source: TrustSource): string {
  return source === 'pin'
    ? `no trusted provider; \`punchgate trust forget ${service}\` to accept another`
    : `no trusted provider; add one with ${source === 'peer' ? '?peer=' : '--trust'}`
}

/** `--trust-file`: the allow-file's format and strictness (readAllowFile refuses a file with no ids too). */
export function readTrustFile (path: string): string[] {
  return readAllowFile(path, 'trust-file')
}
