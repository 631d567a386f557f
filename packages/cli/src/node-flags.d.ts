/**
 * Node flags the daemon runs with: the bin script's shebang carries them, and the service
 * units put them on Node's command line. V8 reads them when the heap is created, so
 * setting them later from inside the process has no effect.
 *
 * `--max-semi-space-size=2` (MB, default 16): a tunnel's bytes live in Buffers outside
 * the V8 heap, but the small objects around each chunk let the young generation grow to
 * its maximum. Measured with `node bench/run.ts --only direct --steps throughput1`: the
 * daemon's RSS under load went from 343 MB to 173 MB at the same throughput
 * (docs/performance.md).
 */
export declare const DAEMON_NODE_FLAGS: readonly string[];
