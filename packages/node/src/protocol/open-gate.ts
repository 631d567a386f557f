/**
 * Lets a tunnel open at most `limit` streams at a time; further connections wait their
 * turn, in order. A burst of local connections (a browser, a test suite, a load tool)
 * then holds a few stream openings in flight instead of one per connection, and the
 * daemon's memory stays bounded by the limit, not by the burst (docs/performance.md).
 * Only the opening is gated: a connection gives its place back once its stream is
 * answered, so long-lived connections never block new ones.
 */
export class OpenGate {
  private readonly limit: number
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor (limit: number) {
    this.limit = limit
  }

  /** Openings in flight and waiting, for tests and status. */
  get size (): { active: number, waiting: number } {
    return { active: this.active, waiting: this.waiting.length }
  }

  /**
   * Resolves with the function that gives the place back (calling it twice is harmless)
   * once a place is free; rejects with the signal's reason if it aborts first.
   */
  async enter (signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    if (this.active < this.limit) return this.take()
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort)
        resolve(this.take())
      }
      const onAbort = (): void => {
        const i = this.waiting.indexOf(wake)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(wake)
    })
  }

  private take (): () => void {
    this.active++
    let left = false
    return () => {
      if (left) return
      left = true
      this.active--
      this.waiting.shift()?.()
    }
  }
}
