/**
 * Rate limit for log lines a remote peer can cause (a refused request, a refused punch):
 * the first `burst` lines per key (a peer id) in a window go through; the rest are only
 * counted, and when the window ends the owner gets one summary with the count, per reason.
 * A peer that hammers the node then costs a few lines a minute, not one per request.
 *
 * Windows are fixed and start at a key's first line. Memory is bounded: beyond `maxKeys`
 * keys in one window, new keys share the OVERFLOW_KEY entry and its budget, so fresh peer
 * ids (cheap to make) cannot grow the table or the log without limit.
 */

/** Lines let through per key and window. */
export const LOG_LIMIT_BURST = 5

export const LOG_LIMIT_WINDOW_MS = 60_000

/** Keys tracked in one window before new ones share the overflow entry. */
export const LOG_LIMIT_MAX_KEYS = 100

/** The key that stands for every key beyond `maxKeys`. */
export const OVERFLOW_KEY = '*'

export interface Suppressed {
  key: string
  /** Lines held back in the window. */
  count: number
  /** The same count by the reason each line was given (`''` when none). */
  reasons: Record<string, number>
  windowMs: number
}

export interface LogLimitTimers {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (timer: unknown) => void
}

export interface LogLimitInit {
  /** Called once per key and window in which lines were held back. */
  onSuppressed: (summary: Suppressed) => void
  /** @default LOG_LIMIT_BURST */
  burst?: number
  /** @default LOG_LIMIT_WINDOW_MS */
  windowMs?: number
  /** @default LOG_LIMIT_MAX_KEYS */
  maxKeys?: number
  /** The clock and timers; tests inject their own. @default the real ones, timers unref'd */
  timers?: LogLimitTimers
}

interface Window {
  start: number
  allowed: number
  suppressed: number
  reasons: Record<string, number>
}

const realTimers: LogLimitTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: timer => clearTimeout(timer as ReturnType<typeof setTimeout>)
}

export class LogLimit {
  private readonly onSuppressed: (summary: Suppressed) => void
  private readonly burst: number
  private readonly windowMs: number
  private readonly maxKeys: number
  private readonly timers: LogLimitTimers
  /** In order of window start: the first entry always ends first. */
  private readonly windows = new Map<string, Window>()
  private timer: unknown
  private closed = false

  constructor (init: LogLimitInit) {
    this.onSuppressed = init.onSuppressed
    this.burst = init.burst ?? LOG_LIMIT_BURST
    this.windowMs = init.windowMs ?? LOG_LIMIT_WINDOW_MS
    this.maxKeys = init.maxKeys ?? LOG_LIMIT_MAX_KEYS
    this.timers = init.timers ?? realTimers
  }

  /** True when a line for `key` may be logged now; false when it was counted for the summary instead. */
  allow (key: string, reason = ''): boolean {
    if (this.closed) return false
    const now = this.timers.now()
    this.expire(now)
    let window = this.windows.get(key)
    if (window == null) {
      const full = this.windows.size >= this.maxKeys && key !== OVERFLOW_KEY
      if (full) return this.allow(OVERFLOW_KEY, reason)
      window = { start: now, allowed: 0, suppressed: 0, reasons: {} }
      this.windows.set(key, window)
      this.schedule()
    }
    if (window.allowed < this.burst) {
      window.allowed++
      return true
    }
    window.suppressed++
    window.reasons[reason] = (window.reasons[reason] ?? 0) + 1
    return false
  }

  /** Reports what is still held back and stops the timer; later lines are all refused. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.timer != null) this.timers.clearTimeout(this.timer)
    this.timer = undefined
    const windows = [...this.windows.entries()]
    this.windows.clear()
    for (const [key, window] of windows) this.report(key, window)
  }

  /** Ends every window whose time is up, reporting those with held-back lines. */
  private expire (now: number): void {
    for (const [key, window] of this.windows) {
      if (now - window.start < this.windowMs) break
      this.windows.delete(key)
      this.report(key, window)
    }
  }

  private report (key: string, window: Window): void {
    if (window.suppressed > 0) {
      this.onSuppressed({ key, count: window.suppressed, reasons: window.reasons, windowMs: this.windowMs })
    }
  }

  /** One timer, for the window that ends first: a burst then silence still gets its summary. */
  private schedule (): void {
    if (this.timer != null || this.closed) return
    const first = this.windows.values().next().value
    if (first == null) return
    const delay = Math.max(0, first.start + this.windowMs - this.timers.now())
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined
      this.expire(this.timers.now())
      this.schedule()
    }, delay)
  }
}
