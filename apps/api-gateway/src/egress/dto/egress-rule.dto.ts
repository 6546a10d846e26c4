import { isIP } from 'node:net';

import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { nameSchemas } from '../../common/openapi-schema';
import { canonicalUuid } from '../../common/zod';

const DNS_NAME = /^(\*\.)?(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

const host = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .refine((v) => isIP(v) !== 0 || DNS_NAME.test(v), 'must be a DNS name, "*.domain" or an IP address')
  .describe('DNS name (exact), `*.example.com` (any sub-domain) or an IP literal.');

const cidr = z
  .string()
  .trim()
  .max(64)
  .refine((v) => ipaddr.isValidCIDR(v), 'must be an IPv4 or IPv6 CIDR such as 203.0.113.0/24')
  .transform((v) => {
    const [address, bits] = ipaddr.parseCIDR(v);
    const network = address.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(v) : ipaddr.IPv6.networkAddressFromCIDR(v);
    return `${network.toString()}/${bits}`;
  })
  .describe('Network whose addresses may be reached (normalised to its network address).');

const port = z.number().int().min(1).max(65535);
const description = z.string().trim().min(1).max(200);

const oneTarget = (v: { host?: string | null; cidr?: string | null }) => (v.host ? 1 : 0) + (v.cidr ? 1 : 0) === 1;

export const createEgressRuleSchema = z
  .strictObject({ cidr: cidr.optional(), description: description.optional(), host: host.optional(), port })
  .refine(oneTarget, { message: 'give exactly one of host or cidr', path: ['host'] });
export type CreateEgressRuleDto = z.infer<typeof createEgressRuleSchema>;

export const updateEgressRuleSchema = z
  .strictObject({ cidr: cidr.nullable().optional(), description: description.nullable().optional(), host: host.nullable().optional(), port: port.optional() })
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one field to change' });
export type UpdateEgressRuleDto = z.infer<typeof updateEgressRuleSchema>;

export const egressRuleResponseSchema = z.object({
  cidr: z.string().nullable(),
  createdAt: z.string(),
  description: z.string().nullable(),
  host: z.string().nullable(),
  id: canonicalUuid(),
  port: z.number().int(),
});
export type EgressRuleResponse = z.infer<typeof egressRuleResponseSchema>;

export function toEgressRuleResponse(row: {
  cidr: string | null;
  createdAt: Date;
  description: string | null;
  host: string | null;
  id: string;
  port: number;
}): EgressRuleResponse {
  return { cidr: row.cidr, createdAt: row.createdAt.toISOString(), description: row.description, host: row.host, id: row.id, port: row.port };
}

/** After a PATCH the rule must still name exactly one of host or cidr. */
export function isValidTarget(row: { host: string | null; cidr: string | null }): boolean {
  return oneTarget(row);
}

nameSchemas({ CreateEgressRuleRequest: createEgressRuleSchema, UpdateEgressRuleRequest: updateEgressRuleSchema, EgressRule: egressRuleResponseSchema });
