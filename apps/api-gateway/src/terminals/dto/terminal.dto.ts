import { z } from 'zod';

import { labelsSchema } from '../../campaigns/dto/campaign.dto';
import { paginationQuery } from '../../common/pagination';
import { wireEnum } from '../../common/wire-enum';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:-]+$/, 'must be a host name or IP address');
const tcpPort = z.number().int().min(1).max(65535);

/** How the agent reaches the terminal. */
export const connectionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('tcp'), host, port: tcpPort }).describe('The terminal listens; the agent dials it.'),
  z.strictObject({ kind: z.literal('tcp_listen'), port: tcpPort }).describe('The terminal dials the till; the agent listens.'),
  z
    .strictObject({
      kind: z.literal('serial'),
      path: z.string().min(1).max(200),
      baudRate: z
        .number()
        .int()
        .refine((b) => [9600, 19200, 38400, 57600, 115200].includes(b), 'must be 9600, 19200, 38400, 57600 or 115200'),
      dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
      parity: z.enum(['none', 'even', 'odd']).default('none'),
      stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    })
    .describe('A serial (COM/USB) port on the till PC.'),
]);

/** The agent's config and the tunnel name the listening kind `tcp-listen`; the API says `tcp_listen` (one enum casing). */
const connectionKind = wireEnum('TerminalConnectionKind', ['tcp', 'tcp-listen', 'serial']);
type ApiConnection = z.infer<typeof connectionSchema>;
/** What is stored (and what the agent gets): the API form with the stored kind. */
export type StoredConnection = Omit<ApiConnection, 'kind'> & { kind: 'tcp' | 'tcp-listen' | 'serial' };
export const connectionToStored = (c: ApiConnection): StoredConnection => ({ ...c, kind: connectionKind.toDb(c.kind) }) as StoredConnection;
export const connectionToApi = (c: StoredConnection): ApiConnection => ({ ...c, kind: connectionKind.toApi(c.kind) }) as ApiConnection;
const connectionInput = connectionSchema.transform(connectionToStored);

export const PROTOCOLS = ['JOINPROTO', 'JPAY', 'SSI_ECR'] as const;
/** API casing (docs/api-changes.md): `joinproto`, `jpay`, `ssi_ecr`; `online`, `offline`, `unknown`, `disabled`. */
export const terminalProtocol = wireEnum('TerminalProtocol', PROTOCOLS);
export const terminalStatus = wireEnum('TerminalStatus', ['UNKNOWN', 'ONLINE', 'OFFLINE', 'DISABLED']);
const DIALECTS: Record<(typeof PROTOCOLS)[number], readonly string[]> = {
  JOINPROTO: [],
  JPAY: ['aqsi', 'jpay'],
  SSI_ECR: ['android', 'linux'],
};

/** Secrets the connector needs to drive the terminal; stored envelope-encrypted, never returned. */
export const credentialsSchema = z
  .strictObject({
    adminPassword: z.string().min(1).max(128).optional(),
    password: z.string().min(1).max(128).optional(),
    username: z.string().min(1).max(128).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one credential or leave credentials out' });

const vendorIds = {
  department: z.string().trim().min(1).max(32).optional().describe('Joinproto department / SSI merchant index.'),
  merchantId: z.string().trim().min(1).max(32).optional().describe('MID.'),
  terminalId: z.string().trim().min(1).max(32).optional().describe('TID as configured at the acquirer.'),
};

/** JPAY §9: the protocol's own encryption (ECDHE on secp256r1 + AES-256-GCM); the key is agreed per session. */
export const encryptionSchema = z
  .strictObject({ enabled: z.boolean() })
  .describe('JPAY only: run every command in a secure session (ECDHE + AES-256-GCM, a fresh key per session, never stored). Needs credentials.adminPassword.');

export const ENCRYPTION_ONLY_JPAY = 'only JPAY terminals have protocol encryption (JPAY §9); Joinproto and SSI define none';
export const ENCRYPTION_NEEDS_PASSWORD = 'needs credentials.adminPassword: the secure session is opened with the admin login (JPAY §6, §9)';

function checkEncryption(
  v: { protocol?: (typeof PROTOCOLS)[number]; encryption?: { enabled: boolean }; credentials?: { adminPassword?: string } },
  ctx: z.RefinementCtx,
) {
  if (v.encryption === undefined || !v.protocol) return;
  if (v.protocol !== 'JPAY') ctx.addIssue({ code: 'custom', path: ['encryption'], message: ENCRYPTION_ONLY_JPAY });
  else if (v.encryption.enabled && !v.credentials?.adminPassword) ctx.addIssue({ code: 'custom', path: ['encryption'], message: ENCRYPTION_NEEDS_PASSWORD });
}

function checkDialect(v: { protocol?: (typeof PROTOCOLS)[number]; dialect?: string | null }, ctx: z.RefinementCtx) {
  if (!v.protocol || v.dialect === undefined || v.dialect === null) return;
  const allowed = DIALECTS[v.protocol];
  if (!allowed.includes(v.dialect)) {
    ctx.addIssue({
      code: 'custom',
      path: ['dialect'],
      message: allowed.length
        ? `must be one of ${allowed.join(', ')} for ${terminalProtocol.toApi(v.protocol)}`
        : `${terminalProtocol.toApi(v.protocol)} has no dialects`,
    });
  }
}

export const createTerminalSchema = z
  .strictObject({
    agentId: canonicalUuid({ message: 'must be a UUID' }).optional(),
    connection: connectionInput,
    credentials: credentialsSchema.optional(),
    dialect: z.string().optional(),
    encryption: encryptionSchema.optional(),
    labels: labelsSchema.optional(),
    name: z.string().trim().min(1).max(200),
    protocol: terminalProtocol.input,
    storeId: canonicalUuid({ message: 'must be a UUID' }),
    ...vendorIds,
  })
  .superRefine(checkDialect)
  .superRefine(checkEncryption);
export type CreateTerminalDto = z.infer<typeof createTerminalSchema>;

export const updateTerminalSchema = z
  .strictObject({
    agentId: canonicalUuid({ message: 'must be a UUID' }).nullable().optional(),
    connection: connectionInput.optional(),
    credentials: credentialsSchema.nullable().optional(),
    dialect: z.string().nullable().optional(),
    disabled: z.boolean().optional(),
    encryption: encryptionSchema.optional(),
    labels: labelsSchema.optional().describe('Replaces the whole label map ({} removes every label).'),
    name: z.string().trim().min(1).max(200).optional(),
    ...vendorIds,
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateTerminalDto = z.infer<typeof updateTerminalSchema>;

export const listTerminalsQuery = paginationQuery.extend({
  agentId: canonicalUuid().optional(),
  label: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]))
    .pipe(z.array(z.string().regex(/^[a-z][a-z0-9_./-]{0,62}:.{1,128}$/, 'must be key:value, e.g. region:north')).max(10))
    .describe('`key:value`; repeat for several (all must match, on the terminal or its store).'),
  protocol: terminalProtocol.input.optional(),
  status: terminalStatus.input.optional(),
  storeId: canonicalUuid().optional(),
});
export type ListTerminalsQuery = z.infer<typeof listTerminalsQuery>;

export const terminalResponseSchema = z.object({
  agentId: canonicalUuid().nullable(),
  connection: connectionSchema,
  createdAt: z.string(),
  department: z.string().nullable(),
  dialect: z.string().nullable(),
  /** JPAY: whether commands run in secure sessions; null for protocols without encryption. */
  encryption: encryptionSchema.nullable(),
  hasCredentials: z.boolean(),
  id: canonicalUuid(),
  info: z.record(z.string(), z.unknown()).nullable(),
  /** When `info` was last read from the terminal (a tunnel set-up reads it again once it is older than the connector's max age). */
  infoReadAt: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  lastSeenAt: z.string().nullable(),
  merchantId: z.string().nullable(),
  name: z.string(),
  protocol: terminalProtocol.schema,
  status: terminalStatus.schema,
  storeId: canonicalUuid(),
  terminalId: z.string().nullable(),
  updatedAt: z.string(),
});
export type TerminalResponse = z.infer<typeof terminalResponseSchema>;

export function defaultDialect(protocol: (typeof PROTOCOLS)[number]): string | null {
  return protocol === 'JPAY' ? 'aqsi' : null;
}

export function toTerminalResponse(row: {
  agentId: string | null;
  connection: unknown;
  createdAt: Date;
  credentialsEncrypted: string | null;
  department: string | null;
  dialect: string | null;
  encryptionEnabled: boolean;
  id: string;
  info: unknown;
  infoReadAt: Date | null;
  labels: unknown;
  lastSeenAt: Date | null;
  merchantId: string | null;
  name: string;
  protocol: (typeof PROTOCOLS)[number];
  status: (typeof terminalStatus.db)[number];
  storeId: string;
  terminalId: string | null;
  updatedAt: Date;
}): TerminalResponse {
  return {
    agentId: row.agentId,
    connection: connectionToApi(row.connection as StoredConnection),
    createdAt: row.createdAt.toISOString(),
    department: row.department,
    dialect: row.dialect,
    encryption: row.protocol === 'JPAY' ? { enabled: row.encryptionEnabled } : null,
    hasCredentials: row.credentialsEncrypted !== null,
    id: row.id,
    info: (row.info as TerminalResponse['info']) ?? null,
    infoReadAt: row.infoReadAt?.toISOString() ?? null,
    labels: (row.labels as Record<string, string> | null) ?? {},
    lastSeenAt: row.lastSeenAt?.toISOString() ?? null,
    merchantId: row.merchantId,
    name: row.name,
    protocol: terminalProtocol.toApi(row.protocol),
    status: terminalStatus.toApi(row.status),
    storeId: row.storeId,
    terminalId: row.terminalId,
    updatedAt: row.updatedAt.toISOString(),
  };
}

nameSchemas({
  TerminalConnection: connectionSchema,
  CreateTerminalRequest: createTerminalSchema,
  UpdateTerminalRequest: updateTerminalSchema,
  Terminal: terminalResponseSchema,
});
