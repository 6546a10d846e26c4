import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { Socket } from 'node:net';
import { join } from 'node:path';

import fc from 'fast-check';

import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from '../e2e/support/gateway-session';
import { InProcessDispatcher } from '../e2e/support/in-process-dispatcher';

/**
 * Contract-driven fuzzer (docs/security.md, "Input hygiene"): for every operation of docs/openapi.json, requests built
 * from its parameters and request body schema — mostly valid values with hostile ones mixed in — must never be answered
 * 500, and every non-2xx answer must be the error envelope. Reproduce a failure with the seed it prints:
 *
 *   API_FUZZ_SEED=<seed> npx jest -c test/jest.config.js test/security/api-fuzz.security-spec.ts
 *
 * (API_FUZZ_RUNS raises the runs per operation; API_FUZZ_ONLY="GET /v1/stores/{id}" fuzzes one operation).
 *
 * Network: only loopback is dialled — the gateway, PostgreSQL, Redis and the test's own Joinproto simulator. The
 * gateway runs with EGRESS_ALLOW_CIDRS empty, so the loopback and documentation addresses (192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) and the `.invalid` / `.internal.test` names that the generated URLs
 * and hosts use are refused by the egress policy before any connection; the one grant made to create the fixture
 * Assist merchant and webhook (192.0.2.0/24) is revoked before fuzzing starts. Every socket the process opens is
 * recorded and the last test asserts that none went elsewhere than loopback.
 */

const SEED = process.env.API_FUZZ_SEED ? Number(process.env.API_FUZZ_SEED) : 20261206;
const RUNS = process.env.API_FUZZ_RUNS ? Number(process.env.API_FUZZ_RUNS) : 12;
const ONLY = process.env.API_FUZZ_ONLY;
/** API_FUZZ_STATS=1 prints, per operation, how many answers had each status and error code. */
const STATS = process.env.API_FUZZ_STATS === '1';

// ---------------------------------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------------------------------

type Schema = {
  $ref?: string;
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  nullable?: boolean;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  description?: string;
};
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
  $ref?: string;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
  responses: Record<string, unknown>;
}
interface Contract {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; parameters: Record<string, Parameter> };
}

const contract = JSON.parse(readFileSync(join(__dirname, '../../docs/openapi.json'), 'utf8')) as Contract;
const resolveRef = <T>(ref: string): T =>
  ref
    .split('/')
    .slice(1)
    .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], contract) as T;
const deref = (s: Schema): Schema => (s.$ref ? deref(resolveRef<Schema>(s.$ref)) : s);
const ERROR_CODES = new Set(deref({ $ref: '#/components/schemas/ErrorCode' }).enum as string[]);
const MUTATING = new Set(['post', 'put', 'patch', 'delete']);

interface ContractOperation {
  key: string;
  method: string;
  path: string;
  parameters: Parameter[];
  body?: Schema;
}
const operations: ContractOperation[] = Object.entries(contract.paths).flatMap(([path, methods]) =>
  Object.entries(methods)
    .filter(([, op]) => typeof op === 'object' && op !== null && 'responses' in op)
    .map(([method, op]) => ({
      key: `${method.toUpperCase()} ${path}`,
      method: method.toUpperCase(),
      path,
      parameters: (op.parameters ?? []).map((p) => (p.$ref ? resolveRef<Parameter>(p.$ref) : p)),
      body: op.requestBody?.content['application/json'].schema,
    })),
);

/**
 * Operations exercised differently, with the reason. Nothing else is left out (the last test compares the set fuzzed
 * with the contract). The event WebSocket (/v1/events/ws) is not an operation of the contract; hostile-input's
 * upgrade test covers its refusal.
 */
const SPECIAL: Record<string, string> = {
  'GET /v1/events/stream': 'server-sent events that never end: the answer is judged on its status and headers, then the connection is closed',
};

// ---------------------------------------------------------------------------------------------------------------
// Hostile values
// ---------------------------------------------------------------------------------------------------------------

/** A JSON number written as is (2^53 + 1, 1e400 and -0 do not survive JSON.stringify). */
class RawNumber {
  constructor(readonly text: string) {}
  toJSON() {
    return `RawNumber(${this.text})`;
  }
}
function toJson(value: unknown): string {
  if (value instanceof RawNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const nest = (depth: number): unknown => (depth === 0 ? 'x' : { a: nest(depth - 1) });
const HOSTILE_NUMBERS: unknown[] = [
  0,
  -1,
  new RawNumber('-0'),
  0.5,
  10.25,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  new RawNumber('9007199254740993'),
  -(2 ** 53),
  1e308,
  -1e308,
  new RawNumber('1e400'),
  new RawNumber('-1e400'),
  new RawNumber('1E2'),
  5e-324,
];
const HOSTILE_NUMERIC_STRINGS = ['NaN', 'Infinity', '-Infinity', '1e3', '0x10', ' 1', '1 ', '+1', '-0', '١٢', '1_000', '9'.repeat(400), '1.0', '0.1e1', ''];
const HOSTILE_DATES = [
  '0001-01-01',
  '9999-12-31',
  '10000-01-01',
  '0000-01-01',
  '2026-02-30',
  '2025-02-29',
  '2026-13-01',
  '2026-00-10',
  '0001-01-01T00:00:00Z',
  '0001-01-01T00:00:00+14:00',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '9999-12-31T23:59:59.999-12:00',
  '+010000-01-01T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '2026-01-01T24:00:00Z',
  '2026-01-01T00:00:60Z',
  '2026-01-01T00:00:00.123456789Z',
  '2026-01-01T00:00:00+24:00',
  '2026-01-01T00:00:00',
  '2026-01-01 00:00:00Z',
  '1970-01-01T00:00:00Z',
  '1969-12-31T23:59:59.999Z',
  '29.02.2025',
  '31.12.9999',
  '00.00.0000',
];
const HOSTILE_TIME_ZONES = [
  'Mars/Olympus_Mons',
  'UTC+3',
  '+14:00',
  'Etc/GMT+12',
  'Etc/GMT-14',
  'Pacific/Kiritimati',
  'Asia/Kathmandu',
  'EST5EDT',
  'America/Argentina/ComodRivadavia',
  'posixrules',
  'localtime',
  'Factory',
  'utc',
  'Europe/Moscow ',
  '../../../../etc/passwd',
  'Z',
];
const HOSTILE_STRINGS = [
  '',
  ' ',
  'a',
  'x'.repeat(70_000),
  '\u0000',
  'nul\u0000inside',
  '\u0001\u0007\u001b[31m\r\n',
  '\ud800',
  'caf\udc00e',
  '\u202etxt.exe',
  '\ufeff',
  '😀'.repeat(300),
  'Ωμέγα Ж 中文 عربى',
  "'; DROP TABLE stores; --",
  '%00',
  '%s%n',
  '__proto__',
  'constructor',
  'null',
  'true',
  '[]',
  '{}',
  '../..',
  '\\',
];
const someUuid = '3f25a1c2-8d4b-4e6f-9a7b-1c2d3e4f5a6b';
const HOSTILE_UUIDS = [
  someUuid.toUpperCase(),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
  '6ba7b810-9dad-11d1-80b4-00c04fd430c8',
  `{${someUuid}}`,
  someUuid.replace(/-/g, ''),
  `${someUuid}0`,
  someUuid.slice(0, 35),
  `urn:uuid:${someUuid}`,
  'not-a-uuid',
];
/**
 * Destinations a tenant may name (webhook URL, Assist server URL, relay host): loopback, documentation ranges and names
 * that do not resolve — all refused by the egress policy of this gateway (EGRESS_ALLOW_CIDRS empty) before connecting.
 */
const SAFE_URLS = [
  'https://127.0.0.1/hook',
  'https://127.0.0.1:1/hook',
  'http://127.0.0.1/',
  'https://[::1]/x',
  'https://[::ffff:127.0.0.1]/x',
  'https://2130706433/',
  'https://0177.0.0.1/',
  'https://192.0.2.10/hook',
  'https://198.51.100.7:8443/p?q=1#f',
  'https://203.0.113.9/',
  'https://[2001:db8::1]/',
  'https://metadata.internal.test/latest',
  'https://receiver.invalid/hook',
  'https://user:pass@receiver.invalid/',
  'ftp://192.0.2.1/',
  'javascript:alert(1)',
  'https://',
  'https:///path',
  'https://[::1/',
  'https://xn--ls8h.invalid/',
  'https://a b.invalid/',
  `https://${'a'.repeat(300)}.invalid/`,
];
const SAFE_HOSTS = [
  '127.0.0.1',
  '::1',
  '192.0.2.1',
  '203.0.113.0',
  '2001:db8::5',
  'relay.invalid',
  '*.invalid',
  'metadata.internal.test',
  '*',
  '*.',
  '.',
  'a..b',
];
const SAFE_CIDRS = [
  '127.0.0.0/8',
  '192.0.2.0/24',
  '198.51.100.0/25',
  '2001:db8::/32',
  '0.0.0.0/0',
  '::/0',
  '192.0.2.1/33',
  '192.0.2.1',
  '10.0.0.0/-1',
  '1.2.3.4/08',
];

// ---------------------------------------------------------------------------------------------------------------
// Generators from the schemas
// ---------------------------------------------------------------------------------------------------------------

type Pools = Record<string, { own: string[]; foreign: string[] }>;
let pools: Pools = {};

/** The resource a uuid field or path parameter names, from its name (`storeId`, `storeIds`, `originalOperationId`). */
function resourceOf(field: string | undefined): string | undefined {
  if (!field) return undefined;
  const base = field
    .replace(/Ids?$/, '')
    .replace(/^original/, '')
    .replace(/^close[A-Z]\w*Operation$/, 'operation');
  const key = base.charAt(0).toLowerCase() + base.slice(1);
  return key === 'merchant' ? 'assistMerchant' : key === 'after' ? 'event' : key;
}

/** Ids a request may name: of the tenant's own resources, of another tenant's, unknown, and in capitals. */
function idArb(resource: string | undefined): fc.Arbitrary<string> {
  const pool = (resource && pools[resource]) || { own: [], foreign: [] };
  const everyOwn = Object.values(pools).flatMap((p) => p.own);
  return fc.oneof(
    { weight: 4, arbitrary: pool.own.length ? fc.constantFrom(...pool.own) : fc.uuid({ version: 4 }) },
    { weight: 2, arbitrary: pool.foreign.length ? fc.constantFrom(...pool.foreign) : fc.uuid({ version: 4 }) },
    { weight: 1, arbitrary: pool.own.length ? fc.constantFrom(...pool.own.map((id) => id.toUpperCase())) : fc.uuid().map((u) => u.toUpperCase()) },
    { weight: 1, arbitrary: everyOwn.length ? fc.constantFrom(...everyOwn) : fc.uuid() },
    { weight: 1, arbitrary: fc.uuid() },
  );
}

function dateLike(s: Schema): boolean {
  return s.format === 'date-time' || (s.pattern ?? '').includes('\\d{4}-') || /DD\.MM\.YYYY/.test(s.description ?? '');
}
/**
 * Cursors are opaque, but a client can read and forge them (base64url of `{c: createdAt, i: id}`): the sort key of a
 * real row, and instants JavaScript reads that PostgreSQL does not take.
 */
const forgedCursor = fc
  .record({
    c: fc.constantFrom<unknown>(
      '2026-12-06T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '0001-01-01T00:00:00.000Z',
      '+275760-09-13T00:00:00.000Z',
      '-000001-01-01T00:00:00.000Z',
      '0000-06-01T00:00:00.000Z',
      'Dec 25 -5000',
      8.64e15,
      0,
      null,
      'garbage',
    ),
    i: fc.oneof(
      fc.uuid(),
      fc.uuid().map((u) => u.toUpperCase()),
      fc.constantFrom<unknown>('x', 5, null),
    ),
  })
  .map((key) => Buffer.from(JSON.stringify(key)).toString('base64url'));

/** Days a client may well send (and the calendar's ends): ranges between them are often valid. */
const CALENDAR_DATES = ['2026-12-01', '2026-12-06', '2026-12-31', '2024-02-29', '0001-01-01', '0001-01-02', '9999-12-30', '9999-12-31', '1970-01-01'];
const DATE_TIMES = [
  '2026-12-06T00:00:00Z',
  '2026-12-06T12:00:00.000+03:00',
  '0001-01-01T00:00:00Z',
  '0001-01-01T00:00:00+14:00',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '9999-12-31T23:59:59-14:00',
  '1970-01-01T00:00:00Z',
];
const TIME_ZONES = ['UTC', 'Europe/Moscow', 'Asia/Kathmandu', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/St_Johns', 'Asia/Kamchatka'];

/** A value the schema accepts (as far as its keywords say; cross-field rules are left to chance). */
function valid(schemaIn: Schema, field?: string, depth = 0): fc.Arbitrary<unknown> {
  const s = deref(schemaIn);
  const core = validCore(s, field, depth);
  return s.nullable ? fc.oneof({ weight: 5, arbitrary: core }, { weight: 1, arbitrary: fc.constant(null) }) : core;
}

function validCore(s: Schema, field: string | undefined, depth: number): fc.Arbitrary<unknown> {
  const variants = s.oneOf ?? s.anyOf;
  if (variants) {
    const { oneOf: _o, anyOf: _a, ...rest } = s;
    return fc.oneof(...variants.map((v) => valid({ ...rest, ...deref(v) }, field, depth)));
  }
  if (s.enum) return fc.constantFrom(...s.enum);
  switch (s.type) {
    case 'string':
      return validString(s, field);
    case 'integer': {
      const min = Math.max(s.minimum ?? -1_000_000, -1_000_000) + (s.exclusiveMinimum ? 1 : 0);
      const max = Math.min(s.maximum ?? 1_000_000, Math.max(min, 1_000_000));
      // `wait` is bounded here so that a run stays short; its maximum is only a number to the validator.
      if (field === 'wait') return fc.integer({ min: 0, max: 1500 });
      return fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max, s.maximum ?? max));
    }
    case 'number': {
      const min = Math.max(s.minimum ?? -1e6, -1e6);
      const max = Math.min(s.maximum ?? 1e6, 1e6);
      return fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).filter((n) => !s.exclusiveMinimum || n > min);
    }
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(fuzzed(s.items ?? {}, field, depth + 1), {
        minLength: s.minItems ?? 0,
        maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 3, 3)),
      });
    case 'object':
    default:
      if (s.properties || s.type === 'object') return validObject(s, depth);
      return fc.anything({ maxDepth: 2 });
  }
}

function validString(s: Schema, field: string | undefined): fc.Arbitrary<string> {
  if (s.format === 'uuid') return idArb(resourceOf(field));
  if (field === 'url' || field === 'serverUrl' || field === 'continueUrl') return fc.constantFrom(...SAFE_URLS);
  if (field === 'host') return fc.constantFrom(...SAFE_HOSTS);
  if (field === 'cidr') return fc.constantFrom(...SAFE_CIDRS);
  if (field === 'timeZone') return fc.constantFrom(...TIME_ZONES);
  if (field === 'cursor') return forgedCursor;
  if (field === 'clientIp') return fc.constantFrom('192.0.2.1', '203.0.113.255', '256.1.1.1', '::1');
  if (dateLike(s) && s.format !== 'date-time' && (s.pattern ?? '').startsWith('^\\d{4}-')) {
    return fc.oneof(fc.constantFrom(...CALENDAR_DATES), fc.stringMatching(new RegExp(s.pattern!)));
  }
  if (s.format === 'date-time' || (field && /^(from|to)$/.test(field) && !s.pattern))
    return fc.oneof(
      fc.constantFrom(...DATE_TIMES),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    );
  if (s.pattern) {
    const arb = fc.stringMatching(new RegExp(s.pattern));
    return s.maxLength === undefined ? arb : arb.filter((v) => v.length <= s.maxLength!);
  }
  if (dateLike(s)) return fc.constantFrom(...HOSTILE_DATES);
  const min = s.minLength ?? 0;
  return fc.string({ minLength: min, maxLength: Math.max(min, Math.min(s.maxLength ?? 24, 24)), unit: 'grapheme' });
}

function validObject(s: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const props = s.properties ?? {};
  const required = new Set(s.required ?? []);
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, prop] of Object.entries(props)) shape[name] = fuzzed(prop, name, depth + 1);
  const record = fc.record(shape, { requiredKeys: Object.keys(props).filter((n) => required.has(n)) });
  if (typeof s.additionalProperties === 'object') {
    return fc
      .tuple(record, fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fuzzed(s.additionalProperties, undefined, depth + 1), { maxKeys: 3 }))
      .map(([a, b]) => ({ ...b, ...a }));
  }
  return record as fc.Arbitrary<Record<string, unknown>>;
}

/** A value that should be refused (or at least survive): wrong JSON types, edge numbers, odd strings and shapes. */
function hostile(schemaIn: Schema, field: string | undefined, depth: number): fc.Arbitrary<unknown> {
  const s = deref(schemaIn);
  const typed: fc.Arbitrary<unknown>[] = [];
  if (s.type === 'integer' || s.type === 'number') typed.push(fc.constantFrom(...HOSTILE_NUMBERS), fc.constantFrom(...HOSTILE_NUMERIC_STRINGS));
  if (s.type === 'string' || s.enum) {
    typed.push(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 40, unit: 'binary' }));
    if (s.format === 'uuid') typed.push(fc.constantFrom(...HOSTILE_UUIDS));
    if (dateLike(s)) typed.push(fc.constantFrom(...HOSTILE_DATES));
    if (field === 'timeZone') typed.push(fc.constantFrom(...HOSTILE_TIME_ZONES));
    if (s.enum) typed.push(fc.constantFrom(...s.enum.filter((e): e is string => typeof e === 'string').map((e) => e.toUpperCase())));
    if (s.maxLength !== undefined) typed.push(fc.constant('y'.repeat(s.maxLength + 1)));
  }
  if (s.type === 'object' || s.properties) {
    typed.push(
      valid(s, field, depth).map((v) => (v && typeof v === 'object' ? { ...v, unexpected: true, ['__proto__']: { admin: true } } : v)),
      fc.constant([{}]),
      fc.constant(nest(33 - Math.min(depth, 30))),
      fc.constant(nest(8)),
    );
  }
  if (s.type === 'array') typed.push(fc.constant({ 0: 'x' }), fc.constant(Array.from({ length: (s.maxItems ?? 1000) + 1 }, () => 'x')));
  return fc.oneof(
    ...typed,
    fc.constantFrom<unknown>(null, true, false, 0, -1, '', [], {}, [null], { a: 1 }, 'x'),
    fc.constantFrom(...HOSTILE_UUIDS, ...HOSTILE_DATES.slice(0, 6), ...HOSTILE_NUMBERS.slice(0, 8)),
  );
}

/** Mostly a valid value; now and then a hostile one in its place (at every level of the document). */
function fuzzed(s: Schema, field: string | undefined, depth: number): fc.Arbitrary<unknown> {
  if (depth > 6) return valid(s, field, depth);
  return fc.oneof({ weight: 7, arbitrary: valid(s, field, depth) }, { weight: 1, arbitrary: hostile(s, field, depth) });
}

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const LONE_SURROGATE = /([\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF])/;
/** Percent-encoding that also sends a lone surrogate (encodeURIComponent throws on it): as its 3 WTF-8 bytes, not UTF-8. */
const encode = (v: string) =>
  v
    .split(LONE_SURROGATE)
    .map((part, i) => {
      if (i % 2 === 0) return encodeURIComponent(part);
      const c = part.charCodeAt(0);
      return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    })
    .join('');

const asQueryText = (v: unknown): string =>
  typeof v === 'string' ? v : v instanceof RawNumber ? v.text : v === null || typeof v !== 'object' ? String(v) : toJson(v);

function pathParamArb(op: ContractOperation, p: Parameter): fc.Arbitrary<string> {
  const segments = op.path.split('/');
  const resource =
    p.name === 'id'
      ? resourceOf(segments[segments.indexOf('{id}') - 1]!.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase()).replace(/s$/, ''))
      : resourceOf(p.name);
  return fc.oneof(
    { weight: 8, arbitrary: idArb(resource) },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_UUIDS, '%00', '%ZZ', '..', '%2F', ' ', '%E2%80%AE', 'a'.repeat(5000), '1', '-1', 'null') },
  );
}

function queryArb(op: ContractOperation): fc.Arbitrary<[string, string][]> {
  const params = op.parameters.filter((p) => p.in === 'query');
  const entries = params.map((p) => {
    const value = fuzzed(p.schema, p.name, 1).map(asQueryText);
    const present = p.required ? fc.constant(true) : fc.boolean();
    return fc.record({
      present: fc.oneof({ weight: 12, arbitrary: present }, { weight: 1, arbitrary: fc.constant(!p.required) }),
      values: fc.oneof({ weight: 8, arbitrary: value.map((v) => [v]) }, { weight: 1, arbitrary: fc.array(value, { minLength: 2, maxLength: 3 }) }),
      bracket: fc.oneof({ weight: 12, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('[]', '[a]', '[__proto__]') }),
    });
  });
  const extra = fc.oneof(
    { weight: 10, arbitrary: fc.constant<[string, string][]>([]) },
    { weight: 1, arbitrary: fc.constantFrom<[string, string][]>([['unexpected', '1']], [['__proto__', 'x']], [['limit[$gt]', '0']], [['', '']]) },
  );
  return fc.tuple(fc.tuple(...entries), extra).map(([chosen, more]) => {
    const out: [string, string][] = [];
    chosen.forEach((c, i) => {
      if (c.present) for (const v of c.values) out.push([params[i]!.name + c.bracket, v]);
    });
    return [...out, ...more];
  });
}

function bodyArb(op: ContractOperation): fc.Arbitrary<string | undefined> {
  if (!op.body) {
    if (op.method === 'GET') return fc.constant(undefined);
    return fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('{}', '[]', 'null', '{"unexpected":1}', '"x"', '{"a":') },
    );
  }
  const schema = op.body;
  return fc.oneof(
    { weight: 3, arbitrary: valid(schema, undefined, 0).map(toJson) },
    { weight: 8, arbitrary: fuzzed(schema, undefined, 0).map(toJson) },
    { weight: 1, arbitrary: hostile(schema, undefined, 0).map(toJson) },
    // Within the 256 KB limit, and over it.
    { weight: 1, arbitrary: fc.constantFrom(200 * 1024, 300 * 1024).chain((n) => valid(schema, undefined, 0).map((v) => toJson(pad(v, n)))) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":1,"a":2}', '\u0000', '[[[[[[[[[[', '{"x":"\\ud800"}', 'true', '1e400') },
  );
}

const pad = (v: unknown, n: number) => (v && typeof v === 'object' && !Array.isArray(v) ? { ...v, name: 'p'.repeat(n) } : 'p'.repeat(n));

function requestArb(op: ContractOperation): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const pathArb = fc.tuple(...pathParams.map((p) => pathParamArb(op, p))).map((values) => {
    let path = op.path;
    pathParams.forEach((p, i) => (path = path.replace(`{${p.name}}`, /^%|^[\w.-]*$/.test(values[i]!) ? values[i]! : encode(values[i]!))));
    return path;
  });
  const idempotencyKey = MUTATING.has(op.method.toLowerCase())
    ? fc.oneof(
        { weight: 12, arbitrary: fc.constant('fresh') },
        { weight: 1, arbitrary: fc.constantFrom('', 'short', 'k'.repeat(129), 'has space in it', 'fixed-key-reused-0001') },
      )
    : fc.constant(undefined);
  const lastEventId = op.parameters.some((p) => p.in === 'header' && p.name === 'Last-Event-ID')
    ? fc.option(fc.oneof(idArb('event'), fc.constantFrom(...HOSTILE_UUIDS, '', '0', '-1', '1e400')), { nil: undefined })
    : fc.constant(undefined);
  const contentType = fc.oneof(
    { weight: 20, arbitrary: fc.constant('application/json') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'application/json-patch+json'),
    },
  );
  return fc
    .record({ path: pathArb, query: queryArb(op), body: bodyArb(op), idempotencyKey, lastEventId, contentType })
    .map(({ path, query, body, idempotencyKey: key, lastEventId: lastId, contentType: type }) => {
      const qs = query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
      const headers: Record<string, string> = {};
      if (key !== undefined) headers['Idempotency-Key'] = key;
      if (lastId !== undefined) headers['Last-Event-ID'] = lastId;
      if (body !== undefined) headers['Content-Type'] = type;
      return { method: op.method, path: qs ? `${path}?${qs}` : path, headers, body };
    });
}

// ---------------------------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Why an answer breaks the rule (a 5xx, or a non-2xx outside the envelope), or null. */
function violation(answer: Answer): string | null {
  if (answer.status >= 500) return `status ${answer.status}: ${answer.text.slice(0, 300)}`;
  if (answer.status < 300) return null;
  if (!/^application\/json/.test(String(answer.headers['content-type']))) return `non-2xx with content-type ${String(answer.headers['content-type'])}`;
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return `non-2xx whose body is not JSON: ${answer.text.slice(0, 200)}`;
  }
  const error = (body as { error?: Record<string, unknown> }).error;
  if (!body || typeof body !== 'object' || Object.keys(body).join() !== 'error' || !error || typeof error !== 'object') {
    return `not the error envelope: ${answer.text.slice(0, 200)}`;
  }
  if (Object.keys(error).sort().join() !== 'code,details,message,requestId') return `envelope keys ${Object.keys(error).join()}`;
  if (!ERROR_CODES.has(error.code as string)) return `unknown error code ${String(error.code)}`;
  if (typeof error.message !== 'string') return 'message is not a string';
  if (error.details !== null && (typeof error.details !== 'object' || Array.isArray(error.details))) return 'details is neither null nor an object';
  if (typeof error.requestId !== 'string' || error.requestId !== answer.headers['x-request-id']) return 'requestId differs from X-Request-Id';
  return null;
}

const describeRequest = (r: FuzzRequest) =>
  `${r.method} ${r.path.length > 400 ? `${r.path.slice(0, 400)}…` : r.path} headers=${JSON.stringify(r.headers)} body=${
    r.body === undefined ? '(none)' : r.body.length > 600 ? `${JSON.stringify(r.body.slice(0, 600))}… (${r.body.length} chars)` : JSON.stringify(r.body)
  }`;

describe('API fuzzer: every contract operation, hostile input never answers 500 nor outside the error envelope (docs/security.md)', () => {
  const session = new GatewaySession();
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });
  const exercised = new Set<string>();
  /** Every socket the process opened that was not to loopback (must stay empty). */
  const foreignDials: string[] = [];
  const originalConnect = Socket.prototype.connect;
  let dispatcher: InProcessDispatcher;
  let joinproto: JoinprotoTerminalSimulator;
  let apiKey: string;
  let port: number;

  function send(r: FuzzRequest, stream = false, retried = false): Promise<Answer> {
    const headers: Record<string, string | number> = { Authorization: `Bearer ${apiKey}`, ...r.headers };
    if (headers['Idempotency-Key'] === 'fresh') headers['Idempotency-Key'] = idem();
    if (r.body !== undefined) headers['Content-Length'] = Buffer.byteLength(r.body);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: r.method, path: r.path, headers, agent: stream ? false : keepAlive }, (res) => {
        if (stream && res.statusCode! < 300) {
          // An open event stream: its status and content type are the answer.
          resolve({ status: res.statusCode!, headers: res.headers, text: '' });
          res.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed as this request went out (its keepAliveTimeout): Node's advice is to retry once.
        if (req.reusedSocket && error.code === 'ECONNRESET' && !retried) resolve(send(r, stream, true));
        else reject(error);
      });
      req.end(r.body);
    });
  }

  const stats = new Map<string, Map<string, number>>();
  async function check(r: FuzzRequest, stream = false): Promise<void> {
    const answer = await send(r, stream);
    if (STATS) {
      const key = `${r.method} ${r.path.split('?')[0]}`.replace(/[0-9a-fA-F-]{36}/g, '{id}');
      const outcome = answer.status < 300 ? String(answer.status) : `${answer.status} ${/"code":"(\w+)"/.exec(answer.text)?.[1] ?? '?'}`;
      const counts = stats.get(key) ?? new Map<string, number>();
      counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
      stats.set(key, counts);
    }
    const problem = violation(answer);
    if (problem) throw new Error(`${problem}\n  request: ${describeRequest(r)}`);
    if (stream && answer.status < 300 && !String(answer.headers['content-type']).startsWith('text/event-stream')) {
      throw new Error(`stream answered ${answer.status} ${String(answer.headers['content-type'])}\n  request: ${describeRequest(r)}`);
    }
  }

  const post = async (key: string, path: string, body: object) => {
    const res = await session.http().post(path).set('Authorization', `Bearer ${key}`).set('Idempotency-Key', idem()).send(body);
    if (res.status >= 300) throw new Error(`fixture ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: string; operationId?: string };
  };

  /** One of each resource in a tenant; their ids feed the path parameters and uuid fields. */
  async function fixtures(key: string, tenantId: string, routed: boolean): Promise<Record<string, string>> {
    const ids: Record<string, string> = {};
    ids.store = (await post(key, '/v1/stores', { name: 'Fuzz store', timeZone: 'Asia/Kathmandu' })).id;
    ids.agent = ((await post(key, '/v1/agents', { name: 'Fuzz agent', storeId: ids.store })) as unknown as { agent: { id: string } }).agent.id;
    ids.terminal = (
      await post(key, '/v1/terminals', {
        name: 'Fuzz terminal',
        storeId: ids.store,
        protocol: 'joinproto',
        connection: { kind: 'tcp', host: '192.0.2.1', port: 1 },
        labels: { region: 'north' },
      })
    ).id;
    if (routed) dispatcher.route(ids.terminal, { port: (await joinproto.listen(0)).port, options: { commandTimeoutMs: 300 } });
    ids.apiKey = (await post(key, '/v1/api-keys', { name: 'fuzz-target', scopes: ['stores:read'] })).id;
    ids.egressRule = (await post(key, '/v1/egress-rules', { host: 'relay.invalid', port: 443 })).id;
    ids.settlementSchedule = (await post(key, '/v1/settlement-schedules', { storeId: ids.store, localTime: '23:30' })).id;
    ids.campaign = (await post(key, '/v1/campaigns', { name: 'Fuzz campaign', operation: { type: 'terminal_info' }, selector: { storeIds: [ids.store] } })).id;
    const op = await session
      .http()
      .post(`/v1/terminals/${ids.terminal}/operations?wait=2000`)
      .set('Authorization', `Bearer ${key}`)
      .set('Idempotency-Key', idem())
      .send({ type: 'purchase', amount: 1500, currency: 'RUB' });
    ids.operation = op.body.id;
    ids.settlement = (await post(key, `/v1/terminals/${ids.terminal}/settlements`, {})).id;
    // The Assist merchant and the webhook name documentation addresses: allowed only while they are created.
    const grants = await Promise.all(
      ['assist', 'webhook'].map((channel) => session.admin.createEgressGrant({ tenantId, channel, cidr: '192.0.2.0/24', description: 'fuzz fixtures' })),
    );
    try {
      ids.assistMerchant = (
        await post(key, '/v1/assist-merchants', {
          name: 'Fuzz merchant',
          login: 'fuzzlogin1',
          password: 'fuzzpass1',
          merchantId: '123456',
          salt: 'salt',
          serverUrl: 'https://192.0.2.10',
        })
      ).id;
      ids.webhook = (await post(key, '/v1/webhooks', { url: 'https://192.0.2.11/hook', eventTypes: ['*'] })).id;
    } finally {
      for (const grant of grants) await session.admin.revokeEgressGrant(grant.id);
    }
    // Refused by the egress policy before any connection (the grant is gone): a payment that exists, in the state that leaves.
    const payment = await session
      .http()
      .post('/v1/wallet-payments')
      .set('Authorization', `Bearer ${key}`)
      .set('Idempotency-Key', idem())
      .send({
        amount: 10145,
        currency: 'RUB',
        merchantId: ids.assistMerchant,
        token: { version: 'EC_v1', data: 'ZGF0YQ==', signature: 'c2ln', header: { transactionId: 't' } },
        tokenType: 'apple_pay',
        customer: { email: 'a@b.invalid', firstname: 'A', lastname: 'B' },
      });
    ids.walletPayment = payment.body.id ?? payment.body.error?.details?.paymentId ?? '';
    if (!ids.walletPayment) throw new Error(`fixture wallet payment: ${payment.status} ${JSON.stringify(payment.body)}`);
    return ids;
  }

  beforeAll(async () => {
    Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
      const first = args[0];
      const options = (Array.isArray(first) ? first[0] : typeof first === 'object' && first !== null ? first : { port: first, host: args[1] }) as {
        host?: unknown;
        path?: unknown;
        port?: unknown;
      };
      const host = typeof options.host === 'string' ? options.host : 'localhost';
      if (typeof options.path !== 'string' && !['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1'].includes(host)) {
        foreignDials.push(`${host}:${String(options.port)}`);
      }
      return (originalConnect as (...a: unknown[]) => Socket).apply(this, args);
    } as typeof Socket.prototype.connect;
    session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 20 });
    await session.start({ EGRESS_ALLOW_CIDRS: '', RATE_LIMIT_PER_MINUTE: '1000000', RATE_LIMIT_PER_TENANT_PER_MINUTE: '1000000' });
    port = (session.app.getHttpServer().address() as { port: number }).port;
    const a = await session.tenant('Fuzz A');
    const b = await session.tenant('Fuzz B');
    apiKey = a.apiKey;
    const own = await fixtures(a.apiKey, a.tenantId, true);
    const foreign = await fixtures(b.apiKey, b.tenantId, false);
    pools = {};
    for (const [kind, id] of Object.entries(own)) pools[kind] = { own: id ? [id] : [], foreign: foreign[kind] ? [foreign[kind]] : [] };
    const events = await session.owner.domainEvent.findMany({ select: { id: true, tenantId: true }, take: 50 });
    pools.event = {
      own: events.filter((e) => e.tenantId === a.tenantId).map((e) => e.id),
      foreign: events.filter((e) => e.tenantId === b.tenantId).map((e) => e.id),
    };
  });

  afterAll(async () => {
    if (STATS) {
      const lines = [...stats].map(([key, counts]) => `${key}: ${[...counts].map(([o, n]) => `${o}×${n}`).join(', ')}`);
      process.stdout.write(`${lines.sort().join('\n')}\n`);
    }
    Socket.prototype.connect = originalConnect;
    keepAlive.destroy();
    await dispatcher?.close();
    await joinproto?.close();
    await session.stop();
  });

  /** Each answer the fuzzer found wrong, kept as the exact request: a 400 naming the field, in the envelope. */
  describe('regressions found by the fuzzer', () => {
    const expect400On = async (r: FuzzRequest, field: string) => {
      const answer = await send(r);
      expect({ status: answer.status, violation: violation(answer) }).toEqual({ status: 400, violation: null });
      const { error } = JSON.parse(answer.text) as { error: { code: string; details: { issues: { field: string }[] } } };
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details.issues.map((i) => i.field)).toEqual([field]);
    };

    // An instant past 9999-12-31T23:59:59.999Z (or before year 1) in UTC: JavaScript prints it `+010000-…`, PostgreSQL refused it (500).
    it.each([
      ['/v1/operations?type=preauth_capture&to=9999-12-31T23%3A59%3A59-14%3A00', 'to'],
      ['/v1/relay-sessions?state=open&to=9999-12-31T23%3A59%3A59-14%3A00', 'to'],
      ['/v1/audit-log?to=0001-01-01T09%3A00%3A00%2B10%3A00', 'to'],
      ['/v1/operations?from=0001-01-01T00%3A00%3A00%2B14%3A00', 'from'],
      ['/v1/relay-sessions?from=0000-01-01T00%3A00%3A00Z', 'from'],
      ['/v1/audit-log?from=0000-01-01T00%3A00%3A00Z', 'from'],
    ])('GET %s → 400 on %s', (path, field) => expect400On({ method: 'GET', path, headers: {} }, field));

    // A forged cursor whose createdAt JavaScript reads and PostgreSQL does not take (year 275760, year 0, a number): a 500 on every keyset list.
    const cursor = (c: unknown) => Buffer.from(JSON.stringify({ c, i: 'f5976e45-2755-4be5-a7dd-63b5fffffff0' })).toString('base64url');
    it.each([
      ['/v1/stores', '+275760-09-13T00:00:00.000Z'],
      ['/v1/operations', '0000-06-01T00:00:00.000Z'],
      ['/v1/wallet-payments', '-000001-01-01T00:00:00.000Z'],
      ['/v1/audit-log', '+275760-09-13T00:00:00.000Z'],
      ['/v1/webhooks/{webhook}/deliveries', 8.64e15],
      ['/v1/campaigns/{campaign}/targets', '0000-06-01T00:00:00.000Z'],
    ])('GET %s?cursor=(createdAt %s) → 400 on cursor', (path, c) =>
      expect400On(
        { method: 'GET', path: `${path.replace(/\{(\w+)\}/, (_m, kind: string) => pools[kind]!.own[0]!)}?cursor=${cursor(c)}`, headers: {} },
        'cursor',
      ),
    );
  });

  // Reads first, then writes, then the calls that delete or end a fixture, so that most requests find the fixtures.
  const rank = (op: ContractOperation) => (op.method === 'GET' ? 0 : op.method === 'DELETE' || /\/(revoke|cancel|pause)$/.test(op.path) ? 2 : 1);
  const ordered = [...operations].sort((x, y) => rank(x) - rank(y));

  it.each(ordered.filter((op) => !ONLY || op.key === ONLY).map((op) => [op.key, op] as const))(
    '%s',
    async (key, op) => {
      const stream = key in SPECIAL;
      try {
        await fc.assert(
          fc.asyncProperty(requestArb(op), (r) => check(r, stream)),
          { seed: SEED, numRuns: RUNS, endOnFailure: true },
        );
      } catch (error) {
        // Not `instanceof Error`: errors of Node's own modules come from another realm than the test's.
        const inner = (error as { cause?: { message?: unknown } }).cause;
        const cause = typeof inner?.message === 'string' ? `\n${inner.message}` : inner === undefined ? '' : `\n${String(inner)}`;
        throw new Error(`reproduce: API_FUZZ_SEED=${SEED} API_FUZZ_ONLY="${key}" API_FUZZ_RUNS=${RUNS}\n${(error as Error).message}${cause}`, {
          cause: error,
        });
      }
      exercised.add(key);
    },
    60_000,
  );

  it('fuzzed every operation of the contract (those handled specially are listed with a reason)', () => {
    if (ONLY) return expect([...exercised]).toEqual([ONLY]);
    expect([...exercised].sort()).toEqual(operations.map((op) => op.key).sort());
    expect(Object.keys(SPECIAL).every((key) => operations.some((op) => op.key === key))).toBe(true);
  });

  it('dialled nothing but loopback', () => {
    expect(foreignDials).toEqual([]);
  });
});
