import { z } from 'zod';

/**
 * One enum casing in the whole API: lower snake_case (docs/api-changes.md). The database keeps its own
 * enums (Prisma `TerminalStatus.ONLINE`, …); the DTO boundary maps them with these functions and nothing
 * else. Input accepts only the API casing.
 *
 *   const terminalStatus = wireEnum('TerminalStatus', ['UNKNOWN', 'ONLINE', 'OFFLINE', 'DISABLED']);
 *   terminalStatus.schema        // response field: 'unknown' | 'online' | … (components.schemas.TerminalStatus)
 *   terminalStatus.input         // request field / query filter: parses 'online', yields 'ONLINE'
 *   terminalStatus.toApi(row.status), terminalStatus.toDb('online')
 */
/** The API form of a database value's type: lower case, `-` → `_`. */
type Snake<S extends string> = S extends `${infer A}-${infer B}` ? `${A}_${Snake<B>}` : S;
export type Wire<D extends string> = Snake<Lowercase<D>>;

export interface WireEnum<D extends string> {
  readonly db: readonly D[];
  readonly values: readonly [Wire<D>, ...Wire<D>[]];
  readonly schema: z.ZodEnum<{ [K in Wire<D>]: K }>;
  readonly input: z.ZodPipe<z.ZodEnum<{ [K in Wire<D>]: K }>, z.ZodTransform<D, Wire<D>>>;
  toApi(value: D): Wire<D>;
  toDb(value: Wire<D>): D;
}

const LOWER_SNAKE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/** Lower snake_case of a database enum value: `SSI_ECR` → `ssi_ecr`, `tcp-listen` → `tcp_listen`. */
export function wireCase(value: string): string {
  return value.toLowerCase().replace(/-/g, '_');
}

export function isWireCase(value: string): boolean {
  return LOWER_SNAKE.test(value);
}

/** `name` becomes the component schema's name in the OpenAPI document. */
export function wireEnum<const D extends string>(name: string, db: readonly [D, ...D[]]): WireEnum<D> {
  const toApiMap = new Map<D, Wire<D>>();
  const toDbMap = new Map<string, D>();
  for (const value of db) {
    const api = wireCase(value) as Wire<D>;
    if (!isWireCase(api) || toDbMap.has(api)) throw new Error(`wireEnum ${name}: ${value} has no unique lower snake_case form`);
    toApiMap.set(value, api);
    toDbMap.set(api, value);
  }
  const values = db.map((v) => toApiMap.get(v)!) as unknown as readonly [Wire<D>, ...Wire<D>[]];
  const schema = z.enum(values as unknown as [Wire<D>, ...Wire<D>[]]).meta({ id: name }) as unknown as z.ZodEnum<{ [K in Wire<D>]: K }>;
  const toApi = (value: D): Wire<D> => {
    const api = toApiMap.get(value);
    if (api === undefined) throw new Error(`wireEnum ${name}: unknown database value ${String(value)}`);
    return api;
  };
  const toDb = (value: Wire<D>): D => {
    const stored = toDbMap.get(value);
    if (stored === undefined) throw new Error(`wireEnum ${name}: unknown API value ${String(value)}`);
    return stored;
  };
  return { db, values, schema, input: schema.transform(toDb), toApi, toDb };
}
