import type { ProtocolCliAdapter } from './adapter';
import { adapter as joinproto } from './protocols/joinproto';
import { adapter as jpay } from './protocols/jpay';
import { adapter as ssiEcr } from './protocols/ssi-ecr';

/** Every protocol `payorch-proto` knows, by its `--protocol` name. */
export const ADAPTERS: ReadonlyMap<string, ProtocolCliAdapter> = new Map([joinproto, jpay, ssiEcr].map((a) => [a.name, a] as const));
