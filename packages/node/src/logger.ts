/**
 * The logger the library is given. pino's Logger satisfies it as is; tests pass a
 * recorder. The library never imports a logger implementation.
 */
export interface LogFn {
  (obj: Record<string, unknown>, msg?: string): void
}

export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {}
}
