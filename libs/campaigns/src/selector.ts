import { Prisma } from '@payorch/db';

/**
 * Which terminals a campaign (or `GET /v1/terminals?label=k:v`) addresses. Every given criterion must hold
 * (AND); within one criterion any listed value matches (OR). A label matches when the terminal or its store
 * carries it. An empty selector is every terminal of the tenant.
 */
export interface TerminalSelector {
  storeIds?: readonly string[];
  protocols?: readonly ('JOINPROTO' | 'JPAY' | 'SSI_ECR')[];
  /** Terminal dialects; `default` matches terminals without one. */
  dialects?: readonly string[];
  labels?: Readonly<Record<string, string>>;
  terminalIds?: readonly string[];
}

/**
 * `SELECT t."id" FROM "Terminal" t JOIN "Store" s … WHERE …` for the selector, run in the caller's tenant
 * transaction (RLS scopes both tables). Labels use JSONB containment (`@>`), which the GIN indexes serve.
 */
export function selectorSql(selector: TerminalSelector): Prisma.Sql {
  return Prisma.sql`SELECT t."id" FROM "Terminal" t JOIN "Store" s ON s."id" = t."storeId" AND s."tenantId" = t."tenantId" WHERE ${selectorWhere(selector)}`;
}

/** The WHERE part of {@link selectorSql} over aliases `t` (terminal) and `s` (store). */
export function selectorWhere(selector: TerminalSelector): Prisma.Sql {
  const conditions: Prisma.Sql[] = [Prisma.sql`TRUE`];
  if (selector.storeIds?.length) conditions.push(Prisma.sql`t."storeId" = ANY(${[...selector.storeIds]}::uuid[])`);
  if (selector.terminalIds?.length) conditions.push(Prisma.sql`t."id" = ANY(${[...selector.terminalIds]}::uuid[])`);
  if (selector.protocols?.length) conditions.push(Prisma.sql`t."protocol"::text = ANY(${[...selector.protocols]}::text[])`);
  if (selector.dialects?.length) {
    const named = selector.dialects.filter((d) => d !== 'default');
    const parts: Prisma.Sql[] = [];
    if (named.length) parts.push(Prisma.sql`t."dialect" = ANY(${named}::text[])`);
    if (named.length !== selector.dialects.length) parts.push(Prisma.sql`t."dialect" IS NULL`);
    conditions.push(Prisma.sql`(${Prisma.join(parts, ' OR ')})`);
  }
  for (const [key, value] of Object.entries(selector.labels ?? {})) {
    const one = JSON.stringify({ [key]: value });
    conditions.push(Prisma.sql`(t."labels" @> ${one}::jsonb OR s."labels" @> ${one}::jsonb)`);
  }
  return Prisma.join(conditions, ' AND ');
}

/** `k:v` query values (`?label=region:north&label=tier:gold`, already validated) as a label map (split at the first `:`). */
export function labelMap(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const at = value.indexOf(':');
    labels[value.slice(0, at)] = value.slice(at + 1);
  }
  return labels;
}

/** Label keys: lower-case letters, digits, `_ . / -`, starting with a letter (like Kubernetes label names). */
export const LABEL_KEY = /^[a-z][a-z0-9_./-]{0,62}$/;
export const LABEL_VALUE_MAX = 128;
export const LABELS_MAX = 32;
