import type { PublishedEvent } from '@payorch/db';
import type { SecretBox } from '@payorch/domain';

/** Redis pub/sub channel of a tenant's live events. */
export const eventsChannel = (prefix: string, tenantId: string): string => `${prefix}:events:${tenantId}`;

/**
 * The events that can change what an agent's tunnel may do: its credential, its terminals, its tenant's status. They are
 * published on the tenant's `accessChannel` too, which the device connectors follow (AccessWatcher) instead of every
 * event of every tenant: a payment's events (the vast majority) no longer reach each connector (issue 19; in a Redis
 * Cluster a PUBLISH reaches every node, and a pattern subscription every message that matches).
 */
export const ACCESS_EVENT_TYPES: ReadonlySet<string> = new Set([
  'agent.deleted',
  'agent.enrolled',
  'agent.revoked',
  'tenant.disabled',
  'tenant.enabled',
  'terminal.created',
  'terminal.deleted',
  'terminal.updated',
]);

/** Redis pub/sub channel of a tenant's ACCESS_EVENT_TYPES events (in addition to `eventsChannel`). */
export const accessChannel = (prefix: string, tenantId: string): string => `${prefix}:access:${tenantId}`;

/**
 * A message of an events or access channel as the object it must be, or null: not JSON, or JSON of anything else
 * (`null`, an array, a number). Whoever can PUBLISH on Redis chooses these bytes, and every subscriber reads fields of
 * what it parsed: until 2026-12-07 the gateway's EventHub and the worker's webhook listener read `event.tenantId` of
 * `JSON.parse('null')`, which threw in ioredis's message emit (the gateway's process ended) or rejected a promise
 * nobody awaited (every worker's process ended). Every subscriber parses with this.
 */
export function eventMessageObject(message: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return null;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** Every channel an event is published on, in order: its tenant's events channel, and the access channel for ACCESS_EVENT_TYPES. */
function channelsOf(prefix: string, event: { tenantId: string; type: string }): string[] {
  const events = eventsChannel(prefix, event.tenantId);
  return ACCESS_EVENT_TYPES.has(event.type) ? [events, accessChannel(prefix, event.tenantId)] : [events];
}

/**
 * Seals and checks the `subject` of live messages (PublishedEvent.subject): the master key's keyed digest
 * (`SecretBox.digest`, HMAC-SHA256 under a key derived for SUBJECT_SEAL_PURPOSE, naming its key id, so a previous key
 * still checks during a rotation). Every process that publishes or reads subjects holds PAYORCH_MASTER_KEY already.
 */
export type SubjectSealer = Pick<SecretBox, 'digest' | 'matchesDigest'>;

const SUBJECT_SEAL_PURPOSE = 'live event subject';

/** What a subject's seal covers: the event it came with (tenant, id, type, subject id) and the subject itself. */
const sealedText = (event: PublishedEvent, subject: unknown): string =>
  `${event.tenantId}\n${event.id}\n${event.type}\n${event.subjectId ?? ''}\n${JSON.stringify(subject)}`;

/**
 * The message published for an event: its subject sealed (`subjectSeal`), or left out when this publisher has no sealer.
 * A subject is what a `?wait=` request answers with (OperationOutcomeWaiter), so a message that anyone able to PUBLISH on
 * Redis could write must not be believed: only a sealed one is, and anything else makes the request read the row.
 */
function messageOf(event: PublishedEvent, sealer: SubjectSealer | undefined): string {
  if (event.subject === undefined) return JSON.stringify(event);
  const { subject, ...rest } = event;
  return sealer === undefined
    ? JSON.stringify(rest)
    : JSON.stringify({ ...rest, subject, subjectSeal: sealer.digest(SUBJECT_SEAL_PURPOSE, sealedText(event, subject)) });
}

/**
 * The subject of a received live message when its seal is this deployment's (a key the reader holds) over this very
 * event and subject; undefined otherwise (none, unsealed, forged, or moved to another event).
 */
export function sealedSubjectOf(event: PublishedEvent & { subjectSeal?: unknown }, sealer: SubjectSealer | undefined): Record<string, unknown> | undefined {
  const { subject, subjectSeal } = event;
  if (sealer === undefined || subject === null || typeof subject !== 'object' || Array.isArray(subject) || typeof subjectSeal !== 'string') return undefined;
  return sealer.matchesDigest(SUBJECT_SEAL_PURPOSE, sealedText(event, subject), subjectSeal) ? subject : undefined;
}

/** An event's PUBLISHes as [channel, message] pairs: its message once, on each of its channels. */
const publishesOf =
  (prefix: string, sealer?: SubjectSealer) =>
  (event: PublishedEvent): Array<[string, string]> => {
    const message = messageOf(event, sealer);
    return channelsOf(prefix, event).map((channel) => [channel, message]);
  };

/**
 * Announces that a tenant's webhook endpoints changed (created, updated, deleted): the message is the tenant id. The
 * workers' fan-out listeners drop what they know of the tenant's subscribed event types (best effort: they also
 * re-read it every few seconds, and the webhook sweep delivers whatever a stale index skipped).
 */
export const webhooksChangedChannel = (prefix: string): string => `${prefix}:webhooks:changed`;

/**
 * Announces that a tenant's API keys or its status changed (a key revoked, the tenant disabled or enabled): the message
 * is the tenant id. Every gateway forgets the tenant's API-key lookups it keeps (the gateway's ApiKeyLookups).
 */
export const apiKeysChangedChannel = (prefix: string): string => `${prefix}:api-keys:changed`;

/**
 * AdminService's `onKeysChanged` for a process with a Redis connection (the admin CLI, tests): announces on
 * apiKeysChangedChannel. Best effort: a gateway that misses it forgets the tenant's keys after its API_KEY_CACHE_MS;
 * a failed announcement is reported to `onFailure` (the CLI warns its operator), never thrown after the commit.
 */
export const announceKeysChanged =
  (publisher: Publisher, prefix: string, onFailure: (error: Error, tenantId: string) => void = () => undefined) =>
  async (tenantId: string): Promise<void> => {
    await publisher.publish(apiKeysChangedChannel(prefix), tenantId).catch((error: unknown) => onFailure(error as Error, tenantId));
  };

/** Anything that can PUBLISH (an ioredis client). */
export interface Publisher {
  publish(channel: string, message: string): Promise<unknown>;
  /** ioredis: the commands queued on a pipeline leave in one socket write, answered in one round trip. */
  pipeline?(): PublishPipeline;
  /** ioredis `Cluster`: its pipelines must stay within one slot, so each event is published on its own. */
  readonly isCluster?: boolean;
}

export interface PublishPipeline {
  publish(channel: string, message: string): unknown;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/**
 * An EventSink that publishes committed domain events to their tenant's channel (best effort: the DomainEvent table
 * is the record). The events handed to it within one tick (the Database's sequencer hands over every transaction it
 * numbered in one loop) are published together, in order, on one pipeline: one socket write and one Redis round trip
 * instead of one per event, which the operations profile showed to cost as much CPU as a statement's parsing.
 * With a `sealer` (the process's SecretBox) an event's `subject` is published sealed; without one it is left out.
 */
export function redisEventSink(redis: Publisher, prefix: string, onError?: (error: Error) => void, sealer?: SubjectSealer) {
  const queued: PublishedEvent[] = [];
  const failed = (error: unknown) => onError?.(error as Error);
  const toPublishes = publishesOf(prefix, sealer);
  const flush = () => {
    const publishes = queued.splice(0).flatMap(toPublishes);
    if (publishes.length === 1 || redis.pipeline === undefined || redis.isCluster === true) {
      for (const [channel, message] of publishes) redis.publish(channel, message).catch(failed);
      return;
    }
    const pipeline = redis.pipeline();
    for (const [channel, message] of publishes) pipeline.publish(channel, message);
    pipeline.exec().then((results) => {
      for (const [error] of results ?? []) if (error) failed(error);
    }, failed);
  };
  return (events: readonly PublishedEvent[]): void => {
    if (events.length === 0) return;
    if (queued.length === 0) process.nextTick(flush);
    queued.push(...events);
  };
}

/**
 * Publishes domain events to their tenants' live channels once their transaction has COMMITTED
 * (never inside it: a rolled-back event must not be seen) and they are numbered (`await db.eventsSettled()`:
 * a live stream woken by the publish reads the numbered log). A Database's own `onCommitted` does both. Every producer that writes with
 * `publishEvent` calls this with the returned events after `withTenant` resolves. Best effort and
 * never throws: the DomainEvent table stays the record (the SSE stream catches up from it, and the
 * webhook sweep fans out whatever pub/sub missed). Resolves when every PUBLISH has been answered.
 */
export async function notifyCommitted(
  redis: Publisher,
  prefix: string,
  events: readonly (PublishedEvent | undefined | null)[],
  onError?: (error: Error) => void,
): Promise<void> {
  await Promise.all(
    events
      .filter((event): event is PublishedEvent => event !== undefined && event !== null)
      .flatMap(publishesOf(prefix))
      .map(([channel, message]) => redis.publish(channel, message).catch((error: unknown) => onError?.(error as Error))),
  );
}
