import { z } from 'zod';

/** Named schemas met by openApi() (zod `.meta({ id })`), added to components.schemas by finalizeDocument. */
export const NAMED = new Map<string, { json: string; schema: Record<string, unknown> }>();

/** OpenAPI 3.0 schema of a zod schema, for @ApiBody / @ApiResponse; schemas with a `.meta({ id })` become `$ref`s. */
export function openApi(schema: z.ZodType): Record<string, unknown> {
  const {
    $schema: _ignored,
    definitions,
    ...rest
  } = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  for (const [id, def] of Object.entries((definitions ?? {}) as Record<string, Record<string, unknown>>)) {
    const clean = tidy(def) as Record<string, unknown>;
    const json = JSON.stringify(clean);
    const known = NAMED.get(id);
    if (known && known.json !== json) throw new Error(`two different zod schemas are named ${id}`);
    NAMED.set(id, { json, schema: clean });
  }
  return tidy(rest) as Record<string, unknown>;
}

/** `#/definitions/X` → `#/components/schemas/X`; `{allOf: [one]}` → `one`. */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === '$ref' && typeof v === 'string' ? v.replace('#/definitions/', '#/components/schemas/') : tidy(v);
  const keys = Object.keys(out);
  if (keys.length === 1 && Array.isArray(out.allOf) && out.allOf.length === 1) return out.allOf[0];
  // `X.nullable()` of an inline schema X comes as `{nullable, anyOf: [X]}`: OpenAPI 3.0 wants the type next to `nullable`.
  if (out.nullable === true && !('type' in out) && Array.isArray(out.anyOf) && out.anyOf.length === 1) {
    const [only] = out.anyOf as Record<string, unknown>[];
    if (only && 'type' in only) {
      const { anyOf: _single, ...rest } = out;
      return { ...only, ...rest };
    }
  }
  // `A.or(B).nullable()`: members of one type give the union that type.
  const members = (out.anyOf ?? out.oneOf) as Record<string, unknown>[] | undefined;
  if (out.nullable === true && !('type' in out) && members?.length && members.every((m) => m.type !== undefined && m.type === members[0]!.type)) {
    return { type: members[0]!.type, ...out };
  }
  // z.unknown().nullable(): OpenAPI 3.0 wants a type next to `nullable`; an untyped schema already takes any value.
  if (out.nullable === true && !('type' in out) && !('$ref' in out) && !('allOf' in out) && !('anyOf' in out) && !('oneOf' in out)) delete out.nullable;
  return out;
}

/**
 * Names DTO schemas for the OpenAPI document (`components.schemas.<name>`, `$ref`s wherever they are
 * used, nested ones included). Call it at the end of a DTO file: `nameSchemas({ Store: storeResponseSchema })`.
 * Derived schemas (`.partial()`, `.extend()`) do not inherit the name.
 */
export function nameSchemas(schemas: Record<string, z.ZodType>): void {
  for (const [id, schema] of Object.entries(schemas)) z.globalRegistry.add(schema, { ...z.globalRegistry.get(schema), id });
}
