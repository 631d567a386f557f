/**
 * Counts work in flight (open tunnel connections) and says when none is left: what a
 * graceful stop waits for before it cuts whatever remains.
 */
export class InFlight {
  private count = 0
  private waiters: Array<() => void> = []

  get size (): number {
    return this.count
  }

  /** One more in flight; call the returned function (once is enough) when it is done. */
  add (): () => void {
    this.count++
    let done = false
    return () => {
      if (done) return
      done = true
      this.count--
      if (this.count > 0) return
      const waiters = this.waiters
      this.waiters = []
      waiters.forEach(wake => wake())
    }
  }

  /** Resolves once nothing is in flight. */
  async idle (): Promise<void> {
    if (this.count === 0) return
    await new Promise<void>(resolve => this.waiters.push(resolve))
  }
}
