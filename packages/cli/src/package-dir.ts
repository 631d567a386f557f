/**
 * Files of the punchgate package, found from this module. It sits one level below the
 * package in src/ and in the built dist/punchgate.js alike, so the same URL works in both.
 */
import { fileURLToPath } from 'node:url'

const PACKAGE_DIR = new URL('../', import.meta.url)

/** The package's package.json. */
export const PACKAGE_JSON = fileURLToPath(new URL('package.json', PACKAGE_DIR))

/** The bin script the service units start (it runs dist/punchgate.js). */
export const BIN_PATH = fileURLToPath(new URL('bin/punchgate.js', PACKAGE_DIR))
