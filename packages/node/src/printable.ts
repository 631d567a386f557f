/**
 * Strings a peer chose (service names, error messages, addresses) on their way to a
 * terminal: control characters become visible escapes, so none can move the cursor,
 * recolour, retitle or clear the screen, or hide text (C0, DEL, C1 with its one-byte CSI,
 * the bidirectional overrides that reorder what is shown, the line and paragraph separators,
 * and the zero-width characters that make two different strings look the same).
 */

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g

function hex (c: string): string {
  const code = c.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/** `echo\x1b[2J` for ECHO ESC [ 2 J: the text stays readable, and inert. */
export function escapeControl (text: string): string {
  return text.replace(CONTROL, hex)
}

/**
 * JSON.stringify escapes C0 but leaves DEL, C1 and the bidi controls raw; this escapes them
 * as `\u....` too, which any JSON parser reads back as the same string.
 */
export function printableJson (value: unknown): string {
  return JSON.stringify(value).replace(CONTROL, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
