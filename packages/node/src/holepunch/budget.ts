/**
 * At most `limit` uses per key in each fixed window (e.g. punch rounds per peer per minute).
 * The table holds at most `maxKeys` keys: the oldest window is forgotten first, so a peer
 * that makes up fresh ids costs memory it cannot grow.
 */
export interface PeerBudgetInit {
  limit: number
  windowMs: number
  /** @default 1024 */
  maxKeys?: number
  now?: () => number
}

export class PeerBudget {
  private readonly limit: number
  private readonly windowMs: number
  private readonly maxKeys: number
  private readonly now: () => number
  /** key -> window start and uses in it; insertion order = oldest window first. */
  private readonly windows = new Map<string, { start: number, used: number }>()

  constructor (init: PeerBudgetInit) {
    this.limit = init.limit
    this.windowMs = init.windowMs
    this.maxKeys = init.maxKeys ?? 1024
    this.now = init.now ?? Date.now
  }

  /** Uses one unit of `key`'s budget; false (and nothing used) once this window's is spent. */
  take (key: string): boolean {
    const now = this.now()
    let window = this.windows.get(key)
    if (window == null || now - window.start >= this.windowMs) {
      this.windows.delete(key)
      window = { start: now, used: 0 }
      this.windows.set(key, window)
      while (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value as string)
    }
    if (window.used >= this.limit) return false
    window.used++
    return true
  }
}
