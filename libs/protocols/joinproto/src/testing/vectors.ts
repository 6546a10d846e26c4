import vectors from './fixtures/joinproto-vectors.json';

/** One example of the spec rebuilt from its tag table (`../shared/specs/joinproto-vectors.json`). */
export interface JoinprotoVector {
  readonly section: string;
  readonly tags: ReadonlyArray<readonly [string, string]>;
  readonly data_hex: string;
  readonly lrc: string;
  readonly frame_hex: string;
  readonly seed_hex: string;
  readonly seed_matches: boolean | null;
  readonly corrections: readonly string[];
  readonly direction: 'till->terminal' | 'terminal->till';
}

export const JOINPROTO_VECTORS: readonly JoinprotoVector[] = vectors as unknown as JoinprotoVector[];
