/**
 * Contract between the `payorch-proto` CLI and one protocol library.
 * Each protocol contributes one file `src/protocols/<name>.ts` exporting `adapter`,
 * and one line in `src/registry.ts`.
 */
export interface ProtocolCliAdapter {
  /** Name used on the command line: `--protocol <name>`. */
  readonly name: string;
  /** One-line description for `--help`. */
  readonly description: string;
  /**
   * Decode a byte stream (a capture; any number of frames, possibly with garbage).
   * Returns one JSON-serialisable object per frame or garbage event, in stream order.
   * Must never throw on bad input: report it as an entry with an `error` field.
   */
  decode(bytes: Uint8Array): unknown[];
  /** Build one frame from a JSON description (the same shape `decode` prints). Throws a typed error on invalid input. */
  encode(json: unknown): Uint8Array;
}
