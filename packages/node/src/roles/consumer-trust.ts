import type { NodeEvents } from '../events.ts'
import { KnownProviders, noTrustedProviderReason, trustRule, type TrustRule } from '../trust.ts'

/** Bound on remembered `tunnel|service|peer` warnings; a stream of fresh sybil ids must not grow it without end. */
const UNTRUSTED_WARNED_MAX = 4096

/**
 * The consumer's provider-trust bookkeeping: which providers a by-name lookup trusts (`?peer=`, `--trust`,
 * the pin, else first use), first-use pinning, one warning per untrusted provider, and per-tunnel notes
 * (untrusted providers, why it stays down) for status().
 */
export class ConsumerTrust {
  /** Provider pins (trust on first use); read again whenever the file changes. */
  private readonly known: KnownProviders
  /** By-name tunnels' untrusted providers (last lookup) and, while none is trusted, why it stays down. */
  private readonly notes = new Map<string, { untrusted: string[], reason?: string }>()
  /** `tunnel|service|peer` already warned about as untrusted; bounded (UNTRUSTED_WARNED_MAX). */
  private readonly warned = new Set<string>()

  private readonly events: NodeEvents
  /** `--trust`/`--trust-file`. */
  private readonly trust: string[]

  constructor (events: NodeEvents, trust: string[], knownProviders?: string) {
    this.events = events
    this.trust = trust
    this.known = new KnownProviders(knownProviders)
  }

  /** Reads the known-providers file; throws if it is broken. */
  refresh (): void {
    this.known.refresh()
  }

  /** The trust rule for a lookup of `service`: the tunnel's `?peer=`, else `--trust`, else the pin, else first use. */
  ruleFor (service: string, peer?: string[]): TrustRule {
    return trustRule(service, { ...(peer != null ? { peer } : {}), trust: this.trust }, this.known)
  }

  info (tunnel: string): { untrusted?: string[], reason?: string } {
    const note = this.notes.get(tunnel)
    if (note == null) return {}
    return {
      ...(note.untrusted.length > 0 ? { untrusted: note.untrusted } : {}),
      ...(note.reason != null ? { reason: note.reason } : {})
    }
  }

  /** One warning per tunnel (or `connect`) and peer, not one per retry. */
  warnUntrusted (tunnel: string | undefined, service: string, peer: string): void {
    const key = `${tunnel ?? ''}|${service}|${peer}`
    if (this.warned.has(key)) return
    // A stream of fresh sybil ids must not grow this without end; forgetting means warning again.
    if (this.warned.size >= UNTRUSTED_WARNED_MAX) this.warned.clear()
    this.warned.add(key)
    this.events.emitEvent('provider.untrusted', { ...(tunnel != null ? { tunnel } : {}), service, peer })
  }

  /** Trust on first use: pins `peer` unless another was pinned meanwhile; false then. */
  async pinFirstUse (tunnel: string | undefined, service: string, peer: string): Promise<boolean> {
    const file = this.known.path
    try {
      const pinned = await this.known.pin(service, peer)
      if (pinned.peer !== peer) return false
      if (pinned.added) this.events.emitEvent('provider.pinned', { ...(tunnel != null ? { tunnel } : {}), service, peer, ...(file != null ? { file } : {}) })
    } catch (err) {
      // Kept in memory by KnownProviders: trust still holds for this run.
      this.events.emitEvent('provider.pin-failed', { service, peer, file: file ?? '', error: (err as Error).message })
    }
    return true
  }

  /** Records a by-name lookup's outcome; announces once when the tunnel has no trusted provider. */
  note (tunnel: string, service: string, rule: TrustRule, trusted: string[], untrusted: string[]): void {
    for (const peer of untrusted) this.warnUntrusted(tunnel, service, peer)
    const before = this.notes.get(tunnel)
    if (trusted.length > 0 || untrusted.length === 0) {
      this.notes.set(tunnel, { untrusted })
      return
    }
    const reason = noTrustedProviderReason(service, rule.source)
    this.notes.set(tunnel, { untrusted, reason })
    if (before?.reason !== reason) this.events.emitEvent('tunnel.no-trusted-provider', { tunnel, service, untrusted, reason })
  }

  /** The tunnel is up: it no longer stays down for want of a trusted provider. */
  clearReason (tunnel: string): void {
    const note = this.notes.get(tunnel)
    if (note?.reason != null) this.notes.set(tunnel, { untrusted: note.untrusted })
  }
}
